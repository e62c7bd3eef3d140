import FedRouteEvaluation
import FedRouteRouters

/// Safe routers from a network federation (issue 16, item 5): after each family trains, the clients
/// score it on their held-out rows per λ band and the router file carries the resulting
/// `SafetyGate`, so the router deployed from a federation falls back to best-single@λ where it did
/// not show it does at least as well. Clients without held-out rows give no evidence; with none at
/// all, the routers are written without a gate (and the job says so).
public struct FederatedSafety: Sendable, Codable, Equatable {
    /// λ bands of the gate, log-spaced over 1e-2 … 1e7 (nil: 40, as `train --safe` and `simulate`).
    public var bands: Int?
    /// The gate's margin in standard errors (nil: `SafetyGate.automaticStandardErrors`).
    public var standardErrors: Double?

    public init(bands: Int? = nil, standardErrors: Double? = nil) {
        self.bands = bands
        self.standardErrors = standardErrors
    }

    /// The band centres in effect.
    public var lambdas: [Double] { FrontierMetrics.geomspace(1e-2, 1e7, count: bands ?? 40) }

    /// Why these settings cannot calibrate a gate, or nil.
    public var problem: String? {
        if let b = bands, !(1...ValidationBands.maxBands).contains(b) { return "safety.bands must be in 1…\(ValidationBands.maxBands), not \(b)" }
        if let z = standardErrors, let p = SafetyGate.marginProblem(z) { return "safety.standardErrors: \(p)" }
        return nil
    }
}
