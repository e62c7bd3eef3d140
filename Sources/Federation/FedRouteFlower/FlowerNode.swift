import AsyncHTTPClient
import Foundation
import Logging
import SwiftProtobuf

/// A fedroute node in a Flower federation: registers with the SuperLink's Fleet API, heartbeats,
/// pulls instructions (verifying every object's hash), answers them through a `FlowerTaskHandler`
/// and pushes the replies, until the ServerApp says the run is over; then it deactivates.
///
/// A message that cannot be read or answered gets an error reply (Flower's strategies count it as a
/// failure) and the node goes on; only the SuperLink being unreachable for `giveUpAfter` ends it.
public struct FlowerNode: Sendable {
    public struct Settings: Sendable {
        /// Seconds between heartbeats the SuperLink expects (10…1800); the node sends at 0.8 × this.
        public var heartbeatInterval: Double = 10
        /// Pause between pulls when no message is waiting.
        public var pollInterval: Duration = .milliseconds(500)
        /// After the run's end, keep heartbeating this long so the ServerApp can collect the last reply.
        public var linger: Duration = .seconds(3)
        /// Give up when the SuperLink has not answered for this long.
        public var giveUpAfter: Duration = .seconds(120)
        /// Test hook: SIGKILL this process on receiving a `train` message of this round (once, claimed
        /// through `crashMarker`, so that one node of several crashes).
        public var crashInRound: Int?
        public var crashMarker: String?
        /// Unregister the key when the run is over. A SuperLink refuses an unregistered key for
        /// good ("public key already in use"), so by default the node only deactivates and the same
        /// key can take part in the next run.
        public var unregister = false

        public init() {}
    }

    /// Messages of one type and the request and response body bytes spent on them (pulling their
    /// objects, confirming, pushing the reply), for the bench's bytes per round.
    public struct TypeTraffic: Sendable, Equatable {
        public var messages = 0
        public var sent = 0
        public var received = 0
        /// From pulling the message to the reply's last object pushed.
        public var seconds = 0.0
    }

    public struct Outcome: Sendable {
        public var run: FlowerRunOutcome?
        /// Per message type (`train`, `evaluate`, `query.fedroute`).
        public var traffic: [String: TypeTraffic]
        public var messages: Int
        public var failures: Int
        public var bytesSent: Int
        public var bytesReceived: Int
    }

    let fleet: FleetClient
    let handler: FlowerTaskHandler
    let settings: Settings
    let logger: Logger

    public init(fleet: FleetClient, handler: FlowerTaskHandler, settings: Settings, logger: Logger) {
        self.fleet = fleet
        self.handler = handler
        self.settings = settings
        self.logger = logger
    }

