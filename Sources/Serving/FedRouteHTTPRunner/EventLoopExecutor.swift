import NIOCore

/// A Swift concurrency task executor that runs its jobs on one NIO event loop.
///
/// A task that prefers it (`withTaskExecutorPreference`) resumes on the loop's own thread after every
/// suspension, and so does the code of default actors it calls: an `await` on I/O that completes on the
/// same loop is a queue append instead of a wake-up of a cooperative-pool thread. Use it for latency-bound
/// request handling whose work between suspensions is short; a job that blocks holds up every channel of
/// the loop.
public final class EventLoopExecutor: TaskExecutor {
    /// The loop every job runs on.
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
