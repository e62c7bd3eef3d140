/// A router family: what a router file's `kind` names, what `--router` chooses, what a simulation trains.
///
/// This is where a family is registered: its case, the type that implements it (`implementation`)
/// and whether the federated algorithms can train it. Everything that loads, saves, trains, lists or
/// routes with routers goes through this table.
public enum RouterFamily: String, Sendable, Codable, CaseIterable {
    case mlp, kmeans, knn, mf

    /// The type that trains this family and stores it in router files.
    public var implementation: any StorableRouter.Type {
        switch self {
        case .mlp: MLPRouter.self
        case .kmeans: KMeansRouter.self
        case .knn: KNNRouter.self
        case .mf: MFRouter.self
        }
    }

    /// Families the federated algorithms can train (a kNN-Router would have to pool every query).
    public static let federated: [RouterFamily] = [.mlp, .kmeans, .mf]

    public var isFederated: Bool { Self.federated.contains(self) }

    /// Why `families` cannot all be trained federatedly (none given, a repeat, or a family without
    /// federated training), or nil when they can. The simulation, the federation job and the CLI
    /// all check with this.
    public static func federatedProblem(_ families: [RouterFamily]) -> String? {
        let notFederated = families.filter { !$0.isFederated }
        guard families.isEmpty || !notFederated.isEmpty || Set(families).count != families.count else { return nil }
        return "families must be one or more of \(federated.map(\.rawValue).joined(separator: ", "))"
            + (notFederated.isEmpty ? "" : "; \(notFederated.map(\.rawValue).joined(separator: ", ")) cannot be trained federatedly")
    }
}
