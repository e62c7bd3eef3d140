import CFedRouteKernels
import Dispatch
import Foundation
import Synchronization

/// A parallel executor for many short steps in a row (MiniLM's forward pass: 48 steps a batch): helper threads that
/// keep watching for the next step for a bounded time after each one, instead of going to sleep.
///
/// `DispatchExecutor`'s workers sleep after every step and the next step wakes them: on the 2-core EPYC VMs that is
/// 70–110 µs a step (a futex wake and a context switch), 3–5 % of a batch of 64 short sequences. A team's helpers
/// spin for `spin` after a step (with the CPU's spin hint, `fr_cpu_relax`), so a step that follows within it starts on
/// every core at once; past it they sleep on a semaphore until the next step signals them. Parts are claimed one at a
/// time from a shared counter, so the caller takes parts itself while a helper is still waking, and uneven parts
/// balance. A team lives for one scope (`run`): its helpers start at its first step of more than one part and end
/// with the scope, so no thread spins when no work runs.
///
/// One thread uses a team at a time: the scope's. A step started from inside a part (nested) runs its parts on the
/// calling thread, in order.
public final class SpinningTeam: ParallelExecutor, @unchecked Sendable {
    public let threads: Int
    /// How long a helper watches for the next step before it sleeps, in nanoseconds.
    let spinNanoseconds: UInt64

    /// The current step: generation (high 32 bits), part count (16 bits), next part to claim (low 16 bits). A part is
    /// claimed by a compare-and-exchange on the whole word, so a helper that saw an older step claims nothing of a
    /// newer one.
    private let word = Atomic<UInt64>(0)
    /// Parts of the current step that have returned.
    private let done = Atomic<Int>(0)
    /// Helpers between seeing a step and leaving it: the step's body may not end before they have.
    private let inside = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// A step is running (a nested step runs inline).
    private let busy = Atomic<Bool>(false)
    /// The current step's body: written by the scope's thread before the step's word is published, read by claimers.
    private var body: (@Sendable (Int) -> Void)?
    /// The scope's thread only.
    private var generation: UInt32 = 0
    private var helpers: [Helper] = []

    /// Most parts one published step holds (`forEachPart` runs more as several steps).
    static let maximumPartsPerStep = 0xFFFF

    private final class Helper: Sendable {
        let asleep = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    private init(threads: Int, spin: Duration) {
        self.threads = max(1, threads)
        let (seconds, attoseconds) = spin.components
        spinNanoseconds = UInt64(clamping: max(0, seconds)) &* 1_000_000_000 &+ UInt64(clamping: max(0, attoseconds / 1_000_000_000))
    }

    /// How long helpers spin after a step unless `run` is told otherwise: longer than the gaps between a forward pass's
    /// steps (a few µs to tens of µs of serial work), short enough that a helper whose scope went quiet sleeps at once.
    public static let defaultSpin = Duration.microseconds(200)

    /// Runs `body` with a team of `threads` threads (the calling thread and `threads − 1` helpers, started on the
    /// first step that has more than one part); the helpers end when `body` returns.
    public static func run<R>(threads: Int = GEMM.portableThreads, spin: Duration = defaultSpin, _ body: (SpinningTeam) throws -> R) rethrows -> R {
        let team = SpinningTeam(threads: threads, spin: spin)
        defer { team.finish() }
        return try body(team)
    }

