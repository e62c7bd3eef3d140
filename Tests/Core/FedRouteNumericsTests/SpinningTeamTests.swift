import FedRouteNumerics
import Foundation
import Synchronization
import Testing

@Suite struct SpinningTeamTests {
    /// Counts how often each part ran.
    final class Tally: Sendable {
        let counts: Mutex<[Int]>
        init(_ parts: Int) { counts = Mutex([Int](repeating: 0, count: parts)) }
        func mark(_ part: Int) { counts.withLock { $0[part] += 1 } }
        var all: [Int] { counts.withLock { $0 } }
    }

    /// Every part runs exactly once, over many steps in a row of every size, whether the helpers are still spinning
    /// when the next step comes (200 µs) or have gone to sleep after each one (0: every step wakes them).
    @Test(arguments: [Duration.microseconds(200), .zero])
    func everyPartRunsExactlyOnce(spin: Duration) {
        for threads in [1, 2, 3, 4] {
            SpinningTeam.run(threads: threads, spin: spin) { team in
                #expect(team.threads == threads)
                for round in 0..<200 {
                    let parts = [0, 1, 2, 3, 7, 64, 1000][round % 7]
                    let tally = Tally(parts)
                    team.forEachPart(parts) { tally.mark($0) }
                    #expect(tally.all == [Int](repeating: 1, count: parts), "\(threads) threads, round \(round), \(parts) parts")
                }
            }
        }
    }

    /// More parts than one published step holds run as several steps, each part once.
    @Test func morePartsThanAStepHolds() {
        let parts = 70_000
        let tally = Tally(parts)
        SpinningTeam.run(threads: 2) { $0.forEachPart(parts) { tally.mark($0) } }
        #expect(tally.all == [Int](repeating: 1, count: parts))
    }

    /// A step started from inside a part runs inline on that part's thread instead of waiting on the busy team.
    @Test func aNestedStepRunsInline() {
        let tally = Tally(4 * 3)
        SpinningTeam.run(threads: 2) { team in
            team.forEachPart(4) { outer in team.forEachPart(3) { tally.mark(outer * 3 + $0) } }
        }
        #expect(tally.all == [Int](repeating: 1, count: 12))
    }

    /// The parts of a step do run at once: each of two parts waits (up to 10 s) for the other to have started, which a
    /// team running them one after the other would never see.
    @Test func twoPartsRunAtTheSameTime() {
        let started = Mutex(0)
        let overlapped = Mutex(0)
        SpinningTeam.run(threads: 2) { team in
            for _ in 0..<3 {
                started.withLock { $0 = 0 }
                team.forEachPart(2) { _ in
                    started.withLock { $0 += 1 }
                    let deadline = Date().addingTimeInterval(10)
                    while started.withLock({ $0 }) < 2 && Date() < deadline { usleep(50) }
                    if started.withLock({ $0 }) == 2 { overlapped.withLock { $0 += 1 } }
                }
            }
        }
        #expect(overlapped.withLock { $0 } == 6)
    }

    /// Row-split work gives the same result on every executor (each element computed by the same code).
    @Test func rowParallelWorkIsTheSameOnEveryExecutor() {
        let count = 100_003
        func squares(on executor: any ParallelExecutor) -> [Float] {
            var out = [Float](repeating: -1, count: count)
            out.withUnsafeMutableBufferPointer { p in
                let shared = RowParallel.Shared(p.baseAddress!)
                RowParallel.forEachRange(count: count, minimumPerPart: 1_000, on: executor) { range in
                    for i in range { shared.value[i] = Float(i).squareRoot() * 1.5 }
                }
            }
            return out
        }
        let reference = squares(on: InlineExecutor())
        #expect(reference.allSatisfy { $0 >= 0 })
        #expect(squares(on: DispatchExecutor()) == reference)
        SpinningTeam.run(threads: 3) { #expect(squares(on: $0) == reference) }
    }
}
