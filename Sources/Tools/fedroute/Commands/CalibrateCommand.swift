import ArgumentParser
import FedRouteData
import FedRouteEvaluation
import FedRouteGateway
import FedRouteRouters
import Foundation

/// `fedroute calibrate`: the λ at which a router meets a cost, share or quality target.
struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Find the λ at which a router meets a target cost per query, share of a model, or quality.",
        discussion: """
            Calibration uses the test split of --data (queries the router was not trained on): the λ is found on \
            one part of it and checked on the rest (--check-fraction, seeded by --seed), where the figures are \
            what a gateway with that λ would have done. --models writes it into a models.yaml as gateway.lambda \
            (comments and other lines are kept). See docs/GATEWAY.md, "Calibration".
            """)

    @Option(name: .long, help: "Router file.") var router: String
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var encoderOptions: EncoderOptions
    @Option(name: .long, help: "Target mean cost per query in USD (the highest-quality λ within it).") var targetCost: Double?
    @Option(name: .long, help: "Target share of one model, MODEL=FRACTION (e.g. gpt-4=0.2).") var targetShare: String?
    @Option(name: .long, help: "Target mean quality (the cheapest λ that keeps it).") var targetQuality: Double?
    @Option(name: .customLong("models"), help: "models.yaml to write the λ into (gateway.lambda).") var modelsYAML: String?
    @Option(name: .long, help: "Fraction of the test split kept aside to check the calibrated λ on (0: none).") var checkFraction = 0.5

    func target() throws -> CalibrationTarget {
        let given = [targetCost != nil, targetShare != nil, targetQuality != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --target-cost, --target-share and --target-quality") }
        if let targetCost { return .costPerQuery(targetCost) }
        if let targetQuality { return .quality(targetQuality) }
        let parts = targetShare!.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, let f = Double(parts[1]) else {
            throw ValidationError("--target-share '\(targetShare!)' is not MODEL=FRACTION (e.g. gpt-4=0.2)")
        }
        return .share(model: parts[0], fraction: f)
    }

    func validate() throws {
        _ = try target()
        guard (0..<1).contains(checkFraction) else { throw ValidationError("--check-fraction must be in [0, 1)") }
    }

    func run() throws {
        let target = try target()
        let pipeline = try RouterFile.load(path: router, minilmDirectory: encoderOptions.minilmDirectory)
        let (_, test) = try dataOptions.loadTrainTest()
        guard test.queryCount >= 2 else { throw ValidationError("\(dataOptions.data) has \(test.queryCount) test queries; calibration needs queries the router was not trained on") }
        let (fitRows, checkRows) = test.holdOutRows(fraction: checkFraction, seed: dataOptions.seed)
        let fit = test.subset(fitRows), check = test.subset(checkRows)
        func predictions(_ table: EvaluationTable) throws -> RouterPredictions {
            try pipeline.predict(features: encoderOptions.features(table.queries.map(\.text), encoder: pipeline.encoder))
        }
        let (point, met) = try LambdaCalibration.calibrate(predictions: try predictions(fit), table: fit, target: target)
        print("target: \(target)")
        print((met ? "met" : "NOT met (closest shown)") + " on \(fit.queryCount) test queries: " + Self.describe(point))
        if check.queryCount > 0 {
            let held = try LambdaCalibration.operatingPoint(predictions: try predictions(check), table: check, lambda: point.lambda)
            print("check, \(check.queryCount) other test queries: " + Self.describe(held) + Self.deviation(held, target))
        }
        if let modelsYAML {
            let text: String
            do { text = try String(contentsOfFile: modelsYAML, encoding: .utf8) } catch {
                throw ValidationError("\(modelsYAML): cannot read the file: \(error.localizedDescription)")
            }
            let updated = try GatewayConfiguration.settingLambda(point.lambda, inYAML: text, source: modelsYAML)
            try updated.write(toFile: modelsYAML, atomically: true, encoding: .utf8)
            print("wrote gateway.lambda = \(point.lambda) into \(modelsYAML) (a running gateway picks it up on SIGHUP or POST /admin/reload)")
        }
    }

    static func describe(_ p: OperatingPoint) -> String {
        let shares = p.share.sorted { $0.value > $1.value }.map { String(format: "%@ %.1f%%", $0.key, $0.value * 100) }.joined(separator: ", ")
        var s = String(format: "λ = %.6g → mean quality %.4f, mean cost %.6g USD/query; ", p.lambda, p.meanScore, p.meanCost) + shares
        if p.estimatedCells > 0 { s += " (\(p.estimatedCells) chosen cells not in the data: the router's estimates used)" }
        return s
    }

    static func deviation(_ p: OperatingPoint, _ target: CalibrationTarget) -> String {
        switch target {
        case .costPerQuery(let c) where c > 0: String(format: " (cost %+.1f%% of the target)", (p.meanCost / c - 1) * 100)
        case .share(let m, let f): String(format: " (%@ %+.1f points from the target)", m, ((p.share[m] ?? 0) - f) * 100)
        case .quality(let q): String(format: " (quality %+.4f from the target)", p.meanScore - q)
        default: ""
        }
    }
}
