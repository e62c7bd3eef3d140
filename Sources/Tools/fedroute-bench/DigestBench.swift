import FedRouteFederationHTTP
import FedRouteNumerics
import Foundation

/// What signing or verifying one client's update costs in hashing: the body digest of a 3.2 MB body (the
/// bench model's float32 update as a tensor frame) and of a 6.4 MB one (its 64-bit masked words under secure
/// aggregation), SHA-256 (swift-crypto, one SHA-NI stream) against the tree digest (`BodyDigest.tree16`: 16
/// leaves in one AVX-512 pass where the CPU has it) and BLAKE3 (`BodyDigest.blake3`: 16 chunks a pass with AVX-512,
/// and its slower paths), alternating. Best and median of `runs`, and the speed-ups run by run.
func digestBench(runs: Int) {
    print("body digests (\(SHA256LanesKernel.isAvailable ? "16-lane AVX-512 kernel" : "no AVX-512: the tree's leaves one by one"); BLAKE3 \(BLAKE3Kernel.native); one core, \(runs) alternating runs)")
    for size in [3_200_123, 6_400_123] {
        var rng = SeededRandom(seed: UInt64(size))
        let body = Data((0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        // BLAKE3 alone by each path this CPU runs below its fastest (the `blake3` row uses the fastest).
        let slower = BLAKE3Kernel.InstructionSet.allCases.filter { $0.runs && $0 != BLAKE3Kernel.native }
        let rows = BodyDigest.allCases.map(\.rawValue) + slower.map { "blake3 (\($0))" }
        var times: [String: [Double]] = [:]
        for _ in 0..<runs {
            for scheme in BodyDigest.allCases {
                times[scheme.rawValue, default: []].append(seconds { _ = scheme.digest(body) })
            }
            for isa in slower {
                times["blake3 (\(isa))", default: []].append(seconds { _ = body.withUnsafeBytes { BLAKE3Kernel.hash($0, instructionSet: isa) } })
            }
        }
        for row in rows {
            let t = times[row]!
            print(String(format: "  %4.1f MB, %@ %6.2f / %6.2f ms  (%.2f / %.2f GB/s)", Double(size) / 1e6, row.padding(toLength: 17, withPad: " ", startingAt: 0),
                         t.min()! * 1e3, median(t) * 1e3, Double(size) / t.min()! / 1e9, Double(size) / median(t) / 1e9))
        }
        for (scheme, baseline) in [(BodyDigest.tree16, BodyDigest.sha256), (.blake3, .tree16)] {
            let speedUps = zip(times[baseline.rawValue]!, times[scheme.rawValue]!).map { $0 / $1 }
            print(String(format: "  %4.1f MB, %@ speed-up over %@, run by run: best %.2f×, median %.2f×", Double(size) / 1e6, scheme.rawValue, baseline.rawValue,
                         speedUps.max()!, median(speedUps)))
        }
    }
}
