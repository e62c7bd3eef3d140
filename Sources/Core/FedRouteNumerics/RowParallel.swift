import Foundation

/// Splits independent element-wise or row-wise work over the cores (at most the executor's `threads` parts
/// of contiguous ranges; `GEMM.portableThreads` by default). Each element is computed by the same code whatever the split, so results do
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
    /// part would get at least `minimumPerPart` items, on `executor`'s threads.
    public static func forEachRange(count: Int, minimumPerPart: Int, on executor: any ParallelExecutor = DispatchExecutor(),
                                    _ body: @Sendable (Range<Int>) -> Void) {
        let parts = max(1, min(executor.threads, count / max(1, minimumPerPart)))
        if parts == 1 {
            body(0..<count)
            return
        }
        let chunk = (count + parts - 1) / parts
        executor.forEachPart(parts) { part in
            let start = part * chunk
            if start < count { body(start..<min(count, start + chunk)) }
        }
    }

    /// Bytes copied per part of `copy` at least (smaller copies run on the calling thread).
    public static let minimumCopyPerPart = 512 << 10

    /// Copies `source` into `destination` (at least as large), split over the cores for large copies.
    public static func copy(_ source: UnsafeRawBufferPointer, to destination: UnsafeMutableRawBufferPointer) {
        precondition(destination.count >= source.count, "copy: \(source.count) bytes into \(destination.count)")
        guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let shared = Shared((src, dst))
        forEachRange(count: source.count, minimumPerPart: minimumCopyPerPart) { r in
            (shared.value.1 + r.lowerBound).copyMemory(from: shared.value.0 + r.lowerBound, byteCount: r.count)
        }
    }

    /// `bytes` as a new `Data`, copied with `copy`.
    public static func data(copying bytes: UnsafeRawBufferPointer) -> Data {
        guard bytes.count >= 2 * minimumCopyPerPart else { return Data(bytes) }
        var data = Data(count: bytes.count)
        data.withUnsafeMutableBytes { copy(bytes, to: $0) }
        return data
    }
}
