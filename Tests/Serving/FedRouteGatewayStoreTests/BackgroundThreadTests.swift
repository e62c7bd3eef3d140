@testable import FedRouteGatewayStore
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct BackgroundThreadTests {
    struct Refused: Error {}

    /// What the jobs record: the order they ran in, and how many run at once.
    final class Trace: Sendable {
        let order = Mutex<[Int]>([])
        let running = Mutex(0)
    }

    @Test func jobsRunOneAtATimeInTheOrderTheyCome() async throws {
        let thread = BackgroundThread(name: "test-order", niceness: 0)
        let trace = Trace()
        // Submitted together: each job waits a little so that a second thread, if there were one, would overlap.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                group.addTask {
                    try await thread.run {
                        trace.running.withLock { $0 += 1 }
                        defer { trace.running.withLock { $0 -= 1 } }
                        #expect(trace.running.withLock { $0 } == 1, "two jobs ran at once")
                        usleep(2_000)
                        trace.order.withLock { $0.append(i) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(trace.order.withLock { $0 }.sorted() == Array(0..<8))
        // One caller's jobs keep their order.
        let ordered = Trace()
        for i in 0..<20 { try await thread.run { ordered.order.withLock { $0.append(i) } } }
        #expect(ordered.order.withLock { $0 } == Array(0..<20))
    }

    @Test func resultsAndErrorsReachTheCaller() async throws {
        let thread = BackgroundThread(name: "test-result", niceness: 0)
        #expect(try await thread.run { 6 * 7 } == 42)
        await #expect(throws: Refused.self) { try await thread.run { () throws -> Int in throw Refused() } }
        // The thread survives a job's error.
        #expect(try await thread.run { "still here" } == "still here")
    }

    #if canImport(Glibc)
    @Test func jobsRunAtTheLoweredPriorityOffTheCallersThread() async throws {
        let thread = BackgroundThread(name: "test-nice", niceness: 10)
        let (nice, name) = try await thread.run {
            (getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0), Thread.current.name)
        }
        #expect(nice == 10)
        #expect(name == "test-nice")
        // The caller's own thread keeps its priority.
        #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) != 10)
    }
    #endif
}
