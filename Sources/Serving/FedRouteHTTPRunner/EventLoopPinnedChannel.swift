import HummingbirdCore
import Logging
import NIOCore

/// A Hummingbird child channel that handles each connection on its own event loop: `wrapped`'s handling
/// (reading requests, the responder, writing responses) runs in a task that prefers an `EventLoopExecutor`
/// on the connection's loop, instead of on the cooperative pool. A request then stays on one thread from
/// its bytes arriving to its response leaving, unless it awaits work elsewhere (an outgoing call whose
/// channel is on another loop, a thread pool); each hop it saves is a thread wake-up.
///
/// The responder must not block: what it computes between suspensions delays every connection of the loop.
public struct EventLoopPinnedChannel<Wrapped: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Wrapped.Value
    /// The child channel whose handling is pinned.
    public let wrapped: Wrapped

    public init(_ wrapped: Wrapped) { self.wrapped = wrapped }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        wrapped.setup(channel: channel, logger: logger)
    }

    public func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopExecutor(value.channel.eventLoop)) {
            await wrapped.handle(value: value, logger: logger)
        }
    }
}