    /// Registers and activates; answers messages until the run's end; deactivates and unregisters.
    public func run() async throws -> Outcome {
        let nodeID = try await activate()
        logger.info("node active", metadata: ["node_id": .stringConvertible(nodeID), "superlink": .string(fleet.superlink)])
        let node = FlowerProtoNode.with { $0.nodeID = nodeID }
        let heartbeat = Task { [fleet, settings, logger] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64(settings.heartbeatInterval * 800)))
                do {
                    _ = try await fleet.call("send-node-heartbeat", FlowerProtoSendNodeHeartbeatRequest.with {
                        $0.node = node
                        $0.heartbeatInterval = settings.heartbeatInterval
                    }, as: FlowerProtoSendNodeHeartbeatResponse.self)
                } catch where !Task.isCancelled { logger.warning("heartbeat failed", metadata: ["error": "\(error)"]) } catch {}
            }
        }
        defer { heartbeat.cancel() }
        var messages = 0
        var failures = 0
        var byType: [String: TypeTraffic] = [:]
        var lastContact = ContinuousClock.now
        while await handler.outcome == nil {
            do {
                let pulled = try await fleet.call("pull-messages", FlowerProtoPullMessagesRequest.with { $0.node = node }, as: FlowerProtoPullMessagesResponse.self)
                lastContact = .now
                guard let message = pulled.messagesList.first, let tree = pulled.messageObjectTrees.first else {
                    try await Task.sleep(for: settings.pollInterval)
                    continue
                }
                messages += 1
                let (sent, received) = (await fleet.traffic.sent, await fleet.traffic.received)
                let started = ContinuousClock.now
                if try await !answer(message, tree: tree, node: node) { failures += 1 }
                var t = byType[message.metadata.messageType, default: TypeTraffic()]
                t.messages += 1
                t.seconds += (ContinuousClock.now - started).seconds
                t.sent += await fleet.traffic.sent - sent
                t.received += await fleet.traffic.received - received
                byType[message.metadata.messageType] = t
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("Fleet API call failed", metadata: ["error": "\(error)"])
                if ContinuousClock.now - lastContact > settings.giveUpAfter {
                    throw FlowerError.rpc("pull-messages", status: 0, "no answer from \(fleet.superlink) for \(settings.giveUpAfter): \(error)")
                }
                try await Task.sleep(for: .seconds(1))
            }
        }
        try? await Task.sleep(for: settings.linger)
        heartbeat.cancel()
        do {
            _ = try await fleet.call("deactivate-node", FlowerProtoDeactivateNodeRequest.with { $0.nodeID = nodeID }, as: FlowerProtoDeactivateNodeResponse.self)
            if settings.unregister {
                _ = try await fleet.call("unregister-node", FlowerProtoUnregisterNodeFleetRequest.with { $0.nodeID = nodeID }, as: FlowerProtoUnregisterNodeFleetResponse.self)
            }
        } catch { logger.warning("leaving the federation failed", metadata: ["error": "\(error)"]) }
        logger.info("node done", metadata: ["messages": .stringConvertible(messages), "failures": .stringConvertible(failures)])
        return Outcome(run: await handler.outcome, traffic: byType, messages: messages, failures: failures,
                       bytesSent: await fleet.traffic.sent, bytesReceived: await fleet.traffic.received)
    }

    /// Registers the key (a restarted node's key may still be registered: then activation alone
    /// finds it) and activates, retrying until `giveUpAfter`.
    func activate() async throws -> UInt64 {
        let key = fleet.signer.publicKeyPEM
        let start = ContinuousClock.now
        while true {
            do {
                do {
                    _ = try await fleet.call("register-node", FlowerProtoRegisterNodeFleetRequest.with { $0.publicKey = key }, as: FlowerProtoRegisterNodeFleetResponse.self)
                } catch FlowerError.rpc(let rpc, let status, let why) where status != 0 {
                    logger.info("register-node refused; activating the registered key", metadata: ["status": .stringConvertible(status), "why": .string(why), "rpc": .string(rpc)])
                }
                let r = try await fleet.call("activate-node", FlowerProtoActivateNodeRequest.with {
                    $0.publicKey = key
                    $0.heartbeatInterval = settings.heartbeatInterval
                }, as: FlowerProtoActivateNodeResponse.self)
                return r.nodeID
            } catch {
                guard ContinuousClock.now - start < settings.giveUpAfter else {
                    if error is FlowerError { throw error }
                    throw FlowerError.rpc("activate-node", status: 0, "no answer from the SuperLink at \(fleet.superlink) within \(settings.giveUpAfter): \(error)")
                }
                logger.info("SuperLink not ready", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Pulls the message's objects, answers it and pushes the reply; false when the reply is an error.
    func answer(_ header: FlowerProtoMessage, tree: FlowerProtoObjectTree, node: FlowerProtoNode) async throws -> Bool {
        let md = header.metadata
        let messageID = md.messageID
        var content: FlowerRecordDict?
        var problem: String?
        do {
            guard tree.objectID == messageID else { throw FlowerError.message("the object tree's root \(tree.objectID.prefix(16)) is not the message id") }
            let objects = try await pull(tree, runID: md.runID, node: node)
            _ = try await fleet.call("confirm-message-received", FlowerProtoConfirmMessageReceivedRequest.with {
                $0.node = node
                $0.runID = md.runID
                $0.messageObjectID = messageID
            }, as: FlowerProtoConfirmMessageReceivedResponse.self)
            let inflated = try FlowerMessageCodec.inflate(messageID: messageID, objects: objects)
            guard let received = inflated.content else { throw FlowerError.message("the instruction carries no content") }
            let round = try? received.config("config").value("server-round")?.int
            if md.messageType == "train", let crash = settings.crashInRound, let round, round >= crash, claimCrash() {
                logger.warning("test hook: crashing mid-round", metadata: ["round": .stringConvertible(round)])
                kill(getpid(), SIGKILL)
            }
            content = try await handler.handle(type: md.messageType, round: round, content: received)
        } catch {
            problem = "\(error)"
        }
        if let problem { logger.warning("answering with an error", metadata: ["type": .string(md.messageType), "error": .string(problem)]) }
        let now = Date().timeIntervalSince1970
        var reply = FlowerProtoMetadata()
        reply.runID = md.runID
        reply.srcNodeID = md.dstNodeID
        reply.dstNodeID = md.srcNodeID
        reply.replyToMessageID = messageID
        reply.groupID = md.groupID
        reply.messageType = md.messageType
        reply.createdAt = now
        reply.ttl = max(1, md.createdAt + md.ttl - now)
        if md.hasDstTaskID { reply.srcTaskID = md.dstTaskID }
        if md.hasSrcTaskID { reply.dstTaskID = md.srcTaskID }
        let error = problem.map { why in FlowerProtoError.with { $0.code = 0; $0.reason = why } }
        let deflated = try FlowerMessageCodec.deflate(metadata: reply, content: error == nil ? content : nil, error: error)
        reply.messageID = deflated.messageID
        // The header carries the metadata and either an empty content or the error (never both).
        var header = FlowerProtoMessage()
        header.metadata = reply
        if let error { header.error = error } else { header.content = FlowerProtoRecordDict() }
        let pushed = try await fleet.call("push-messages", FlowerProtoPushMessagesRequest.with {
            $0.node = node
            $0.messagesList = [header]
            $0.messageObjectTrees = [deflated.tree]
            $0.clientappRuntimeList = [0]
        }, as: FlowerProtoPushMessagesResponse.self)
        let objects = deflated.byID
        for id in pushed.objectsToPush {
            guard let bytes = objects[id] else { throw FlowerError.message("the SuperLink asked for object \(id.prefix(16)), which the reply does not hold") }
            let stored = try await fleet.call("push-object", FlowerProtoPushObjectRequest.with {
                $0.node = node
                $0.runID = md.runID
                $0.objectID = id
                $0.objectContent = bytes
                $0.sessionID = pushed.sessionID
            }, as: FlowerProtoPushObjectResponse.self)
            guard stored.stored else { throw FlowerError.rpc("push-object", status: 200, "object \(id.prefix(16)) was not stored") }
        }
        logger.debug("replied", metadata: ["type": .string(md.messageType), "error": .string(problem ?? "-")])
        return problem == nil
    }

    /// Every object of the tree, each checked against its id and its header's children against the
    /// tree's. Up to `concurrentPulls` objects are pulled at once (one RPC each); an object the
    /// SuperLink has not got yet is asked for again for up to 60 s.
    func pull(_ tree: FlowerProtoObjectTree, runID: UInt64, node: FlowerProtoNode) async throws -> [String: FlowerObject] {
        var order: [(id: String, children: Set<String>)] = []
        var seen = Set<String>()
        func visit(_ t: FlowerProtoObjectTree, depth: Int) throws {
            guard depth < 8 else { throw FlowerError.message("the object tree is nested too deeply") }
            guard order.count < 100_000 else { throw FlowerError.message("the object tree holds too many objects") }
            for child in t.children { try visit(child, depth: depth + 1) }
            guard seen.insert(t.objectID).inserted else { return }
            guard FlowerObject.isObjectID(t.objectID) else { throw FlowerError.object(id: t.objectID, "the id is not a SHA-256 hex digest") }
            order.append((t.objectID, Set(t.children.map(\.objectID))))
        }
        try visit(tree, depth: 0)
        var out: [String: FlowerObject] = [:]
        var total = 0
        try await withThrowingTaskGroup(of: (String, FlowerObject).self) { group in
            var next = 0
            var inFlight = 0
            while next < order.count || inFlight > 0 {
                while next < order.count, inFlight < Self.concurrentPulls {
                    let (id, children) = order[next]
                    group.addTask { (id, try await pullObject(id, children: children, runID: runID, node: node)) }
                    next += 1
                    inFlight += 1
                }
                guard let (id, object) = try await group.next() else { break }
                inFlight -= 1
                total += object.body.count
                guard total <= 1 << 30 else { throw FlowerError.message("the message exceeds 1 GiB") }
                out[id] = object
            }
        }
        return out
    }

    static let concurrentPulls = 8

    func pullObject(_ id: String, children: Set<String>, runID: UInt64, node: FlowerProtoNode) async throws -> FlowerObject {
        for _ in 0..<300 {
            let r = try await fleet.call("pull-object", FlowerProtoPullObjectRequest.with {
                $0.node = node
                $0.runID = runID
                $0.objectID = id
            }, as: FlowerProtoPullObjectResponse.self)
            guard r.objectFound else { throw FlowerError.object(id: id, "not found on the SuperLink") }
            if r.objectAvailable {
                let object = try FlowerObject.parse(r.objectContent, expectedID: id)
                guard Set(object.children) == children else { throw FlowerError.object(id: id, "its header's children differ from the tree's") }
                return object
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw FlowerError.object(id: id, "not available after 60 s")
    }

    func claimCrash() -> Bool {
        guard let marker = settings.crashMarker else { return true }
        let fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0o644)
        guard fd >= 0 else { return false }
        let text = Array("\(handlerID)\n".utf8)
        _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return true
    }

    var handlerID: String { handler.clientID }
}
