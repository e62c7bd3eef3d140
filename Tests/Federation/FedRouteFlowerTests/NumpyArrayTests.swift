import Foundation
import Testing
@testable import FedRouteFlower

@Suite struct NumpyArrayTests {
    @Test func roundTrips() throws {
        let a = try NumpyArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(try NumpyArray.decode(a.encoded()) == a)
        #expect(a.encoded().count % 64 == 24)  // 64-byte header + 24 data bytes
    }
}
