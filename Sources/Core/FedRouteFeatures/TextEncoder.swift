import FedRouteEmbedding
import FedRouteNumerics

extension MiniLMEncoder: QueryEncoder {}

/// The encoders fedroute can save with a router and rebuild when loading it.
public enum TextEncoder: QueryEncoder, Equatable {
    case hashed(HashedTFIDFEncoder)
    case minilm(MiniLMEncoder)

    public var dimension: Int {
        switch self { case .hashed(let e): e.dimension; case .minilm(let e): e.dimension }
    }

    public var fingerprint: String {
        switch self { case .hashed(let e): e.fingerprint; case .minilm(let e): e.fingerprint }
    }

    public func encode(_ texts: [String]) -> Matrix {
        switch self { case .hashed(let e): e.encode(texts); case .minilm(let e): e.encode(texts) }
    }

    /// Short name for reports and file metadata.
    public var kind: String {
        switch self { case .hashed: "hashed-tfidf"; case .minilm: "minilm" }
    }
}
