import AsyncHTTPClient
import FedRouteHTTPRunner
import Hummingbird
import HummingbirdCore
import Logging
import NIOPosix
import Testing

@Suite struct EventLoopPinnedChannelTests {
    /// Where a handler's code runs: on an event loop or not, at its start, after a suspension, and inside a
    /// default actor it calls.
    actor Probe {
        func onEventLoop() -> Bool { MultiThreadedEventLoopGroup.currentEventLoop != nil }
    }

    /// A pinned server's handlers run on their connection's event loop throughout (also after a sleep, and
    /// in a default actor's methods); a plain server's run on the cooperative pool.
    @Test(arguments: [true, false]) func handlersStayOnTheirConnectionsEventLoop(pinned: Bool) async throws {
        let probe = Probe()
        let router = Router()
        router.get("/where") { _, _ -> String in
            let start = MultiThreadedEventLoopGroup.currentEventLoop != nil
            try await Task.sleep(for: .milliseconds(2))
            let afterSleep = MultiThreadedEventLoopGroup.currentEventLoop != nil
            let inActor = await probe.onEventLoop()
            return "\(start) \(afterSleep) \(inActor)"
        }
        let server: HTTPServerBuilder = pinned
            ? HTTPServerBuilder { responder in EventLoopPinnedChannel(HTTP1Channel(responder: responder)) }
            : .http1()
        let logger = Logger(label: "test")
        let answers = try await HTTPRunner.withRunning(logger: logger, { onRunning in
            Application(
                router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) }, logger: logger)
        }, body: { port in
            var answers: [String] = []
            for _ in 0..<3 {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/where"), timeout: .seconds(10))
                answers.append(String(buffer: try await response.body.collect(upTo: 1024)))
            }
            return answers
        })
        let expected = pinned ? "true true true" : "false false false"
        #expect(answers == Array(repeating: expected, count: 3))
    }
}
