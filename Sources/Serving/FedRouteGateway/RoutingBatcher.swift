import FedRouteRouters
import NIOPosix

/// Embeds and routes concurrent requests together.
///
/// A request that arrives while the router is idle runs at once, alone; requests that arrive while
/// a batch is running wait for it and then go as the next batch (at most `maxBatch`). So an idle
/// gateway adds no waiting, and a loaded one gets batched GEMMs (MiniLM, MLP) and never runs two
/// encoders at once on the same cores.
actor RoutingBatcher {
    let pipeline: RoutingPipeline
    let pool: NIOThreadPool
    let maxBatch: Int
    private var queue: [(text: String, continuation: CheckedContinuation<RouterPredictions, any Error>)] = []
    private var running = false

    init(pipeline: RoutingPipeline, pool: NIOThreadPool, maxBatch: Int = 32) {
        self.pipeline = pipeline
        self.pool = pool
        self.maxBatch = max(1, maxBatch)
    }

    /// The router's predictions for one text (a one-row `RouterPredictions`).
    func predict(_ text: String) async throws -> RouterPredictions {
        try await withCheckedThrowingContinuation { continuation in
            queue.append((text, continuation))
            if !running {
                running = true
                Task { await drain() }
            }
        }
    }

    private func drain() async {
        while !queue.isEmpty {
            let batch = Array(queue.prefix(maxBatch))
            queue.removeFirst(batch.count)
            let texts = batch.map(\.text)
            let pipeline = self.pipeline
            do {
                let predictions = try await pool.runIfActive { try pipeline.predict(texts: texts) }
                for (i, item) in batch.enumerated() { item.continuation.resume(returning: predictions.row(i)) }
            } catch {
                for item in batch { item.continuation.resume(throwing: error) }
            }
        }
        running = false
    }
}
