import Dispatch
import Foundation

/// Splits independent element-wise or row-wise work over the cores (at most `GEMM.portableThreads` parts
/// of contiguous ranges). Each element is computed by the same code whatever the split, so results do
/// not depend on the thread count; small jobs run on the calling thread.
public enum RowParallel {
    /// A pointer handed to worker threads; the parts touch disjoint elements.
    private struct SharedFloats: @unchecked Sendable {
        let base: UnsafeMutablePointer<Float>
    }

    /// Calls `body` on contiguous sub-ranges of `0..<count` covering it exactly once, in parallel when each
    /// part would get at least `minimumPerPart` items.
    public static func forEachRange(count: Int, minimumPerPart: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let parts = max(1, min(GEMM.portableThreads, count / max(1, minimumPerPart)))
        if parts == 1 {
            body(0..<count)
            return
        }
        let chunk = (count + parts - 1) / parts
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let start = part * chunk
            if start < count { body(start..<min(count, start + chunk)) }
        }
    }

    /// `x[i] = f(x[i])` in place over `count` floats, 8 lanes at a time, split over the cores above 32k elements.
    public static func map(_ x: UnsafeMutablePointer<Float>, count: Int, _ f: @escaping @Sendable (VectorMath.Vector) -> VectorMath.Vector) {
        let p = SharedFloats(base: x)
        // Parts start on multiples of 8 so that vector boundaries are the same as in one pass.
        let blocks = (count + 7) / 8
        forEachRange(count: blocks, minimumPerPart: 4096) { range in
            let start = range.lowerBound * 8
            let end = min(count, range.upperBound * 8)
            VectorMath.map(p.base + start, p.base + start, count: end - start, f)
        }
    }
}
