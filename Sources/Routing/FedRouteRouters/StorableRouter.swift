import FedRouteData
import FedRouteNumerics

/// A router family's implementation: how it is trained from evaluation data and how it is kept in a
/// router file. `RouterFamily.implementation` lists the conforming types.
public protocol StorableRouter: Router, Equatable {
    static var family: RouterFamily { get }

    /// Trains a router of this family on the observed cells of `table` (features row-aligned with it).
    /// With `validation` (held-out rows), the family selects on them what the configuration asks it
    /// to (`ModelSelection`): the MLP and MF their best epoch, K-Means its cluster count, kNN its k.
    static func train(features: Matrix, table: EvaluationTable, configuration: RouterTrainingConfiguration,
                      seed: UInt64, validation: ModelSelection.Validation?, progress: ProgressHandler?) throws -> Self

    /// Adds this router's metadata and tensors (names prefixed with the family, e.g. `mlp.`).
    func store(in contents: inout RouterFileContents) throws

    /// Reads a router of this family back; `models` are the file's model names.
    static func load(from contents: RouterFileContents, models: [String]) throws -> Self
}

extension StorableRouter {
    func isEqual(to other: any StorableRouter) -> Bool { (other as? Self) == self }
}
