/// A router family: what a router file's `kind` names, what `--router` chooses, what a simulation trains.
///
/// This is where a family is registered: its case, the type that implements it (`implementation`)
/// and whether the federated algorithms can train it. Everything that loads, saves, trains, lists or
/// routes with routers goes through this table.
public enum RouterFamily: String, Sendable, Codable, CaseIterable {
    case mlp, kmeans, knn

    /// The type that trains this family and stores it in router files.
    public var implementation: any StorableRouter.Type {
        switch self {
        case .mlp: MLPRouter.self
        case .kmeans: KMeansRouter.self
        case .knn: KNNRouter.self
        }
    }

    /// Families the federated algorithms can train (a kNN-Router would have to pool every query).
    public static let federated: [RouterFamily] = [.mlp, .kmeans]

    public var isFederated: Bool { Self.federated.contains(self) }
}
