import Hummingbird
import Logging
import ServiceLifecycle

/// Runs a Hummingbird application for the duration of a closure: for embedding a server in tests,
/// benchmarks and other programs (the `fedroute gateway` command runs until a signal instead).
public enum HTTPRunner {
    /// Starts the application `make` builds, waits until it listens, calls `body` with its port,
    /// then shuts it down gracefully and returns what `body` returned.
    ///
    /// - Parameter make: builds the application around the callback that reports its bound port.
    public static func withRunning<App: ApplicationProtocol, T: Sendable>(
        logger: Logger,
        _ make: (@escaping @Sendable (Int) async -> Void) throws -> App,
        body: (Int) async throws -> T
    ) async throws -> T {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = try make { port in continuation.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            guard let port = await ports.first(where: { _ in true }) else { throw CancellationError() }
            do {
                let result = try await body(port)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }
}
