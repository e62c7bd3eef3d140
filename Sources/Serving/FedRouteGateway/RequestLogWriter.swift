import FedRouteGatewayStore
import Logging

/// Writes finished requests (and their keys' spend) to the store behind their responses, many rows per
/// transaction.
///
/// A request's row used to be written before its response went out: on 2 cores that was 0.5 ms of
/// each request's latency (a hop to the database's writer, the insert, the commit, a hop back), as
/// much as routing. `enqueue` now returns at once unless `capacity` rows are already waiting (then
/// it waits for room, so a stalled database slows clients down rather than growing memory), and one
/// writer drains the queue in order, up to `maxBatch` rows per `GatewayStore.record(batch:)`.
///
/// What this changes for readers: a row reaches the store milliseconds after its response.
/// `flush()` waits until every row enqueued before the call is stored; the gateway calls it before
/// attaching feedback and at shutdown (SIGTERM/SIGINT drain the queue; a killed process loses the rows
/// of its last milliseconds, and their spend). Requests that hold a budget reservation are not
/// written here but before their response, so the next admission sees their exact spend.
actor RequestLogWriter {
    let store: any GatewayStore
    let logger: Logger
    let metrics: GatewayMetrics
    let maxBatch: Int
    let capacity: Int
    private var pending: [(request: RoutedRequest, charge: Charge?)] = []
    /// Rows ever enqueued, and rows ever written or given up on (in enqueue order).
    private var enqueued = 0
    private var finished = 0
    private var writing = false
    private var flushWaiters: [(target: Int, continuation: CheckedContinuation<Void, Never>)] = []
    private var roomWaiters: [CheckedContinuation<Void, Never>] = []

    init(store: any GatewayStore, logger: Logger, metrics: GatewayMetrics = GatewayMetrics(), maxBatch: Int = 256, capacity: Int = 10_000) {
        self.store = store
        self.logger = logger
        self.metrics = metrics
        self.maxBatch = max(1, maxBatch)
        self.capacity = max(1, capacity)
    }

    /// Queues a finished request for the store.
    func enqueue(_ request: RoutedRequest, charging charge: Charge?) async {
        while pending.count >= capacity { await withCheckedContinuation { roomWaiters.append($0) } }
        pending.append((request, charge))
        enqueued += 1
        metrics.requestLogPending(pending.count)
        if !writing {
            writing = true
            Task { await drain() }
        }
    }

    /// Returns once every row enqueued before this call is in the store (or was reported as lost).
    func flush() async {
        let target = enqueued
        guard finished < target else { return }
        await withCheckedContinuation { flushWaiters.append((target, $0)) }
    }

    /// Rows waiting to be written.
    var backlog: Int { pending.count }

    private func drain() async {
        while !pending.isEmpty {
            let batch = Array(pending.prefix(maxBatch))
            pending.removeFirst(batch.count)
            let waiting = roomWaiters
            roomWaiters = []
            for w in waiting { w.resume() }
            await write(batch)
            finished += batch.count
            metrics.requestLogPending(pending.count)
            let (done, open) = (flushWaiters.filter { $0.target <= finished }, flushWaiters.filter { $0.target > finished })
            flushWaiters = open
            for w in done { w.continuation.resume() }
        }
        writing = false
    }

    /// One transaction for the batch; if it fails, row by row, so that one bad row (a duplicate id)
    /// costs only itself. A row that still cannot be written is logged with its spend, loudly.
    private func write(_ batch: [(request: RoutedRequest, charge: Charge?)]) async {
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
    nonisolated func recordNow(_ request: RoutedRequest, charging charge: Charge?) async {
        do { try await store.record(request, charging: charge) } catch {
            metrics.requestLogLost()
            logger.error("request not recorded", metadata: [
                "request_id": "\(request.id)", "key": "\(charge?.keyID ?? "-")", "cost_usd": "\(charge?.usd ?? request.costUSD ?? 0)",
                "error": "\(error)",
            ])
        }
    }
}
