import FedRouteNumerics
import Foundation
import Testing

/// The store under `TensorFrameCache` and the federation's shared network buffers: the waiting paths.
@Suite struct ReuseCacheTests {
    struct Refused: Error {}

    /// Runs `body` on `count` threads of their own, let go at once, and waits for all.
    static func together(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let threads = (0..<count).map { i in Thread { start.wait(); body(i); done.leave() } }
        for t in threads {
            done.enter()
            t.start()
        }
        for _ in threads { start.signal() }
        done.wait()
    }

    /// A caller that waited while the first caller's `make` threw makes the value itself, and it is kept.
    @Test func aWaiterMakesTheValueWhenTheFirstMakeThrows() {
        let cache = ReuseCache<String, Int>(maxEntries: 4, maxBytes: 100)
        let makes = Counter()
        let results = Counter()
        Self.together(3) { _ in
            let v = try? cache.value(for: "model") {
                makes.add(1)
                Thread.sleep(forTimeInterval: 0.05)
                // The first make fails; the next caller's succeeds.
                if makes.value == 1 { throw Refused() }
                return (42, 8)
            }
            if v == 42 { results.add(1) }
        }
        #expect(makes.value == 2)
        #expect(results.value == 2)
        #expect(cache.value(for: "model") { (0, 8) } == 42)
    }

    /// A value larger than `maxBytes` is never kept: callers asking at once make it one after another, not all at
    /// the same time.
    @Test func aValueTooLargeToKeepIsMadeByEachCallerInTurn() {
        let cache = ReuseCache<String, Int>(maxEntries: 4, maxBytes: 100)
        let running = Counter()
        let most = Counter()
        Self.together(3) { _ in
            _ = cache.value(for: "huge") {
                running.add(1)
                if running.value > most.value { most.add(running.value - most.value) }
                Thread.sleep(forTimeInterval: 0.02)
                running.add(-1)
                return (7, 1000)
            }
        }
        #expect(cache.counts.misses == 3 && cache.counts.hits == 0)
        #expect(most.value == 1)
    }
}
