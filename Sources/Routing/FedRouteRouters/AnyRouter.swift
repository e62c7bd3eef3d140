import FedRouteNumerics

/// A trained router of any registered family (`RouterFamily`).
public struct AnyRouter: Router, Equatable {
    /// The family's own router.
    public let base: any StorableRouter

    public init(_ base: some StorableRouter) { self.base = base }

    public var family: RouterFamily { type(of: base).family }

    /// The router as the family's own type, or nil if it is of another family.
    public func `as`<R: StorableRouter>(_ type: R.Type) -> R? { base as? R }

    public var models: [String] { base.models }
    public var inputDimension: Int { base.inputDimension }
    public func predict(features: Matrix) throws -> RouterPredictions { try base.predict(features: features) }

    public static func == (a: AnyRouter, b: AnyRouter) -> Bool { a.base.isEqual(to: b.base) }
}
