import ArgumentParser
import FedRouteEvaluation

/// The λ sweep of an evaluation.
struct SweepOptions: ParsableArguments {
    @Option(name: .long, help: "Smallest λ of the sweep.") var lambdaMin = 1e-2
    @Option(name: .long, help: "Largest λ of the sweep.") var lambdaMax = 1e7
    @Option(name: .long, help: "Number of λ values (log-spaced).") var lambdaCount = 100

    func validate() throws {
        guard lambdaMin > 0, lambdaMin.isFinite, lambdaMax.isFinite, lambdaMax >= lambdaMin, lambdaCount >= 1 else {
            throw ValidationError("λ sweep needs 0 < --lambda-min ≤ --lambda-max (finite) and --lambda-count ≥ 1")
        }
    }

    var lambdas: [Double] { FrontierMetrics.geomspace(lambdaMin, lambdaMax, count: lambdaCount) }
}
