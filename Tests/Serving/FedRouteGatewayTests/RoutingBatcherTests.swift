import Dispatch
import FedRouteRouters
@testable import FedRouteGateway
import NIOPosix
import Synchronization
import Testing

/// `RoutingBatcher`: an idle batcher routes a request alone on the request's own task (cheap pipelines)
/// or on the routing pool (expensive ones); requests that arrive meanwhile go together as the next
/// batches, and every request gets its own row.
@Suite(.timeLimit(.minutes(1))) struct RoutingBatcherTests {
    @TaskLocal static var caller: Int?

    /// Two models; the first's score is the text's length, so a row shows which text it came from.
    static func predictions(_ texts: [String]) -> RouterPredictions {
        RouterPredictions(models: ["a", "b"], rows: texts.count, score: texts.flatMap { [Double($0.count), 0.5] },
                          cost: texts.flatMap { _ in [1e-3, 2e-3] }, available: Array(repeating: true, count: 2 * texts.count))
    }

    /// A cheap pipeline routes on the calling task itself (its task-local value is visible), an expensive one
    /// on a pool thread (no task there).
    @Test(arguments: [true, false])
    func whereAnIdleBatcherRoutes(_ inline: Bool) async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let seen = Mutex<[Int?]>([])
        let batcher = RoutingBatcher(pool: pool, runsInline: inline) { texts in
            seen.withLock { $0.append(Self.caller) }
            return Self.predictions(texts)
        }
        let row = try await Self.$caller.withValue(7) { try await batcher.predict("four") }
        #expect(row == Self.predictions(["four"]))
        #expect(seen.withLock { $0 } == [inline ? 7 : nil])
        try await pool.shutdownGracefully()
    }

    /// While a batch runs, arriving requests queue; they then go together (at most `maxBatch`), each
    /// gets the row of its own text, and the batcher is idle again afterwards.
    @Test(arguments: [true, false])
    func requestsArrivingDuringABatchGoTogether(_ inline: Bool) async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let gate = DispatchSemaphore(value: 0)
        let batches = Mutex<[[String]]>([])
        let batcher = RoutingBatcher(pool: pool, maxBatch: 3, runsInline: inline) { texts in
            let first = batches.withLock { b in
                b.append(texts)
                return b.count == 1
            }
            // The first batch holds its thread until the others have queued (on the pool, or, inline, on
            // one cooperative thread: the test's other tasks run on the rest).
            if first { gate.wait() }
            return Self.predictions(texts)
        }
        let texts = (1...7).map { String(repeating: "x", count: $0) }
        let leader = Task { try await batcher.predict(texts[0]) }
        while batches.withLock({ $0.count }) == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let followers = texts.dropFirst().map { text in Task { try await batcher.predict(text) } }
        while batcher.backlog < followers.count { try await Task.sleep(for: .milliseconds(1)) }
        gate.signal()
        #expect(try await leader.value == Self.predictions([texts[0]]))
        for (task, text) in zip(followers, texts.dropFirst()) { #expect(try await task.value == Self.predictions([text])) }
        let sizes = batches.withLock { $0.map(\.count) }
        #expect(sizes == [1, 3, 3])
        #expect(Set(batches.withLock { $0.flatMap { $0 } }) == Set(texts))
        // Idle again: the next request leads a batch of its own.
        #expect(try await batcher.predict("yy") == Self.predictions(["yy"]))
        #expect(batches.withLock { $0.last } == ["yy"])
        #expect(batcher.backlog == 0)
        try await pool.shutdownGracefully()
    }

    /// Many requests at once, in both modes: every one gets its own row, every text is routed once.
    @Test(arguments: [true, false])
    func manyConcurrentRequestsEachGetTheirRow(_ inline: Bool) async throws {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let routed = Mutex<[String]>([])
        let batcher = RoutingBatcher(pool: pool, maxBatch: 8, runsInline: inline) { texts in
            routed.withLock { $0 += texts }
            return Self.predictions(texts)
        }
        let texts = (1...200).map { String(repeating: "y", count: $0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for text in texts {
                group.addTask {
                    let row = try await batcher.predict(text)
                    #expect(row == Self.predictions([text]))
                }
            }
            try await group.waitForAll()
        }
        #expect(routed.withLock { $0 }.sorted() == texts.sorted())
        #expect(batcher.backlog == 0)
        try await pool.shutdownGracefully()
    }

    /// A batch that fails fails each of its requests, and the batcher goes on.
    @Test func aFailingBatchFailsItsRequestsOnly() async throws {
        struct Broken: Error {}
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let batcher = RoutingBatcher(pool: pool, runsInline: false) { texts in
            if texts.contains("bad") { throw Broken() }
            return Self.predictions(texts)
        }
        await #expect(throws: Broken.self) { try await batcher.predict("bad") }
        #expect(try await batcher.predict("good") == Self.predictions(["good"]))
        try await pool.shutdownGracefully()
    }
}
