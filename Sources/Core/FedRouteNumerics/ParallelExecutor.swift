/// Runs the parts of one parallel step: `body(part)` for every part in `0..<parts`, each exactly once, on up to
/// `threads` threads (the caller's among them), returning when every part has returned.
///
/// Parts must be independent (each writes only elements no other part writes), so a result does not depend on
/// which thread runs which part, nor on the executor. `DispatchExecutor` is the default everywhere;
/// `SpinningTeam` keeps its threads spinning between the many short steps of one forward pass.
public protocol ParallelExecutor: Sendable {
    /// Threads that run parts at once, the caller included: how many parts a step is worth splitting into.
    var threads: Int { get }

    /// Calls `body` once for every part in `0..<parts` (none when `parts` ≤ 0) and returns when all have returned.
    func forEachPart(_ parts: Int, _ body: @Sendable (Int) -> Void)
}
