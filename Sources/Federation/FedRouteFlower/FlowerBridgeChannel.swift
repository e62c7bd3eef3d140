import Foundation
import FedRouteFeatures
import FedRouteFederation

/// The line protocol between the Python ServerApp and `fedroute flower-bridge`: the bridge writes one
/// JSON object per line to its standard output (`{"seq": n, "op": …}`), the ServerApp answers each
/// with one line on the bridge's standard input carrying the same `seq`. Several requests may be in
/// flight (the coordinator asks clients concurrently); answers may come in any order.
public actor FlowerBridgeChannel {
    let output: @Sendable (Data) -> Void
    var pending: [Int: CheckedContinuation<BridgeAnswer, any Error>] = [:]
    var nextSeq = 1
    var closed: (any Error)?

    /// `output` writes one line (the bridge: standard output).
    public init(output: @escaping @Sendable (Data) -> Void) { self.output = output }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = .sortedKeys
        return e
    }()

    /// Sends `request` (its `seq` is set here) and waits for the ServerApp's answer; an answer with
    /// `error` throws it.
    public func call(_ request: BridgeRequest) async throws -> BridgeAnswer {
        if let closed { throw closed }
        var r = request
        r.seq = nextSeq
        nextSeq += 1
        let line = try Self.encoder.encode(r) + Data([0x0A])
        return try await withCheckedThrowingContinuation { c in
            pending[r.seq] = c
            output(line)
        }
    }

    /// Feeds one line of the ServerApp's answers (lines that are not answers are ignored).
    public func receive(_ line: Data) {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        guard let answer = try? d.decode(BridgeAnswer.self, from: line), let c = pending.removeValue(forKey: answer.seq) else { return }
        if let error = answer.error { c.resume(throwing: FlowerError.bridge(error)) } else { c.resume(returning: answer) }
    }

    /// The ServerApp went away: every waiting call fails.
    public func close(_ error: any Error) {
        closed = error
        for (_, c) in pending { c.resume(throwing: error) }
        pending.removeAll()
    }

    /// Reads answers from standard input on a thread of its own (blocking reads stay off the
    /// concurrency pool) until it ends; then every waiting call fails.
    public nonisolated func pumpStandardInput() {
        let thread = Thread { [self] in
            while let line = readLine(strippingNewline: true) {
                let data = Data(line.utf8)
                Task { await self.receive(data) }
            }
            Task { await self.close(FlowerError.bridge("the ServerApp closed the bridge's input")) }
        }
        thread.start()
    }
}

/// One request of the bridge to the ServerApp (`op`: `wait-for-clients`, `ask`, `fedavg`, `finish`).
public struct BridgeRequest: Sendable, Codable {
    public var seq = 0
    public var op: String
    /// `ask`: the fedroute client, its request (base64 JSON) and the current encoder (base64 JSON).
    public var client: String?
    public var request: String?
    public var encoder: String?
    /// `wait-for-clients`: every client id of the federation; `timeout` in seconds.
    public var clients: [String]?
    public var timeout: Double?
    /// `fedavg`: the family, the directory holding the initial arrays (`NNNN.npy`, in `names` order),
    /// the rounds, the participation and the plan (base64 JSON) for the strategy's ConfigRecord.
    public var family: String?
    public var arraysDir: String?
    public var names: [String]?
    public var rounds: Int?
    public var participation: Double?
    public var plan: String?
    /// `finish`: the run's outcome for every node (base64 JSON) and the summary path.
    public var outcome: String?
    public var summary: String?

    public init(op: String) { self.op = op }
}

/// The ServerApp's answer to one request.
public struct BridgeAnswer: Sendable, Codable {
    public var seq: Int
    public var error: String?
    /// `ask`: the reply (base64 JSON).
    public var reply: String?
    /// `fedavg`: the directory of the final arrays and what each round did.
    public var arraysDir: String?
    public var rounds: [FlowerRoundReport]?
    /// `wait-for-clients`: node id per client.
    public var nodes: [String: UInt64]?
}

/// One round of a Flower strategy as the ServerApp saw it: who was sent the instruction, whose
/// replies were aggregated, and the failures Flower reported (error replies, no reply in time).
public struct FlowerRoundReport: Sendable, Codable, Equatable {
    public var round: Int
    public var sampled: [String]
    public var aggregated: [String]
    public var failures: [String: String]
    public var seconds: Double
    public var trainLoss: Double?
    public var numExamples: Int?
}

/// A fedroute client reached through the ServerApp: each request becomes a `query.fedroute` message
/// to the node that said it holds `id`.
struct RelayedClient: FederatedClient {
    let id: String
    let channel: FlowerBridgeChannel
    let encoder: EncoderBox

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        var ask = BridgeRequest(op: "ask")
        ask.client = id
        ask.request = try JSONEncoder().encode(request).base64EncodedString()
        if case .useEncoder(let spec) = request {
            await encoder.set(spec)
        } else if let spec = await encoder.spec {
            ask.encoder = try JSONEncoder().encode(spec).base64EncodedString()
        }
        let answer = try await channel.call(ask)
        guard let text = answer.reply, let data = Data(base64Encoded: text) else {
            throw FlowerError.bridge("the answer to \(request.kind) for \(id) has no reply")
        }
        do { return try JSONDecoder().decode(FederatedReply.self, from: data) } catch {
            throw FlowerError.bridge("\(id)'s reply to \(request.kind) is unreadable: \(error)")
        }
    }
}

/// The federation's encoder once setup chose it (a node that restarted adopts it again).
actor EncoderBox {
    var spec: EncoderSpec?
    func set(_ s: EncoderSpec) { spec = s }
}
