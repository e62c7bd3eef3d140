import FedRouteGatewayStore
import Logging
import Synchronization

/// Writes finished requests (and their keys' spend) to the store behind their responses, many rows per
/// transaction.
///
/// A request's row used to be written before its response went out: on 2 cores that was 0.5 ms of
/// each request's latency (a hop to the database's writer, the insert, the commit, a hop back), as
/// much as routing. `enqueue` now returns at once unless `capacity` rows are already waiting (then
/// it waits for room, so a stalled database slows clients down rather than growing memory), and one
/// writer drains the queue in order, up to `maxBatch` rows per `GatewayStore.record(batch:)`.
///
/// Queueing a row costs its request no thread hop and the machine few wake-ups:
/// - the queue sits behind a lock, not in an actor, so `enqueue` runs on the caller's executor (for the
///   gateway, the connection's event loop) instead of hopping to a cooperative thread and back before
///   the response could go out;
/// - the first row into an empty queue waits `linger` for others, so that the writer (a task, then the
///   database's own thread) wakes once per batch, not once per request: on 2 shared cores those
///   wake-ups cost the gateway's other requests about 0.1 ms at p50 and 0.3–0.5 ms at p99.
///
/// What this changes for readers: a row reaches the store milliseconds after its response.
/// `flush()` waits until every row enqueued before the call is stored; the gateway calls it before
/// attaching feedback and at shutdown (SIGTERM/SIGINT drain the queue; a killed process loses the rows
/// of its last milliseconds, and their spend). Requests that hold a budget reservation are not
/// written here but before their response, so the next admission sees their exact spend.
final class RequestLogWriter: Sendable {
    typealias Row = (request: RoutedRequest, charge: Charge?)

    let store: any GatewayStore
    let logger: Logger
    let metrics: GatewayMetrics
    let maxBatch: Int
    let capacity: Int

    /// What the writer is doing: nothing (the queue is empty), waiting out the linger that follows the
    /// first row into an empty queue, or writing (a drain task runs until it finds the queue empty).
    private enum Phase { case idle, lingering, writing }

    private struct State {
        var pending: [Row] = []
        /// Rows ever enqueued, and rows ever written or given up on (in enqueue order).
        var enqueued = 0
        var finished = 0
        var phase = Phase.idle
        /// Counts linger periods, so that a linger task that wakes after its rows were taken early does nothing.
        var lingers = 0
        var flushWaiters: [(target: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var roomWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    /// How long the first row into an empty queue waits for others before the batch is written.
    let linger: Duration

    /// - Parameter linger: how long a row may wait for company. At one request a millisecond, 10 ms make
    ///   transactions of ~10 rows, and the writer wakes once per batch rather than once per request; a
    ///   full batch (`maxBatch`) and `flush()` end the wait at once.
    init(
        store: any GatewayStore, logger: Logger, metrics: GatewayMetrics = GatewayMetrics(), maxBatch: Int = 256, capacity: Int = 10_000,
        linger: Duration = .milliseconds(10)
    ) {
        self.store = store
        self.logger = logger
        self.metrics = metrics
        self.maxBatch = max(1, maxBatch)
        self.capacity = max(1, capacity)
        self.linger = max(.zero, linger)
    }

    /// Queues a finished request for the store; waits only while `capacity` rows are waiting.
    func enqueue(_ request: RoutedRequest, charging charge: Charge?) async {
        while true {
            // (The gauge is set under the lock, so that it cannot go back to an older count.)
            let (queued, next) = state.withLock { s -> (Bool, Next) in
                guard s.pending.count < capacity else { return (false, .nothing) }
                s.pending.append((request, charge))
                s.enqueued += 1
                metrics.requestLogPending(s.pending.count)
                return (true, s.pending.count >= maxBatch ? Self.writeNow(&s) : Self.lingerIfIdle(&s))
            }
            if queued {
                start(next)
                return
            }
            // Full: wait until the writer takes a batch (checked again under the lock, so that a batch
            // taken between the two locks does not leave this caller waiting).
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let waits = state.withLock { s in
                    guard s.pending.count >= capacity else { return false }
                    s.roomWaiters.append(c)
                    return true
                }
                if !waits { c.resume() }
            }
        }
    }

    /// Returns once every row enqueued before this call is in the store (or was reported as lost).
    func flush() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let (done, next) = state.withLock { s -> (Bool, Next) in
                guard s.finished < s.enqueued else { return (true, .nothing) }
                s.flushWaiters.append((s.enqueued, c))
                return (false, Self.writeNow(&s))
            }
            start(next)
            if done { c.resume() }
        }
    }

