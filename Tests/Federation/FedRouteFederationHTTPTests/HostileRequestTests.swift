import AsyncHTTPClient
import FedRouteFederation
import FedRouteHTTPRunner
@testable import FedRouteFederationHTTP
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing

/// Regression tests for the coordinator's handling of hostile requests (issue 15, items 1, 5 and 6).
@Suite(.serialized) struct HostileRequestTests {
    /// Issue 15.1: a validly signed request with an extreme timestamp trapped on `abs(now - timestamp)`.
    @Test func extremeSignedTimestampsAreStaleNotATrap() throws {
        let alice = ClientIdentity(id: "alice")
        var auth = try ClientAuthenticator(publicKeys: ["alice": alice.publicKeyBase64])
        let body = Data("{}".utf8)
        for (nonce, time) in [(1, Int64.min), (2, Int64.max), (3, Int64.min + 1)] {
            let h = Dictionary(uniqueKeysWithValues: try RequestSignature.headers(identity: alice, method: "POST", path: "/v1/poll", session: "s",
                                                                                  nonce: UInt64(nonce), timestamp: time, body: body))
            #expect(throws: AuthenticationFailure.staleTimestamp(client: "alice", timestamp: time, now: 1_700_000_000)) {
                try auth.verify(method: "POST", path: "/v1/poll", header: { h[$0] }, body: body, now: 1_700_000_000)
            }
            // The message is printable whatever the skew.
            #expect(AuthenticationFailure.staleTimestamp(client: "alice", timestamp: time, now: 1_700_000_000).description.contains("away"))
        }
        // A clock skew limit near Int64.max saturates instead of trapping.
        auth.maxClockSkew = .max
        let h = Dictionary(uniqueKeysWithValues: try RequestSignature.headers(identity: alice, method: "POST", path: "/v1/poll", session: "s",
                                                                              nonce: 9, timestamp: .max, body: body))
        #expect(try auth.verify(method: "POST", path: "/v1/poll", header: { h[$0] }, body: body, now: 1_700_000_000) == "alice")
    }

    /// Issue 15.6: rejection records held every caller-chosen client id in full, for ever.
    @Test func rejectionsAreBoundedCutAndEscaped() async throws {
        let registry = ClientRegistry(federation: "t", authenticator: try ClientAuthenticator(publicKeys: [:]), logger: Logger(label: "test"))
        let huge = String(repeating: "x", count: 60_000) + "\nforged log line"
        for _ in 0..<300 {
            await #expect(throws: WireError.self) { _ = try await registry.precheck(path: "/v1/join", headers: [Wire.Header.client: huge]) }
        }
        let kept = await registry.rejections
        #expect(await registry.rejectionCount == 300)
        #expect(kept.count == ClientRegistry.keptRejections)
        #expect(kept.allSatisfy { $0.count < 700 && !$0.contains("\n") })
        let forged = await registry.rejections.last ?? ""
        #expect(forged.contains("more)"))
        #expect(LogText.escape("a\nb\"c\u{1B}") == "a\\nb\\\"c\\u{1b}")
    }

    /// Issue 15.5: bodies were collected (up to 256 MiB) before the signature headers were looked at.
    @Test func bodiesAreRefusedBeforeTheyAreReadAndControlRoutesAreSmall() async throws {
        let alice = ClientIdentity(id: "alice")
        let logger = Logger(label: "test")
        let registry = ClientRegistry(federation: "t", authenticator: try ClientAuthenticator(publicKeys: ["alice": alice.publicKeyBase64]), logger: logger)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do { try await exchange(http: http, registry: registry, alice: alice, logger: logger) } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    func exchange(http: HTTPClient, registry: ClientRegistry, alice: ClientIdentity, logger: Logger) async throws {
        let transport = try CoordinatorRoutes.transport(tls: nil)
        try await HTTPRunner.withRunning(logger: logger, { ready in
            CoordinatorRoutes.application(registry: registry, host: "127.0.0.1", port: 0, transport: transport, logger: logger,
                                          pollWait: .milliseconds(200), onServerRunning: ready)
        }) { port in
            let base = "http://127.0.0.1:\(port)"
            let big = Data(repeating: 0x41, count: 8 << 20)
            // Unsigned: refused as unauthenticated with no body read (the registry counts no bytes in).
            let a = RegistryRejectionTests.RawClient(http: http, base: base, identity: alice)
            let (s1, e1) = try await a.send("/v1/reply", body: big, headers: [])
            #expect(s1 == 401 && e1.contains(Wire.Header.client))
            // Signed by an unknown client: the same.
            let eve = ClientIdentity(id: "eve")
            let (s2, _) = try await RegistryRejectionTests.RawClient(http: http, base: base, identity: eve).post("/v1/reply", body: big, session: "-", nonce: 1)
            #expect(s2 == 401)
            #expect(await registry.bytesIn == 0)
            // A known client, signed, but a join body over the control-route limit: 413, not buffered.
            let join = Data(repeating: 0x20, count: Wire.maxControlBodyBytes + 1)
            let (s3, e3) = try await a.post("/v1/join", body: join, session: "-", nonce: 2)
            #expect(s3 == 413 && e3.contains("\(Wire.maxControlBodyBytes)"))
            // A good join still works afterwards (its body slot was released).
            let ok = try Wire.encoder().encode(JoinRequest())
            let (s4, _) = try await a.post("/v1/join", body: ok, session: "-", nonce: 3)
            #expect(s4 == 200)
        }
    }

    /// The client collects the coordinator's answer into one buffer of its declared size, part by part; an answer
    /// that declares more than the limit, or sends more, is refused with an error naming the limit.
    @Test func theClientCollectsAnAnswerWithinItsLimit() async throws {
        func response(_ parts: [ByteBuffer], declared: Int?) -> HTTPClientResponse {
            var headers = HTTPHeaders()
            if let declared { headers.add(name: "content-length", value: "\(declared)") }
            let stream = AsyncStream<ByteBuffer> { c in
                for p in parts { c.yield(p) }
                c.finish()
            }
            return HTTPClientResponse(headers: headers, body: .stream(stream))
        }
        let parts = [ByteBuffer(bytes: [1, 2, 3]), ByteBuffer(bytes: [4, 5]), ByteBuffer(bytes: [6])]
        let whole = try await FederationClientRunner.collect(response(parts, declared: 6), upTo: 6)
        #expect(Array(whole.readableBytesView) == [1, 2, 3, 4, 5, 6])
        #expect(try await FederationClientRunner.collect(response(parts, declared: nil), upTo: 6).readableBytes == 6)
        await #expect(throws: WireError.self) { _ = try await FederationClientRunner.collect(response(parts, declared: 7), upTo: 6) }
        // A length that understates the body does not let more than the limit in.
        await #expect(throws: WireError.self) { _ = try await FederationClientRunner.collect(response(parts, declared: 2), upTo: 5) }
        await #expect(throws: WireError.self) { _ = try await FederationClientRunner.collect(response(parts, declared: Int.max), upTo: 6) }
    }
}
