import FedRouteData
import FedRouteFeatures
import FedRouteNumerics

extension RouterTrainingConfiguration {
    /// Trains a safe router (`SafetyGate`): a seeded `validationFraction` of the training rows is
    /// held out, the router is trained on the rest, and the gate is calibrated on the held-out rows
    /// over `lambdas` against best-single@λ of all the rows (`SafetyGate.calibrate`; the router keeps
    /// a band when its estimate is `standardErrors` standard errors above 0, nil: 1 when every
    /// held-out query is fully graded, else 2). Model selection the
    /// settings ask for (`selectBestEpoch`, `kmeansCandidates`, `knnCandidates`) uses the same rows.
    /// The gate sees the router before the nonparametric families (K-Means, kNN) add the held-out
    /// rows to their statistics: a kNN-Router holding a validation query in its reference set
    /// would otherwise answer it with its own grade. The router saved has them added.
    public func trainSafe(_ family: RouterFamily, encoder: TextEncoder, features: Matrix, table: EvaluationTable, seed: UInt64,
                          validationFraction: Double, lambdas: [Double], standardErrors: Double? = nil,
                          progress: ProgressHandler? = nil) throws -> RoutingPipeline {
        guard validationFraction > 0, validationFraction < 1 else {
            throw RouterError.invalidConfiguration("the validation fraction must be in (0, 1), not \(validationFraction)")
        }
        guard features.rows == table.queryCount else {
            throw RouterError.invalidConfiguration("\(features.rows) feature rows for \(table.queryCount) queries")
        }
        var order = Array(0..<table.queryCount)
        var rng = SeededRandom(seed: seed).derived(0x5AFE)
        rng.shuffle(&order)
        let held = max(1, Int((validationFraction * Double(order.count)).rounded()))
        guard held < order.count else { throw RouterError.noTrainingData("\(table.queryCount) training queries leave none to train on after validation") }
        let validationRows = Array(order.prefix(held)).sorted(), fitRows = Array(order.dropFirst(held)).sorted()
        let fit = table.subset(fitRows), validation = table.subset(validationRows)
        // The held-out rows serve the requested model selection and then the gate.
        let heldOut = (features: features.gatherRows(validationRows), table: validation)
        var selecting = self
        selecting.poolHeldOutRows = false
        let fitFeatures = features.gatherRows(fitRows)
        let unpooled = try selecting.train(family, features: fitFeatures, table: fit, seed: seed, validation: heldOut, progress: progress)
        let gate = try SafetyGate.calibrate(predictions: try unpooled.predict(features: heldOut.features), validation: validation,
                                            training: fit, lambdas: lambdas, standardErrors: standardErrors)
        let router = poolHeldOutRows ?? true ? try ModelSelection.addingHeldOut(unpooled, training: (fitFeatures, fit), validation: heldOut) : unpooled
        return try RoutingPipeline(encoder: encoder, router: router, safety: gate)
    }
}
