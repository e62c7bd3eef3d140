import FedRouteFederationHTTP
import FedRouteNumerics
import Foundation

/// What signing or verifying one client's update costs in hashing: the body digest of a 3.2 MB body (the
/// bench model's float32 update as a tensor frame) and of a 6.4 MB one (its 64-bit masked words under secure
/// aggregation), SHA-256 (swift-crypto, one SHA-NI stream) against the tree digest (`BodyDigest.tree16`: 16
/// leaves in one AVX-512 pass where the CPU has it), alternating. Best and median of `runs`, and the tree
/// digest's speed-up run by run.
func digestBench(runs: Int) {
    print("body digests (\(SHA256LanesKernel.isAvailable ? "16-lane AVX-512 kernel" : "no AVX-512: the tree's leaves one by one"), one core, \(runs) alternating runs)")
    for size in [3_200_123, 6_400_123] {
        var rng = SeededRandom(seed: UInt64(size))
        let body = Data((0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        var times: [BodyDigest: [Double]] = [:]
        for _ in 0..<runs {
            for scheme in BodyDigest.allCases {
                times[scheme, default: []].append(seconds { _ = scheme.digest(body) })
            }
        }
        for scheme in BodyDigest.allCases {
            let t = times[scheme]!
            print(String(format: "  %4.1f MB, %@ %6.2f / %6.2f ms  (%.2f / %.2f GB/s)", Double(size) / 1e6, scheme.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0),
                         t.min()! * 1e3, median(t) * 1e3, Double(size) / t.min()! / 1e9, Double(size) / median(t) / 1e9))
        }
        let speedUps = zip(times[.sha256]!, times[.tree16]!).map { $0 / $1 }
        print(String(format: "  %4.1f MB, tree16 speed-up over sha256, run by run: best %.2f×, median %.2f×", Double(size) / 1e6, speedUps.max()!, median(speedUps)))
    }
}
