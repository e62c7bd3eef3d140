import FedRouteFeatures
import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation

/// What a node needs besides the global arrays to run fedroute's local step for a Flower `train`
/// or `evaluate` message: it travels, JSON-encoded, as the bytes value `fedroute.plan` of the
/// strategy's ConfigRecord (the same for every round; Flower adds `server-round`).
public struct FlowerTrainingPlan: Sendable, Codable, Equatable {
    /// `mlp` or `mf`.
    public var family: String
    public var architecture: MLPArchitecture
    public var settings: LocalTrainingSettings
    public var costNormalizer: CostNormalizer
    /// The federation's encoder: a node that restarted since setup featurises its data again.
    public var encoder: EncoderSpec
    /// Per client id, the seed of each round (index round − 1), as `FederationCoordinator` draws them.
    public var seeds: [String: [UInt64]]

    public init(family: String, architecture: MLPArchitecture, settings: LocalTrainingSettings, costNormalizer: CostNormalizer,
                encoder: EncoderSpec, seeds: [String: [UInt64]]) {
        self.family = family
        self.architecture = architecture
        self.settings = settings
        self.costNormalizer = costNormalizer
        self.encoder = encoder
        self.seeds = seeds
    }

    /// The plan's bytes, as sent in the ConfigRecord.
    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return try e.encode(self)
    }

    public static func decode(_ data: Data) throws(FlowerError) -> FlowerTrainingPlan {
        guard data.count <= 16 << 20 else { throw .message("fedroute.plan of \(data.count) bytes exceeds 16 MiB") }
        do { return try JSONDecoder().decode(FlowerTrainingPlan.self, from: data) } catch {
            throw .message("fedroute.plan is not a training plan: \(error)")
        }
    }

    /// Seeds for `rounds` rounds of `configuration` over `clients` (in the coordinator's order): the
    /// same draws as `FederationCoordinator.continueMLP`. A client not sampled in a round gets 0 there.
    public static func seeds(clients: [String], configuration: FederatedMLPConfiguration) -> [String: [UInt64]] {
        var seeds = Dictionary(uniqueKeysWithValues: clients.map { ($0, [UInt64]()) })
        for round in stride(from: 1, through: configuration.rounds, by: 1) {
            let plan = FederationCoordinator.roundPlan(configuration, clients: clients.count, round: round)
            for (i, id) in clients.enumerated() { seeds[id]!.append(plan.seeds[i] ?? 0) }
        }
        return seeds
    }
}
