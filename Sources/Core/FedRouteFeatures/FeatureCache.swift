import Foundation
import FedRouteNumerics

/// Caches encoded features on disk, keyed by the encoder fingerprint and the exact texts.
///
/// Files are `<dir>/<key>.f32`: magic `FRF1`, rows and columns as little-endian UInt32, then the
/// row-major float32 values. Writes are atomic; a damaged or mismatched file is ignored and rebuilt.
public struct FeatureCache: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The cache key of `texts` under `encoder`.
    public static func key(encoder: any QueryEncoder, texts: [String]) -> String {
        var h = FNV1a()
        h.combine(encoder.fingerprint)
        for t in texts { h.combine(t) }
        return "\(h.hex)-\(texts.count)"
    }

    /// Features of `texts`, read from the cache or computed and stored. With `progress`, texts are
    /// encoded in chunks of `chunk` and `progress(done, total)` is called after each.
    public func features(of texts: [String], encoder: any QueryEncoder, chunk: Int = 64,
                         progress: ((Int, Int) -> Void)? = nil) -> (features: Matrix, hit: Bool) {
        let r = lookUp(texts, encoder: encoder, chunk: chunk, progress: progress)
        return (r.features, r.outcome == .hit)
    }

    /// What `lookUp` did with the cache.
    public enum Outcome: Equatable, Sendable {
        case hit
        case stored
        /// Computed, but the cache could not be written (the reason); the features are still right.
        case notStored(String)
    }

    /// The features of `texts`, from the cache or computed (and then stored, where the folder is writable).
    public func lookUp(_ texts: [String], encoder: any QueryEncoder, chunk: Int = 64,
                       progress: ((Int, Int) -> Void)? = nil) -> (features: Matrix, outcome: Outcome) {
        let path = (directory as NSString).appendingPathComponent(Self.key(encoder: encoder, texts: texts) + ".f32")
        if let m = Self.read(path), m.rows == texts.count, m.cols == encoder.dimension { return (m, .hit) }
        let m = Self.encode(texts, encoder: encoder, chunk: chunk, progress: progress)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Self.write(m, to: path)
            return (m, .stored)
        } catch {
            return (m, .notStored("\(error.localizedDescription)"))
        }
    }

    /// Encodes `texts`, in chunks with progress reports when `progress` is given.
    public static func encode(_ texts: [String], encoder: any QueryEncoder, chunk: Int = 64, progress: ((Int, Int) -> Void)? = nil) -> Matrix {
        guard let progress else { return encoder.encode(texts) }
        var m = Matrix(rows: texts.count, cols: encoder.dimension)
        var start = 0
        while start < texts.count {
            let end = min(texts.count, start + max(1, chunk))
            let part = encoder.encode(Array(texts[start..<end]))
            m.data.replaceSubrange((start * encoder.dimension)..<(end * encoder.dimension), with: part.data)
            start = end
            progress(end, texts.count)
        }
        return m
    }

    static func write(_ m: Matrix, to path: String) throws {
        var data = Data("FRF1".utf8)
        for v in [UInt32(m.rows), UInt32(m.cols)] { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        m.data.withUnsafeBufferPointer { data.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: $0.count * 4)) }
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func read(_ path: String) -> Matrix? {
        guard let data = FileManager.default.contents(atPath: path), data.count >= 12, data.prefix(4) == Data("FRF1".utf8) else { return nil }
        let rows = Int(data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }.littleEndian)
        let cols = Int(data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }.littleEndian)
        // A tampered header cannot overflow or size an allocation beyond the file itself.
        guard let count = ShapeLimits.checkedCount([rows, cols], limit: (data.count - 12) / 4), data.count == 12 + count * 4 else { return nil }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { dst in data.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[12...])) } }
        let m = Matrix(rows: rows, cols: cols, data: values)
        return m.isFinite ? m : nil
    }
}
