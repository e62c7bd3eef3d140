import AsyncHTTPClient

/// Which HTTP version a client process speaks to the coordinator; HTTP/1.1 over TLS by default.
///
/// The coordinator serves HTTP/2 over TLS (chosen by ALPN) and HTTP/1.1. Its HTTP/2 server keeps the
/// protocol's default 64 kB receive window per stream and per connection (Hummingbird does not expose
/// NIO's window settings), so a client's update crosses in one window top-up per round trip: with a
/// round trip of r a 3 MB update takes about 85·r, and a round of 5 clients took 1.9 s at r = 20 ms and
/// 4.3 s at 50 ms, against 0.20–0.29 s over HTTP/1.1, where TCP's own window (megabytes) governs
/// (`scripts/federation-wan.sh`; README, Performance). A client runner sends one request at a time, so
/// HTTP/2's multiplexing buys it nothing. Same bytes, same signatures, same results either way.
public enum ClientHTTPVersion: String, Sendable, Codable, CaseIterable {
    /// HTTP/1.1 (the default).
    case http1 = "http1.1"
    /// HTTP/2 when the coordinator offers it over TLS, HTTP/1.1 otherwise: fine on a LAN, slow on links
    /// with long round trips (see the type's documentation).
    case automatic = "auto"

    var asyncHTTPClient: HTTPClient.Configuration.HTTPVersion {
        switch self {
        case .automatic: return .automatic
        case .http1: return .http1Only
        }
    }
}
