import FedRouteNumerics

/// Turns query texts into fixed-length feature vectors (one matrix row per text).
public protocol QueryEncoder: Sendable {
    /// Length of every feature vector.
    var dimension: Int { get }
    /// Identifies the encoder and its fitted state; equal fingerprints give equal features.
    var fingerprint: String { get }
    func encode(_ texts: [String]) -> Matrix
}
