import FedRouteEvaluation
import FedRouteRouters
import Logging

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
    public var lambdas: [Double] { SafetyGate.defaultLambdas(bands: bands ?? SafetyGate.defaultBands) }

    /// Why these settings cannot calibrate a gate, or nil.
    public var problem: String? {
        if let b = bands, !(1...ValidationBands.maxBands).contains(b) { return "safety.bands must be in 1…\(ValidationBands.maxBands), not \(b)" }
        if let z = standardErrors, let p = SafetyGate.marginProblem(z) { return "safety.standardErrors: \(p)" }
        return nil
    }
}

extension FederatedSafety {
    /// The gate a job writes into `family`'s router file: calibrated on `candidate` (the router
    /// before held-out rows joined it) by `coordinator`'s clients. `normalizer` caches the clients'
    /// moments over all their rows (best-single@λ) across families; when a client cannot answer, or
    /// no client holds rows out, the router gets no gate and `logger` says why.
    public func gate(for candidate: AnyRouter, family: RouterFamily, coordinator: FederationCoordinator, descriptions: [ClientDescription],
                     normalizer: inout CostNormalizer?, logger: Logger) async throws -> SafetyGate? {
        if normalizer == nil {
            do { normalizer = try await coordinator.costNormalizer(models: candidate.models.count, includingHeldOut: true) } catch {
                logger.warning("the safety gate needs every client's score and cost moments over all its rows; the router is written without a gate",
                               metadata: ["family": .string(family.rawValue), "error": .string("\(error)")])
                return nil
            }
        }
        guard let normalizer else { return nil }
        let gate = try await coordinator.calibrateSafetyGate(candidate, normalizer: normalizer, lambdas: lambdas, standardErrors: standardErrors,
                                                              descriptions: descriptions)
        if gate == nil { logger.warning("no held-out rows or score means: the router is written without a safety gate", metadata: ["family": .string(family.rawValue)]) }
        return gate
    }
}
