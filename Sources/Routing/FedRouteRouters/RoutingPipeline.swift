import FedRouteFeatures
import FedRouteNumerics

/// A router together with the encoder that turns text into its features: what `fedroute route`
/// and the gateway load.
public struct RoutingPipeline: Sendable, Equatable {
    public var encoder: TextEncoder
    public var router: AnyRouter
    /// Set for a safe router: which λ bands fall back to best-single@λ.
    public var safety: SafetyGate?

    public init(encoder: HashedTFIDFEncoder, router: AnyRouter) throws {
        try self.init(encoder: .hashed(encoder), router: router)
    }

    public init(encoder: TextEncoder, router: AnyRouter, safety: SafetyGate? = nil) throws {
        guard encoder.dimension == router.inputDimension else {
            throw RouterError.dimensionMismatch(expected: router.inputDimension, got: encoder.dimension)
        }
        if let problem = safety?.problem(models: router.models.count) { throw RouterError.invalidConfiguration(problem) }
        self.encoder = encoder
        self.router = router
        self.safety = safety
    }

    /// Predictions for raw query texts.
    public func predict(texts: [String]) throws -> RouterPredictions {
        try predict(features: encoder.encode(texts))
    }

    /// Predictions for features from this pipeline's encoder, with the safety gate attached.
    public func predict(features: Matrix) throws -> RouterPredictions {
        var p = try router.predict(features: features)
        p.safety = safety
        return p
    }
}
