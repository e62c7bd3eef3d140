import Dispatch

/// Parallel steps on `DispatchQueue.concurrentPerform`: the default executor. Its workers sleep between steps, so
/// each step wakes them (a futex wake and a context switch, 70–110 µs on the 2-core EPYC VMs): right for a step now
/// and then, costly for dozens of short steps in a row (`SpinningTeam`).
public struct DispatchExecutor: ParallelExecutor {
    public let threads: Int

    /// An executor for `threads` threads (default `GEMM.portableThreads`, the active processor count up to 8).
    public init(threads: Int = GEMM.portableThreads) {
        self.threads = max(1, threads)
    }

    public func forEachPart(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        if parts == 1 {
            body(0)
        } else if parts > 1 {
            DispatchQueue.concurrentPerform(iterations: parts, execute: body)
        }
    }
}
