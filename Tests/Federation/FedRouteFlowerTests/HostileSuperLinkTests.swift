import AsyncHTTPClient
import Crypto
import FedRouteFeatures
import FedRouteFederation
import FedRouteHTTPRunner
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import SwiftProtobuf
import Testing
@testable import FedRouteFlower

/// A Fleet API that serves scripted instructions and records what the node pushes back.
actor FakeSuperLink {
    var queue: [(header: FlowerProtoMessage, tree: FlowerProtoObjectTree)] = []
    var objects: [String: Data] = [:]
    var replies: [FlowerProtoMessage] = []
    var pushed: [String: Data] = [:]
    let nodeID: UInt64 = 77

    func enqueue(_ m: (header: FlowerProtoMessage, tree: FlowerProtoObjectTree, objects: [String: Data])) {
        queue.append((m.header, m.tree))
        objects.merge(m.objects) { _, new in new }
    }

    func handle(_ rpc: String, _ body: Data) throws -> Data {
        switch rpc {
        case "register-node": return try FlowerProtoRegisterNodeFleetResponse.with { $0.nodeID = nodeID }.serializedData()
        case "activate-node": return try FlowerProtoActivateNodeResponse.with { $0.nodeID = nodeID }.serializedData()
        case "send-node-heartbeat": return try FlowerProtoSendNodeHeartbeatResponse.with { $0.success = true }.serializedData()
        case "pull-messages":
            guard !queue.isEmpty else { return try FlowerProtoPullMessagesResponse().serializedData() }
            let (h, t) = queue.removeFirst()
            return try FlowerProtoPullMessagesResponse.with { $0.messagesList = [h]; $0.messageObjectTrees = [t] }.serializedData()
        case "pull-object":
            let r = try FlowerProtoPullObjectRequest(serializedBytes: body)
            return try FlowerProtoPullObjectResponse.with {
                $0.objectFound = objects[r.objectID] != nil
                $0.objectAvailable = objects[r.objectID] != nil
                $0.objectContent = objects[r.objectID] ?? Data()
            }.serializedData()
        case "confirm-message-received": return try FlowerProtoConfirmMessageReceivedResponse().serializedData()
        case "push-messages":
            let r = try FlowerProtoPushMessagesRequest(serializedBytes: body)
            replies += r.messagesList
            func ids(_ t: FlowerProtoObjectTree) -> [String] { [t.objectID] + t.children.flatMap(ids) }
            return try FlowerProtoPushMessagesResponse.with { $0.objectsToPush = r.messageObjectTrees.flatMap(ids); $0.sessionID = "s" }.serializedData()
        case "push-object":
            let r = try FlowerProtoPushObjectRequest(serializedBytes: body)
            pushed[r.objectID] = r.objectContent
            return try FlowerProtoPushObjectResponse.with { $0.stored = true }.serializedData()
        case "deactivate-node": return try FlowerProtoDeactivateNodeResponse().serializedData()
        default: throw HTTPError(.notFound)
        }
    }
}

/// Answers what the handler asks before it looks at the arrays.
struct StubClient: FederatedClient {
    let id = "stub"
    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        guard case .useEncoder = request else { throw FederationError.protocolViolation(client: id, "unexpected \(request.kind)") }
        return .encoderReady(featureDimension: 4)
    }
}

@Suite struct HostileSuperLinkTests {
    static let architecture = MLPArchitecture(inputDimension: 4, hiddenDimension: 3, trunkLayers: 1, modelCount: 2, dropout: 0)

    /// An instruction built object by object, so that its parts can be wrong while every id is right.
    static func instruction(type: String, arrays: [(name: String, npy: Data, shape: [Int])], config: [FlowerEntry<FlowerValue>], configName: String = "config")
        throws -> (header: FlowerProtoMessage, tree: FlowerProtoObjectTree, objects: [String: Data]) {
        var objects: [String: Data] = [:]
        func put(_ o: FlowerObject) -> String { objects[o.id] = o.encoded; return o.id }
        var arrayRefs: [(String, PythonJSON)] = []
        var arrayTrees: [FlowerProtoObjectTree] = []
        for a in arrays {
            let chunk = put(FlowerObject(type: "ArrayChunk", children: [], body: a.npy))
            let meta = PythonJSON.object([("dtype", .string("float32")), ("shape", .array(a.shape.map { .int($0) })), ("stype", .string("numpy.ndarray")),
                                          ("arraychunk_ids", .array([.int(0)]))])
            let id = put(FlowerObject(type: "Array", children: [chunk], body: meta.encoded))
            arrayRefs.append((a.name, .string(id)))
            arrayTrees.append(FlowerMessageCodec.leaf(id, [FlowerMessageCodec.leaf(chunk)]))
        }
        var records: [(String, PythonJSON)] = []
        var recordTrees: [FlowerProtoObjectTree] = []
        if !arrays.isEmpty {
            let id = put(FlowerObject(type: "ArrayRecord", children: arrayTrees.map(\.objectID), body: PythonJSON.object(arrayRefs).encoded))
            records.append(("arrays", .string(id)))
            recordTrees.append(FlowerMessageCodec.leaf(id, arrayTrees))
        }
        let (configID, configTree) = try FlowerMessageCodec.deflate(.config(config), store: put)
        records.append((configName, .string(configID)))
        recordTrees.append(configTree)
        let rd = put(FlowerObject(type: "RecordDict", children: recordTrees.map(\.objectID), body: PythonJSON.object(records).encoded))
        let md = FlowerProtoMetadata.with {
            $0.runID = 1
            $0.srcNodeID = 1
            $0.dstNodeID = 77
            $0.createdAt = Date().timeIntervalSince1970
            $0.ttl = 600
            $0.messageType = type
        }
        let messageID = put(FlowerObject(type: "Message", children: [rd], body: try FlowerProtoMessage.with { $0.metadata = md }.serializedData()))
        let header = FlowerProtoMessage.with {
            $0.metadata = md
            $0.metadata.messageID = messageID
            $0.content = FlowerProtoRecordDict()
        }
        return (header, FlowerMessageCodec.leaf(messageID, [FlowerMessageCodec.leaf(rd, recordTrees)]), objects)
    }

