import Crypto
import FedRouteFederation
import FedRouteHTTPRunner
import Foundation
import Logging

/// The coordinator's live view of its clients: sessions, mailboxes of tasks, outstanding replies.
///
/// The federated algorithms call `dispatch` (through `RemoteClient`) and wait for the reply;
/// client processes pick tasks up with `poll` and answer with `reply`. A task whose deadline passes,
/// or whose client re-joins with a new session (it was restarted), fails at once, so a dead client
/// costs a round at most its deadline and never stalls it.
public actor ClientRegistry {
    struct Pending {
        let client: String
        let session: String
        let kind: String
        let continuation: CheckedContinuation<FederatedReply, any Error>
    }

    struct Waiter {
        let token: UInt64
        let continuation: CheckedContinuation<TaskEnvelope?, Never>
    }

    struct Entry {
        var session: String?
        var lastSeen: ContinuousClock.Instant?
        var queue: [TaskEnvelope] = []
        var waiter: Waiter?
        /// The session that has featurised its data with the federation's encoder.
        var encoderSession: String?
    }

    public let federation: String
    var authenticator: ClientAuthenticator
    var entries: [String: Entry]
    var pending: [String: Pending] = [:]
    /// Ids of tasks already answered or expired (a second reply is a replay or a straggler).
    var closed: Set<String> = []
    var nextToken: UInt64 = 0
    public private(set) var finished = false
    /// The trained router files and fine-tuning settings, handed to clients with "finished".
    var outcome = FederationOutcome()
    /// The encoder every client must use before training requests (set by the first `useEncoder`).
    public private(set) var encoder: EncoderSpec?
    /// Body bytes received from and sent to clients.
    public private(set) var bytesIn = 0
    public private(set) var bytesOut = 0
    /// The most recent rejected requests by reason (at most `keptRejections`, for tests and
    /// diagnosis); `rejectionCount` counts all of them.
    public private(set) var rejections: [String] = []
    public private(set) var rejectionCount = 0
    public static let keptRejections = 100
    /// Bodies being received per client (a client may send at most `maxBodiesInFlight` at once, so
    /// one key cannot make the coordinator buffer unbounded data).
    var bodiesInFlight: [String: Int] = [:]
    public static let maxBodiesInFlight = 2
    let logger: Logger
    /// A client with no request for this long is offline: training requests to it fail at once.
    let offlineAfter: Duration

    public init(federation: String, authenticator: ClientAuthenticator, offlineAfter: Duration = .seconds(45), logger: Logger) {
        self.federation = federation
        self.authenticator = authenticator
        self.offlineAfter = offlineAfter
        self.logger = logger
        clientIDs = authenticator.clientIDs
        entries = Dictionary(uniqueKeysWithValues: authenticator.clientIDs.map { ($0, Entry()) })
    }

    public nonisolated let clientIDs: [String]
    public var nonces: [String: UInt64] { authenticator.lastNonce }

    // MARK: Requests from clients

    /// Checks a request's signature headers before its body is read (see
    /// `ClientAuthenticator.precheck`) and reserves one of the client's `maxBodiesInFlight` body
    /// slots; the caller must `finishBody` it. Logs and rethrows the reason when it is refused.
    public func precheck(path: String, headers: [String: String]) throws -> SignedRequestHeaders {
        let checked: SignedRequestHeaders
        do { checked = try authenticator.precheck(header: { headers[$0] }, now: Int64(Date().timeIntervalSince1970)) } catch {
            reject("\(path): \(error)")
            throw WireError(error.description, status: 401)
        }
        guard bodiesInFlight[checked.client, default: 0] < Self.maxBodiesInFlight else {
            reject("\(path): client \(checked.client) already sends \(Self.maxBodiesInFlight) bodies")
            throw WireError("too many concurrent requests from client \(checked.client)", status: 429)
        }
        bodiesInFlight[checked.client, default: 0] += 1
        return checked
    }

    /// Releases the body slot `precheck` reserved.
    public func finishBody(of client: String) {
        bodiesInFlight[client, default: 1] -= 1
        if bodiesInFlight[client] == 0 { bodiesInFlight[client] = nil }
    }

    /// Verifies the signature of a prechecked request over its streamed body's digest and records
    /// its nonce; logs and rethrows the reason when it is refused.
    public func authenticate(method: String, path: String, _ checked: SignedRequestHeaders, bodyDigest: SHA256.Digest,
                             bodyBytes: Int) throws -> (client: String, session: String) {
        bytesIn += bodyBytes
        do {
            let client = try authenticator.verify(method: method, path: path, checked, bodyDigest: bodyDigest)
            entries[client]?.lastSeen = .now
            return (client, checked.session)
        } catch {
            reject("\(path): \(error)")
            throw WireError(error.description, status: 401)
        }
    }

    /// Records a refusal: counted, logged escaped and cut, and kept among the last `keptRejections`.
    func reject(_ why: String) {
        let safe = LogText.escape(why, limit: 500)
        rejectionCount += 1
        rejections.append(safe)
        if rejections.count > Self.keptRejections { rejections.removeFirst(rejections.count - Self.keptRejections) }
        logger.warning("rejected request", metadata: ["reason": .string(safe)])
    }

    public func countOut(_ bytes: Int) { bytesOut += bytes }

    /// Starts a new session; tasks of the client's previous session fail ("restarted").
    public func join(client: String) -> JoinResponse {
        let session = UUID().uuidString
        if let old = entries[client]?.session { failTasks(of: client, session: old, because: "client \(client) restarted (new session)") }
        entries[client]?.waiter?.continuation.resume(returning: nil)
        entries[client]?.waiter = nil
        entries[client]?.queue.removeAll()
        entries[client]?.session = session
        entries[client]?.encoderSession = nil
        entries[client]?.lastSeen = .now
        logger.info("client joined", metadata: ["client": .string(client), "session": .string(session)])
        return JoinResponse(federation: federation, session: session)
    }

    func checkSession(_ client: String, _ session: String) throws {
        guard entries[client]?.session == session else {
            reject("client \(client): unknown session \(session.prefix(8)) (coordinator restarted or client re-joined)")
            throw WireError("unknown session; join again", status: 409)
        }
    }

    /// The next task for the client, waiting up to `wait` for one; nil when none came.
    public func poll(client: String, session: String, wait: Duration) async throws -> PollResponse {
        try checkSession(client, session)
        if finished { return PollResponse(task: nil, finished: true, routers: outcome.routers, fineTuning: outcome.fineTuning, mfFineTuning: outcome.mfFineTuning) }
        if let task = entries[client]?.queue.first {
            entries[client]?.queue.removeFirst()
            return PollResponse(task: task, finished: false)
        }
        nextToken += 1
        let token = nextToken
        let task = await withCheckedContinuation { (c: CheckedContinuation<TaskEnvelope?, Never>) in
            entries[client]?.waiter?.continuation.resume(returning: nil)
            entries[client]?.waiter = Waiter(token: token, continuation: c)
            Task { [weak self] in
                try? await Task.sleep(for: wait)
                await self?.expireWaiter(client: client, token: token)
            }
        }
        entries[client]?.lastSeen = .now
        let done = task == nil && finished
        return PollResponse(task: task, finished: done, routers: done ? outcome.routers : nil, fineTuning: done ? outcome.fineTuning : nil,
                            mfFineTuning: done ? outcome.mfFineTuning : nil)
    }

    func expireWaiter(client: String, token: UInt64) {
        guard let w = entries[client]?.waiter, w.token == token else { return }
        entries[client]?.waiter = nil
        w.continuation.resume(returning: nil)
    }

    /// Delivers a reply to the task it answers.
    public func reply(client: String, session: String, envelope: ReplyEnvelope) throws {
        try checkSession(client, session)
        guard let p = pending[envelope.taskID] else {
            let why = closed.contains(envelope.taskID) ? "a second reply or one after the deadline" : "no such task"
            reject("client \(client): reply to task \(envelope.taskID.prefix(8)) refused: \(why)")
            throw WireError("task \(envelope.taskID) is not open: \(why)", status: 409)
        }
        guard p.client == client, p.session == session else {
            reject("client \(client): reply to a task of client \(p.client) refused")
            throw WireError("task \(envelope.taskID) belongs to another client", status: 409)
        }
        pending[envelope.taskID] = nil
        closed.insert(envelope.taskID)
        if let reply = envelope.reply {
            if case .encoderReady = reply { entries[client]?.encoderSession = session }
            p.continuation.resume(returning: reply)
        } else {
            p.continuation.resume(throwing: FederationError.protocolViolation(client: client, envelope.error ?? "empty reply"))
        }
    }

    // MARK: Requests from the coordinator

    public func isOnline(_ client: String) -> Bool {
        guard let e = entries[client], e.session != nil, let seen = e.lastSeen else { return false }
        return ContinuousClock.now - seen < offlineAfter
    }

    /// Clients online now.
    public var online: Int { entries.keys.filter { isOnline($0) }.count }

    /// Waits until at least `count` clients are online, up to `timeout`.
    public func waitForClients(_ count: Int, ids: [String]? = nil, timeout: Duration) async throws {
        let online = try await waitUntilOnline(count, of: ids ?? clientIDs, upTo: timeout)
        guard online >= count else {
            throw FederationError.notEnoughClients("\(online) of the \(count) required clients are online after \(timeout)")
        }
    }

    /// Waits up to `timeout` for every client to be online and returns how many are (a timeout is
    /// not an error: the caller settles for whoever came).
    public func waitForEveryClient(upTo timeout: Duration) async throws -> Int {
        try await waitUntilOnline(clientIDs.count, of: clientIDs, upTo: timeout)
    }

    /// Polls until at least `count` of `ids` are online or `timeout` has passed; returns how many are.
    private func waitUntilOnline(_ count: Int, of ids: [String], upTo timeout: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while true {
            let online = ids.filter { isOnline($0) }.count
            if online >= count || ContinuousClock.now >= deadline { return online }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Sets the encoder a resumed job already agreed on (clients get it again before training).
    public func adoptEncoder(_ spec: EncoderSpec) { encoder = spec }

    func needsEncoder(_ client: String) -> EncoderSpec? {
        guard let spec = encoder, let e = entries[client], e.encoderSession == nil || e.encoderSession != e.session else { return nil }
        return spec
    }

    /// Sends `request` to `client` and waits for its reply, at most `deadline`.
    public func dispatch(_ request: FederatedRequest, to client: String, deadline: Duration) async throws -> FederatedReply {
        if case .useEncoder(let spec) = request { encoder = spec }
        guard let session = entries[client]?.session, isOnline(client) else {
            throw FederationError.protocolViolation(client: client, "offline")
        }
        let id = UUID().uuidString
        let envelope = TaskEnvelope(taskID: id, request: request, deadlineSeconds: Double(deadline.components.seconds))
        return try await withCheckedThrowingContinuation { c in
            pending[id] = Pending(client: client, session: session, kind: request.kind, continuation: c)
            if let w = entries[client]?.waiter {
                entries[client]?.waiter = nil
                w.continuation.resume(returning: envelope)
            } else {
                entries[client]?.queue.append(envelope)
            }
            Task { [weak self] in
                try? await Task.sleep(for: deadline)
                await self?.expire(task: id, after: deadline)
            }
        }
    }

    func expire(task id: String, after deadline: Duration) {
        guard let p = pending.removeValue(forKey: id) else { return }
        closed.insert(id)
        for c in entries.keys { entries[c]?.queue.removeAll { $0.taskID == id } }
        logger.warning("deadline passed", metadata: ["client": .string(p.client), "task": .string(p.kind), "deadline": .stringConvertible(deadline)])
        p.continuation.resume(throwing: FederationError.protocolViolation(client: p.client, "no reply to \(p.kind) within \(deadline)"))
    }

    func failTasks(of client: String, session: String, because why: String) {
        for (id, p) in pending where p.client == client && p.session == session {
            pending[id] = nil
            closed.insert(id)
            logger.warning("task failed", metadata: ["client": .string(client), "task": .string(p.kind), "reason": .string(why)])
            p.continuation.resume(throwing: FederationError.protocolViolation(client: client, why))
        }
    }

    /// Training is over: every poll now answers "finished", with the router files.
    public func finish(_ outcome: FederationOutcome = FederationOutcome()) {
        self.outcome = outcome
        finished = true
        for c in entries.keys {
            entries[c]?.waiter?.continuation.resume(returning: nil)
            entries[c]?.waiter = nil
        }
    }
}
