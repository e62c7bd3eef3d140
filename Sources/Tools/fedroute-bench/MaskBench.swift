import FedRouteFederation
import FedRouteNumerics
import Foundation

/// One client's secure-aggregation masking in a round of six (five pair masks over the bench model's
/// 800,002 words, 6.4 MB), alternating the mask paths: AES-256-CTR through the VAES kernel
/// (`AESCTRMaskKernel`), through swift-crypto's `AES._CTR` plus an add, and ChaCha20. Best and median of
/// `runs`, and the kernel's ratio to swift-crypto's path run by run; then the same update in the 32-bit ring
/// (`SecureWords32`: 800,002 words of 4 bytes, half the keystream) through the kernel, against the 64-bit ring.
func maskBench(runs: Int) throws {
    let words = 800_002
    let pairs = 5
    func key(_ k: Int) -> Data {
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ k &* 17) }
        return Data(bytes)
    }
    func masks(_ generator: MaskGenerator) -> [SecureAggregation.PairMask] {
        (0..<pairs).map { SecureAggregation.PairMask(key: key($0), generator: generator, adding: $0 % 2 == 0) }
    }
    var values = (0..<words).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
    var values32 = values.map { UInt32(truncatingIfNeeded: $0) }
    let keystream = Double(words * 8 * pairs)
    print("secure-aggregation masks: \(pairs) pair masks over \(words) words (\(String(format: "%.1f", Double(words * 8) / 1e6)) MB), over \(ProcessInfo.processInfo.activeProcessorCount) cores, \(runs) alternating runs")
    struct Row { var name: String; var generator: MaskGenerator; var kernel: Bool; var ring32 = false; var times: [Double] = [] }
    var rows: [Row] = []
    if AESCTRMaskKernel.isAvailable { rows.append(Row(name: "AES-256-CTR, VAES kernel", generator: .aes256CTR, kernel: true)) } else {
        print("  (no VAES here: the kernel rows are skipped)")
    }
    rows.append(Row(name: "AES-256-CTR, swift-crypto + add", generator: .aes256CTR, kernel: false))
    rows.append(Row(name: "ChaCha20, swift-crypto + add", generator: .chacha20, kernel: false))
    if AESCTRMaskKernel.isAvailable { rows.append(Row(name: "AES-256-CTR, VAES, 32-bit ring", generator: .aes256CTR, kernel: true, ring32: true)) }
    for _ in 0..<runs {
        for r in rows.indices {
            let row = rows[r]
            rows[r].times.append(try seconds {
                if row.ring32 {
                    try SecureAggregation.applyMasks(masks(row.generator), to: &values32, kernel: row.kernel)
                } else {
                    try SecureAggregation.applyMasks(masks(row.generator), to: &values, kernel: row.kernel)
                }
            })
        }
    }
    for row in rows {
        let bytes = keystream / (row.ring32 ? 2 : 1)
        print(String(format: "  %@ %6.2f / %6.2f ms  (%.1f / %.1f GB/s of keystream)", row.name.padding(toLength: 32, withPad: " ", startingAt: 0),
                     row.times.min()! * 1e3, median(row.times) * 1e3, bytes / row.times.min()! / 1e9, bytes / median(row.times) / 1e9))
    }
    if AESCTRMaskKernel.isAvailable {
        let ratios = zip(rows[0].times, rows[1].times).map { $0 / $1 }
        print(String(format: "  VAES kernel / swift-crypto, run by run: best %.2f, median %.2f", ratios.min()!, median(ratios)))
        let rings = zip(rows[3].times, rows[0].times).map { $0 / $1 }
        print(String(format: "  32-bit ring / 64-bit ring (VAES kernel), run by run: best %.2f, median %.2f", rings.min()!, median(rings)))
    }
}
