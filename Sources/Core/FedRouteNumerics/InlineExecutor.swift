/// Every part on the calling thread, in order: for work already split at a coarser level (the attention of one
/// sequence inside a step whose parts are sequences), where a nested split would only add threads to busy cores.
public struct InlineExecutor: ParallelExecutor {
    public var threads: Int { 1 }

    public init() {}

    public func forEachPart(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        for part in 0..<max(0, parts) { body(part) }
    }
}
