import Dispatch
import Foundation

/// Splits independent element-wise or row-wise work over the cores (at most `GEMM.portableThreads` parts
/// of contiguous ranges). Each element is computed by the same code whatever the split, so results do
/// not depend on the thread count; small jobs run on the calling thread.
public enum RowParallel {
    /// Buffer pointers (one, or a tuple of several) handed to the worker threads of `forEachRange`.
    /// Sound only while each part reads and writes elements no other part writes, and the buffers
    /// outlive the call; that is every caller's contract.
    public struct Shared<Value>: @unchecked Sendable {
        public let value: Value
        public init(_ value: Value) { self.value = value }
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
}
