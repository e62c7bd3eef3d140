import FedRouteFeatures

/// A router together with the encoder that turns text into its features: what `fedroute route`
/// and the gateway load.
public struct RoutingPipeline: Sendable, Equatable {
    public var encoder: TextEncoder
    public var router: AnyRouter

    public init(encoder: HashedTFIDFEncoder, router: AnyRouter) throws {
        try self.init(encoder: .hashed(encoder), router: router)
    }

    public init(encoder: TextEncoder, router: AnyRouter) throws {
        guard encoder.dimension == router.inputDimension else {
            throw RouterError.dimensionMismatch(expected: router.inputDimension, got: encoder.dimension)
        }
        self.encoder = encoder
        self.router = router
    }

    /// Predictions for raw query texts.
    public func predict(texts: [String]) throws -> RouterPredictions {
        try router.predict(features: encoder.encode(texts))
    }
}
