import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One thread, at a lowered scheduling priority, that runs jobs one at a time in the order they come.
///
/// The SQLite store writes the request log's batches here, behind the responses. On a machine with
/// few cores, a batch's few milliseconds of SQLite on a thread of normal priority held up the wake-ups
/// of requests in flight: the kernel let the writer finish its slice before a woken request thread
/// ran on that core, which showed in the gateway's p99. At a raised nice value the writer yields at
/// once, and still gets the CPU whenever a core is idle (a nice value, unlike an idle scheduling class,
/// never starves it).
///
/// The thread starts with the first job and ends when the last reference to this object goes (jobs
/// hold one while they run or wait).
final class BackgroundThread: Sendable {
    typealias Job = @Sendable () -> Void

    /// What the thread shares with its owner (the thread must not keep the owner alive).
    private final class Queue: Sendable {
        struct State {
            var jobs: [Job] = []
            var started = false
        }
        let state = Mutex(State())
        /// Signalled once per job, and once when the owner goes.
        let signal = DispatchSemaphore(value: 0)
    }

    private let queue = Queue()
    let name: String
    /// The thread's nice value (0 normal, 19 lowest); raising it needs no privilege.
    let niceness: Int32

    init(name: String, niceness: Int32) {
        self.name = name
        self.niceness = niceness
    }

    deinit {
        if queue.state.withLock({ $0.started }) { queue.signal.signal() }
    }

    /// Runs `body` on the thread, after the jobs before it, and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let starts = queue.state.withLock { s in
                s.jobs.append { c.resume(with: Result { try body() }) }
                defer { s.started = true }
                return !s.started
            }
            if starts { start() }
            queue.signal.signal()
        }
    }

    private func start() {
        let (queue, niceness, name) = (self.queue, self.niceness, self.name)
        let thread = Thread {
            #if canImport(Glibc)
            // Linux keeps a nice value per thread; `who` 0 is the calling thread. A failure leaves the
            // thread at normal priority, which is only slower for others, so it is not an error.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
            #endif
            // Named for `top -H` and profilers (Linux keeps 15 bytes).
            Thread.current.name = name
            while true {
                queue.signal.wait()
                let job = queue.state.withLock { s -> Job? in s.jobs.isEmpty ? nil : s.jobs.removeFirst() }
                // A signal without a job is the owner's going (jobs keep the owner alive, so none is left).
                guard let job else { return }
                job()
            }
        }
        thread.start()
    }
}