    static func plan() throws -> FlowerEntry<FlowerValue> {
        let plan = FlowerTrainingPlan(family: "mlp", architecture: architecture, settings: LocalTrainingSettings(), costNormalizer: CostNormalizer(mean: [0, 0], std: [1, 1]),
                                      encoder: .hashedTFIDF(configuration: .init(dimension: 4), idf: [1, 1, 1, 1]), seeds: ["stub": [1]])
        return FlowerEntry("fedroute.plan", .bytes(try plan.encoded()))
    }

    /// Wrong object id, truncated `.npy`, wrong shape, unknown message type: each gets an error reply
    /// naming the problem; the node stays up and takes the final message normally.
    @Test func hostileInstructionsGetErrorReplies() async throws {
        let fake = FakeSuperLink()
        let network = MLPNetwork(architecture: Self.architecture, seed: 1)
        func arrays(_ n: MLPNetwork) -> [(name: String, npy: Data, shape: [Int])] {
            n.parameters.map { (name: $0.name, npy: try! NumpyArray(shape: $0.shape, values: $0.values).encoded(), shape: $0.shape) }
        }
        let good = arrays(network)
        let round: FlowerEntry<FlowerValue> = FlowerEntry("server-round", .sint(1))

        // 1. An object whose bytes do not hash to its id (other weights: no chunk is shared with the rest).
        let other = arrays(MLPNetwork(architecture: Self.architecture, seed: 2))
        var tampered = try Self.instruction(type: "train", arrays: other, config: [try Self.plan(), round])
        let chunkID = FlowerObject(type: "ArrayChunk", children: [], body: other[0].npy).id  // random weights: not in any other instruction
        tampered.objects[chunkID]!.append(0)
        await fake.enqueue(tampered)
        // 2. A truncated .npy.
        var truncated = good
        truncated[0].npy = truncated[0].npy.dropLast(5)
        await fake.enqueue(try Self.instruction(type: "train", arrays: truncated, config: [try Self.plan(), round]))
        // 3. Arrays of the wrong shape for the plan's network.
        var wrong = good
        let t = try NumpyArray(shape: [1, 1], values: [0])
        wrong[0] = (wrong[0].name, t.encoded(), [1, 1])
        await fake.enqueue(try Self.instruction(type: "train", arrays: wrong, config: [try Self.plan(), round]))
        // 4. A message type the node does not answer.
        await fake.enqueue(try Self.instruction(type: "query.unknown", arrays: [], config: [FlowerEntry("x", .sint(1))]))
        // 5. The end of the run.
        let outcome = try JSONEncoder().encode(FlowerRunOutcome(routers: [:], fineTuning: nil, mfFineTuning: nil))
        await fake.enqueue(try Self.instruction(type: "query.fedroute", arrays: [], config: [FlowerEntry("op", .string("finish")), FlowerEntry("outcome", .bytes(outcome))],
                                                configName: "fedroute"))

        let logger = Logger(label: "test")
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let result: FlowerNode.Outcome
        do {
            result = try await HTTPRunner.withRunning(logger: logger, { ready in
                let router = Router()
                router.post("/v1/fleet/:rpc") { request, context in
                    let body = try await request.body.collect(upTo: 64 << 20)
                    let out = try await fake.handle(context.parameters.get("rpc") ?? "", Data(buffer: body))
                    return Response(status: .ok, headers: [.contentType: "application/protobuf"], body: .init(byteBuffer: ByteBuffer(data: out)))
                }
                return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                   onServerRunning: { await ready($0.localAddress?.port ?? 0) }, logger: logger)
            }) { port in
                var settings = FlowerNode.Settings()
                settings.pollInterval = .milliseconds(20)
                settings.linger = .zero
                settings.giveUpAfter = .seconds(10)
                let fleet = FleetClient(superlink: "http://127.0.0.1:\(port)", http: http, signer: FleetSigner(key: P256.Signing.PrivateKey()))
                return try await FlowerNode(fleet: fleet, handler: FlowerTaskHandler(clientID: "stub", client: StubClient()), settings: settings, logger: logger).run()
            }
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()

        let replies = await fake.replies
        #expect(replies.count == 5)
        #expect(result.messages == 5 && result.failures == 4 && result.run != nil)
        let reasons = replies.map(\.error.reason)
        for (i, expected) in ["hashes to", "data bytes", "was expected", "not one this node answers"].enumerated() {
            #expect(replies[i].hasError && reasons[i].contains(expected), "reply \(i + 1): \(reasons[i])")
            #expect(!replies[i].hasContent)
        }
        #expect(!replies[4].hasError && replies[4].hasContent)
        // Every reply was pushed as objects whose bytes hash to their ids, its id the Message object's.
        let pushed = await fake.pushed
        for r in replies {
            let bytes = try #require(pushed[r.metadata.messageID])
            #expect(FlowerObject.id(of: bytes) == r.metadata.messageID)
            #expect(r.metadata.dstNodeID == 1 && r.metadata.srcNodeID == 77)
        }
    }
}
