/// Work on many independent items with bounded concurrency, whose results are consumed in item order.
///
/// The coordinator asks clients this way (replies folded in client order, whatever order they arrive in),
/// and so does the simulation's per-client evaluation, so that results do not depend on how many run at once.
public enum InOrder {
    /// Runs the job `work(i)` makes for every i in `0..<count` (made when it starts, so jobs not yet started
    /// hold nothing), at most `parallel` at once, and hands each result to `merge` in index order as soon as
    /// it and all earlier ones are done. Only results that finish ahead of an
    /// earlier one wait in memory (about `parallel` of them). When `merge` throws, no further work starts,
    /// the work already running finishes, and the error is rethrown.
    public static func forEach<T: Sendable, E: Error>(
        _ count: Int, parallel: Int, _ work: (Int) -> @Sendable () async -> T, merge: (Int, T) throws(E) -> Void
    ) async throws(E) {
        let failure: E? = await withTaskGroup(of: (Int, T).self) { group in
            var next = 0
            func start(_ group: inout TaskGroup<(Int, T)>) {
                guard next < count else { return }
                let i = next, job = work(i)
                next += 1
                group.addTask { (i, await job()) }
            }
            for _ in 0..<max(1, parallel) { start(&group) }
            var early: [Int: T] = [:]
            var merged = 0
            for await (i, result) in group {
                early[i] = result
                while let r = early.removeValue(forKey: merged) {
                    do throws(E) { try merge(merged, r) } catch {
                        group.cancelAll()
                        return error
                    }
                    merged += 1
                }
                start(&group)
            }
            return nil
        }
        if let failure { throw failure }
    }
}
