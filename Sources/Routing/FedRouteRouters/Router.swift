import FedRouteNumerics

/// Something that predicts per-model quality and cost from query features.
public protocol Router: Sendable {
    var models: [String] { get }
    /// Feature dimension the router expects.
    var inputDimension: Int { get }
    func predict(features: Matrix) throws -> RouterPredictions
}

extension Router {
    /// Checks the feature matrix before prediction.
    func validate(_ features: Matrix) throws {
        guard features.cols == inputDimension else {
            throw RouterError.dimensionMismatch(expected: inputDimension, got: features.cols)
        }
        guard features.isFinite else { throw RouterError.nonFiniteInput }
    }
}