    /// What a caller starts after leaving the lock.
    private enum Next { case nothing, linger(Int), drain }

    /// The first row into an empty queue starts a linger.
    private static func lingerIfIdle(_ s: inout State) -> Next {
        guard s.phase == .idle else { return .nothing }
        s.phase = .lingering
        s.lingers &+= 1
        return .linger(s.lingers)
    }

    /// Ends a linger early (a full batch, a flush): the caller starts the drain.
    private static func writeNow(_ s: inout State) -> Next {
        guard s.phase != .writing, !s.pending.isEmpty else { return .nothing }
        s.phase = .writing
        return .drain
    }

    private func start(_ next: Next) {
        switch next {
        case .nothing: break
        case .drain: Task { await drain() }
        case .linger(let period):
            Task {
                try? await Task.sleep(for: linger)
                let drains = state.withLock { s in
                    guard s.phase == .lingering, s.lingers == period else { return false }
                    s.phase = .writing
                    return true
                }
                if drains { await drain() }
            }
        }
    }

    /// Rows waiting to be written.
    var backlog: Int { state.withLock { $0.pending.count } }

    private func drain() async {
        while true {
            let (batch, room) = state.withLock { s -> ([Row], [CheckedContinuation<Void, Never>]) in
                let batch = Array(s.pending.prefix(maxBatch))
                s.pending.removeFirst(batch.count)
                if batch.isEmpty { s.phase = .idle }
                defer { s.roomWaiters = [] }
                return (batch, s.roomWaiters)
            }
            for w in room { w.resume() }
            guard !batch.isEmpty else { return }
            await write(batch)
            let done = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.finished += batch.count
                metrics.requestLogPending(s.pending.count)
                let finished = s.finished
                let done = s.flushWaiters.filter { $0.target <= finished }.map(\.continuation)
                s.flushWaiters.removeAll { $0.target <= finished }
                return done
            }
            for w in done { w.resume() }
        }
    }

    /// One transaction for the batch; if it fails, row by row, so that one bad row (a duplicate id)
    /// costs only itself. A row that still cannot be written is logged with its spend, loudly.
    private func write(_ batch: [Row]) async {
        if batch.count > 1 {
            do {
                try await store.record(batch: batch)
                return
            } catch {
                logger.warning("request log: a batch of \(batch.count) rows failed; writing them one by one", metadata: ["error": "\(error)"])
            }
        }
        for (request, charge) in batch { await recordNow(request, charging: charge) }
    }

    /// Writes one finished request at once, outside the queue (the gateway's budgeted requests, and the
    /// row-by-row retry of a failed batch). The client has its answer either way, so a row that cannot
    /// be written is counted and logged with its id, key and cost rather than thrown.
    func recordNow(_ request: RoutedRequest, charging charge: Charge?) async {
        do { try await store.record(request, charging: charge) } catch {
            metrics.requestLogLost()
            logger.error("request not recorded", metadata: [
                "request_id": "\(request.id)", "key": "\(charge?.keyID ?? "-")", "cost_usd": "\(charge?.usd ?? request.costUSD ?? 0)",
                "error": "\(error)",
            ])
        }
    }
}
