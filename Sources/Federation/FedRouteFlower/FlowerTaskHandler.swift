import FedRouteFeatures
import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation

/// Maps Flower messages onto a fedroute client (`FederatedClient`); the algorithms do not change.
///
/// - `train`: `arrays` (the global network) and `config` (`fedroute.plan`, `server-round`, FedProx's
///   `proximal-mu`) become an `MLPRoundTask`; the reply carries the locally trained arrays under the
///   same names, and `num-examples` and `train_loss` — what Flower's FedAvg averages by.
/// - `evaluate`: the global network is scored on the node's held-out rows: `num-examples` (observed
///   cells) and `brier`.
/// - `query.fedroute`: a fedroute request (`op` = `request`, JSON bytes in `request`, the current
///   encoder in `encoder`) answered with its JSON reply; `op` = `hello` answers the client id;
///   `op` = `finish` hands over the final routers.
public actor FlowerTaskHandler {
    public let clientID: String
    let client: any FederatedClient
    var encoder: EncoderSpec?
    /// Set when the ServerApp said the run is over.
    public private(set) var outcome: FlowerRunOutcome?
    public private(set) var tasks = 0

    public init(clientID: String, client: any FederatedClient) {
        self.clientID = clientID
        self.client = client
    }

    /// Message types this node answers.
    public static let messageTypes = ["train", "evaluate", "query.fedroute"]

    public func handle(type: String, round: Int?, content: FlowerRecordDict) async throws -> FlowerRecordDict {
        tasks += 1
        switch type {
        case "train": return try await train(content)
        case "evaluate": return try await evaluate(content)
        case "query.fedroute": return try await query(content)
        default: throw FlowerError.message("message type '\(type)' is not one this node answers (\(Self.messageTypes.joined(separator: ", ")))")
        }
    }

    func adopt(_ spec: EncoderSpec) async throws {
        guard spec != encoder else { return }
        let reply = try await client.handle(.useEncoder(spec))
        guard case .encoderReady = reply else { throw FlowerError.message("the client did not take the encoder: \(reply.kind)") }
        encoder = spec
    }

    static func bytes(_ config: [FlowerEntry<FlowerValue>], _ key: String) throws(FlowerError) -> Data {
        guard case .bytes(let d)? = config.value(key) else { throw .message("the config record has no bytes value '\(key)'") }
        return d
    }

    func plan(_ content: FlowerRecordDict) async throws -> (FlowerTrainingPlan, [FlowerEntry<FlowerValue>], [Tensor]) {
        let config = try content.config("config")
        let plan = try FlowerTrainingPlan.decode(try Self.bytes(config, "fedroute.plan"))
        try await adopt(plan.encoder)
        let arrays = try content.arrays("arrays")
        // The plan comes from the ServerApp: its architecture is bounded before any shape is trusted.
        try plan.architecture.validate()
        let expected = plan.architecture.parameterShapes
        guard arrays.count == expected.count else {
            throw FlowerError.message("\(arrays.count) arrays received, the \(plan.family) network has \(expected.count) tensors")
        }
        var tensors: [Tensor] = []
        for (a, e) in zip(arrays, expected) {
            guard a.key == e.name, a.value.shape == e.shape else {
                throw FlowerError.message("array '\(a.key)' \(a.value.shape) where '\(e.name)' \(e.shape) was expected")
            }
            guard a.value.values.allSatisfy(\.isFinite) else { throw FlowerError.message("array '\(a.key)' holds NaN or infinity") }
            tensors.append(Tensor(name: e.name, shape: e.shape, values: a.value.values))
        }
        return (plan, config, tensors)
    }

    func train(_ content: FlowerRecordDict) async throws -> FlowerRecordDict {
        let (plan, config, global) = try await plan(content)
        guard let round = config.value("server-round")?.int, round >= 1 else { throw FlowerError.message("train config lacks server-round") }
        guard let seeds = plan.seeds[clientID], seeds.indices.contains(round - 1) else {
            throw FlowerError.message("the plan has no seed for client \(clientID) in round \(round)")
        }
        var settings = plan.settings
        if let mu = config.value("proximal-mu")?.number {
            guard mu.isFinite, mu >= 0 else { throw FlowerError.message("proximal-mu \(mu) must be a finite number ≥ 0") }
            settings.proximalMu = Float(mu)
        }
        let task = MLPRoundTask(round: round, architecture: plan.architecture, parameters: global, costNormalizer: plan.costNormalizer,
                                settings: settings, seed: seeds[round - 1])
        guard case .mlpUpdate(let update) = try await client.handle(.trainMLP(task)) else { throw FlowerError.message("the client sent no update") }
        var arrays: [FlowerEntry<NumpyArray>] = []
        for (g, d) in zip(global, update.delta) {
            var values = g.values
            for i in values.indices { values[i] += d.values[i] }
            arrays.append(FlowerEntry(g.name, try NumpyArray(shape: g.shape, values: values)))
        }
        return FlowerRecordDict([
            FlowerEntry("arrays", .arrays(arrays)),
            FlowerEntry("metrics", .metrics([FlowerEntry("num-examples", .sint(Int64(update.sampleCount))),
                                             FlowerEntry("train_loss", .double(update.meanLoss.isFinite ? update.meanLoss : 0))])),
        ])
    }

    func evaluate(_ content: FlowerRecordDict) async throws -> FlowerRecordDict {
        let (plan, _, global) = try await plan(content)
        let task = ValidationTask(candidate: .network(architecture: plan.architecture, parameters: global, costNormalizer: plan.costNormalizer))
        guard case .validation(let s) = try await client.handle(.validate(task)) else { throw FlowerError.message("the client sent no validation") }
        return FlowerRecordDict([FlowerEntry("metrics", .metrics([FlowerEntry("num-examples", .sint(Int64(s.cells))),
                                                                  FlowerEntry("brier", .double(s.brier ?? 0))]))])
    }

    func query(_ content: FlowerRecordDict) async throws -> FlowerRecordDict {
        let config = try content.config("fedroute")
        guard case .string(let op)? = config.value("op") else { throw FlowerError.message("query.fedroute without an op") }
        func reply(_ entries: [FlowerEntry<FlowerValue>]) -> FlowerRecordDict { FlowerRecordDict([FlowerEntry("fedroute", .config(entries))]) }
        switch op {
        case "hello":
            return reply([FlowerEntry("client-id", .string(clientID))])
        case "request":
            if case .bytes(let e)? = config.value("encoder") {
                let spec: EncoderSpec
                do { spec = try JSONDecoder().decode(EncoderSpec.self, from: e) } catch { throw FlowerError.message("the encoder is unreadable: \(error)") }
                try await adopt(spec)
            }
            let data = try Self.bytes(config, "request")
            guard data.count <= 64 << 20 else { throw FlowerError.message("a request of \(data.count) bytes exceeds 64 MiB") }
            let request: FederatedRequest
            do { request = try JSONDecoder().decode(FederatedRequest.self, from: data) } catch { throw FlowerError.message("unreadable fedroute request: \(error)") }
            let answer = try await client.handle(request)
            if case .useEncoder(let spec) = request { encoder = spec }
            return reply([FlowerEntry("reply", .bytes(try JSONEncoder().encode(answer)))])
        case "finish":
            let data = try Self.bytes(config, "outcome")
            do { outcome = try JSONDecoder().decode(FlowerRunOutcome.self, from: data) } catch { throw FlowerError.message("unreadable run outcome: \(error)") }
            return reply([FlowerEntry("ok", .bool(true))])
        default:
            throw FlowerError.message("unknown fedroute op '\(op)'")
        }
    }
}

/// What the ServerApp hands every node at the end: the router files, and the fine-tuning settings
/// for personalisation.
public struct FlowerRunOutcome: Sendable, Codable, Equatable {
    public var routers: [String: Data]
    public var fineTuning: LocalTrainingSettings?
    public var mfFineTuning: LocalTrainingSettings?

    public init(routers: [String: Data], fineTuning: LocalTrainingSettings?, mfFineTuning: LocalTrainingSettings?) {
        self.routers = routers
        self.fineTuning = fineTuning
        self.mfFineTuning = mfFineTuning
    }
}
