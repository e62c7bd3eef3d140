import Crypto
import FedRouteFederationHTTP
import Foundation

/// The coordinator's request authentication on a request written as text: a first line
/// `METHOD PATH`, then `name: value` header lines, a blank line and the body. The headers are
/// prechecked (client, session, nonce, timestamp window, signature encoding, digest scheme), then the
/// signature is verified over the body's digest under the scheme the request names, as `ClientRegistry`
/// does for every `/v1` request.
enum SignatureFuzzTarget {
    /// The coordinator's clock during the run.
    static let now: Int64 = 1_790_000_000
    /// The one enrolled client, with a fixed key so that seeds carry valid signatures.
    static let identity = ClientIdentity(id: "client-a", privateKey: (try? Curve25519.Signing.PrivateKey(rawRepresentation: Data(repeating: 7, count: 32))) ?? .init())

    static func run(_ input: Data) {
        guard var authenticator = try? ClientAuthenticator(publicKeys: [identity.id: identity.privateKey.publicKey.rawRepresentation.base64EncodedString()],
                                                           lastNonce: [identity.id: 100]) else { return }
        let (method, path, headers, body) = parse(input)
        // Header lookup is case-insensitive, as HTTP fields are.
        let lookUp = { (name: String) in headers.first { $0.0.lowercased() == name }?.1 }
        guard let checked = try? authenticator.precheck(header: lookUp, now: now) else { return }
        _ = try? authenticator.verify(method: method, path: path, checked, bodyDigest: checked.digest.digest(body))
        // The same request again is a replay whatever it was the first time.
        _ = try? authenticator.verify(method: method, path: path, header: lookUp, body: body, now: now)
    }

    static func parse(_ input: Data) -> (method: String, path: String, headers: [(String, String)], body: Data) {
        let blank = input.firstRange(of: Data("\n\n".utf8))
        let head = String(decoding: input[input.startIndex..<(blank?.lowerBound ?? input.endIndex)], as: UTF8.self)
        let body = blank.map { input[$0.upperBound...] } ?? Data()
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false)
        let requestLine = lines.isEmpty ? [] : lines.removeFirst().split(separator: " ", maxSplits: 1)
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " }))
        }
        return (requestLine.first.map(String.init) ?? "", requestLine.dropFirst().first.map(String.init) ?? "", headers, Data(body))
    }

    /// Validly signed requests of each route, and one whose signature covers another body.
    static func seeds() throws -> [FuzzSeed] {
        func request(_ method: String, _ path: String, body: String, nonce: UInt64, signedBody: String? = nil, scheme: BodyDigest = .sha256) throws -> Data {
            let headers = try RequestSignature.headers(identity: identity, method: method, path: path, session: "s-1", nonce: nonce,
                                                       timestamp: now - 3, body: Data((signedBody ?? body).utf8), scheme: scheme)
            return Data(("\(method) \(path)\n" + headers.map { "\($0.0): \($0.1)\n" }.joined() + "\n" + body).utf8)
        }
        return [
            FuzzSeed(name: "join.txt", data: try request("POST", "/v1/join", body: #"{"protocolVersion":"fedroute-federation/1"}"#, nonce: 101)),
            FuzzSeed(name: "poll.txt", data: try request("POST", "/v1/poll", body: "{}", nonce: 102)),
            FuzzSeed(name: "reply.txt", data: try request("POST", "/v1/reply", body: #"{"taskID":"t1","error":"no data"}"#, nonce: 103)),
            FuzzSeed(name: "altered.txt", data: try request("POST", "/v1/reply", body: #"{"taskID":"t1"}"#, nonce: 104, signedBody: "{}")),
            // Signed over the tree digest, with a body long enough to have leaves.
            FuzzSeed(name: "reply-tree.txt", data: try request("POST", "/v1/reply", body: #"{"taskID":"t1","error":""# + String(repeating: "x", count: 1_500) + #""}"#,
                                                               nonce: 105, scheme: .tree16)),
        ]
    }
}
