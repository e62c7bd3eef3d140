import FedRouteNumerics
import Foundation
import Testing

@Suite struct RowParallelTests {
    /// Every byte lands in its place whatever the split: below, at and above the size at which the copy is split
    /// over the cores, with sizes that do not divide evenly.
    @Test func aCopyIsExactForEverySplit() {
        for count in [0, 1, 4099, RowParallel.minimumCopyPerPart, 2 * RowParallel.minimumCopyPerPart, 2 * RowParallel.minimumCopyPerPart + 7,
                      5 * RowParallel.minimumCopyPerPart + 3] {
            let source = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
            var destination = [UInt8](repeating: 0xAA, count: count + 5)
            source.withUnsafeBytes { s in destination.withUnsafeMutableBytes { RowParallel.copy(s, to: $0) } }
            #expect(Array(destination[..<count]) == source, "\(count) bytes")
            #expect(destination[count...].allSatisfy { $0 == 0xAA }, "\(count) bytes: written past the end")
            #expect(source.withUnsafeBytes { RowParallel.data(copying: $0) } == Data(source), "\(count) bytes as Data")
        }
    }
}
