/// Checked element counts for shapes that come from outside the process (file headers, wire
/// messages, checkpoints): no overflow trap and no allocation beyond an explicit limit.
public enum ShapeLimits {
    /// Most elements one tensor or matrix read from outside may hold: 2^28 float32 values (1 GiB).
    /// fedroute's largest real tensor (MiniLM's word embeddings) holds 11.7 M.
    public static let maxElements = 1 << 28

    /// Why a shape was refused.
    public enum Failure: Error, Equatable, CustomStringConvertible, Sendable {
        case negativeDimension([Int])
        case tooLarge([Int], limit: Int)

        public var description: String {
            switch self {
            case .negativeDimension(let s): return "shape \(s) has a negative dimension"
            case .tooLarge(let s, let limit): return "shape \(s) holds more than \(limit) elements"
            }
        }
    }

    /// The number of elements of `shape`, computed with checked arithmetic; refuses negative
    /// dimensions and products above `limit` (an overflow is above any limit).
    public static func elementCount(_ shape: [Int], limit: Int = maxElements) throws(Failure) -> Int {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .negativeDimension(shape) }
        var n = 1
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p <= limit else { throw .tooLarge(shape, limit: limit) }
            n = p
        }
        return n
    }

    /// `elementCount` as an optional, for `guard` chains.
    public static func checkedCount(_ shape: [Int], limit: Int = maxElements) -> Int? {
        try? elementCount(shape, limit: limit)
    }
}