    public func forEachPart(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        guard parts > 1, threads > 1, !busy.exchange(true, ordering: .acquiring) else {
            for part in 0..<max(0, parts) { body(part) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        var first = 0
        while first < parts {
            let count = min(Self.maximumPartsPerStep, parts - first)
            if first == 0 && count == parts {
                step(parts: count, body)
            } else {
                let offset = first
                step(parts: count) { body(offset + $0) }
            }
            first += count
        }
    }

    /// Publishes one step, takes parts of it on this thread, and returns when every part has returned and no helper
    /// still holds the body.
    private func step(parts: Int, _ body: @Sendable (Int) -> Void) {
        if helpers.isEmpty { startHelpers() }
        withoutActuallyEscaping(body) { body in
            self.body = body
            done.store(0, ordering: .relaxed)
            publish(parts: parts)
            claimParts(of: generation)
            var spins = 0
            while done.load(ordering: .acquiring) != parts || inside.load(ordering: .acquiring) != 0 {
                spins += 1
                if spins > 100_000 { sched_yield() } else { fr_cpu_relax() }
            }
            self.body = nil
        }
    }

    /// Starts the next generation with `parts` parts (none: the team's end) and signals the helpers that sleep. The
    /// store publishes what the caller wrote before it (the body, the reset count) as a release, and is sequentially
    /// consistent against the helpers' `asleep` flags, so a helper either sees the new word or is signalled.
    private func publish(parts: Int) {
        generation &+= 1
        word.store(UInt64(generation) << 32 | UInt64(parts) << 16, ordering: .sequentiallyConsistent)
        for helper in helpers where helper.asleep.exchange(false, ordering: .sequentiallyConsistent) { helper.wake.signal() }
    }

    /// Claims and runs parts of step `generation` until none is left (or a newer step was published).
    @inline(never)
    private func claimParts(of generation: UInt32) {
        var w = word.load(ordering: .acquiring)
        while UInt32(truncatingIfNeeded: w >> 32) == generation {
            let parts = (w >> 16) & 0xFFFF, next = w & 0xFFFF
            guard next < parts else { return }
            let (exchanged, original) = word.compareExchange(expected: w, desired: w + 1, ordering: .acquiringAndReleasing)
            guard exchanged else {
                w = original
                continue
            }
            body!(Int(next))
            done.wrappingAdd(1, ordering: .releasing)
            w = word.load(ordering: .acquiring)
        }
    }

    private func startHelpers() {
        let seen = generation
        for _ in 1..<threads {
            let helper = Helper()
            helpers.append(helper)
            let thread = Thread { [self] in helperLoop(helper, seen: seen) }
            thread.name = "fedroute-team"
            thread.start()
        }
    }

    private func helperLoop(_ helper: Helper, seen start: UInt32) {
        var seen = start
        while true {
            seen = awaitStep(after: seen, helper)
            if stopping.load(ordering: .acquiring) { return }
            // Counted before claiming (sequentially consistent): a step whose part this helper claims cannot end
            // before the helper has left it.
            inside.wrappingAdd(1, ordering: .sequentiallyConsistent)
            claimParts(of: seen)
            inside.wrappingSubtract(1, ordering: .releasing)
        }
    }

    /// The generation of the first step after `seen`: spins up to `spinNanoseconds`, then sleeps until signalled.
    private func awaitStep(after seen: UInt32, _ helper: Helper) -> UInt32 {
        var deadline = DispatchTime.now().uptimeNanoseconds &+ spinNanoseconds
        var spins = 0
        while true {
            let current = UInt32(truncatingIfNeeded: word.load(ordering: .acquiring) >> 32)
            if current != seen { return current }
            spins &+= 1
            guard spins & 63 == 0, DispatchTime.now().uptimeNanoseconds >= deadline else {
                fr_cpu_relax()
                continue
            }
            helper.asleep.store(true, ordering: .sequentiallyConsistent)
            let again = UInt32(truncatingIfNeeded: word.load(ordering: .sequentiallyConsistent) >> 32)
            // A step published since: take it, unless the publisher already cleared the flag (its signal is coming and
            // must be consumed).
            if again == seen || !helper.asleep.exchange(false, ordering: .sequentiallyConsistent) { helper.wake.wait() }
            deadline = DispatchTime.now().uptimeNanoseconds &+ spinNanoseconds
        }
    }

    /// Ends the helpers (they leave at the next look at the word, or when signalled).
    private func finish() {
        guard !helpers.isEmpty else { return }
        stopping.store(true, ordering: .releasing)
        publish(parts: 0)
        helpers = []
    }
}
