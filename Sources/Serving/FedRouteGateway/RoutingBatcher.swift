import FedRouteFeatures
import FedRouteRouters
import NIOPosix
import Synchronization

/// Embeds and routes concurrent requests together.
///
/// A request that arrives while the router is idle is routed at once, alone, by the request's own
/// task; requests that arrive while a batch is running wait for it and then go as the next batch (at
/// most `maxBatch`). So an idle gateway adds no waiting, and a loaded one gets batched GEMMs (MiniLM,
/// MLP) and never runs two encoders at once on the same cores.
///
/// Where the work runs: a cheap pipeline (hashed TF-IDF features, a fraction of a millisecond per
/// query) runs on the task that routes, which for an idle gateway is the request's own, so routing one
/// request costs no thread hop at all. Before, every request went to a new draining task, then to the
/// routing pool and back twice: four wake-ups on the request's path, which on 2 shared cores cost about
/// as much as the routing itself. An expensive pipeline (MiniLM, tens of milliseconds) still runs on
/// the routing pool, off Swift's cooperative threads, so that it cannot hold up other requests' I/O.
final class RoutingBatcher: Sendable {
    /// Routes a batch of texts (one row of predictions per text).
    typealias Predict = @Sendable ([String]) throws -> RouterPredictions

    let predict: Predict
    let pool: NIOThreadPool
    let maxBatch: Int
    /// Whether batches run on the routing task itself rather than on `pool`.
    let runsInline: Bool

    private struct State {
        var queue: [(text: String, continuation: CheckedContinuation<RouterPredictions, any Error>)] = []
        /// Set while some task routes; that task clears it, or drains the queue, when it ends (under the lock).
        var running = false
    }
    private let state = Mutex(State())

    convenience init(pipeline: RoutingPipeline, pool: NIOThreadPool, maxBatch: Int = 32) {
        let inline = if case .hashed = pipeline.encoder { true } else { false }
        self.init(pool: pool, maxBatch: maxBatch, runsInline: inline) { try pipeline.predict(texts: $0) }
    }

    /// - Parameter predict: the batch routing (tests pass their own).
    init(pool: NIOThreadPool, maxBatch: Int = 32, runsInline: Bool, predict: @escaping Predict) {
        self.predict = predict
        self.pool = pool
        self.maxBatch = max(1, maxBatch)
        self.runsInline = runsInline
    }

    /// The router's predictions for one text (a one-row `RouterPredictions`).
    func predict(_ text: String) async throws -> RouterPredictions {
        let leads = state.withLock { s in
            guard !s.running else { return false }
            s.running = true
            return true
        }
        if leads {
            // Idle: this request routes alone, now, on its own task.
            defer { endLeading() }
            return try await run([text]).row(0)
        }
        return try await withCheckedThrowingContinuation { continuation in
            let drains = state.withLock { s in
                s.queue.append((text, continuation))
                guard !s.running else { return false }
                // The running batch ended between the two locks: nobody drains, so this request does.
                s.running = true
                return true
            }
            if drains { Task { await drain() } }
        }
    }

    /// Requests waiting for the next batch.
    var backlog: Int { state.withLock { $0.queue.count } }

    /// After a leading request: the requests that queued meanwhile go as batches on a task of their own
    /// (so that the leader's response does not wait for them).
    private func endLeading() {
        let more = state.withLock { s in
            if s.queue.isEmpty { s.running = false }
            return !s.queue.isEmpty
        }
        if more { Task { await drain() } }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { s -> [(text: String, continuation: CheckedContinuation<RouterPredictions, any Error>)] in
                let batch = Array(s.queue.prefix(maxBatch))
                s.queue.removeFirst(batch.count)
                if batch.isEmpty { s.running = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                let predictions = try await run(batch.map(\.text))
                for (i, item) in batch.enumerated() { item.continuation.resume(returning: predictions.row(i)) }
            } catch {
                for item in batch { item.continuation.resume(throwing: error) }
            }
        }
    }

    private func run(_ texts: [String]) async throws -> RouterPredictions {
        let predict = self.predict
        if runsInline { return try predict(texts) }
        return try await pool.runIfActive { try predict(texts) }
    }
}
