import FedRouteFederation
@testable import FedRouteFederationHTTP
import FedRouteNumerics
import Foundation
import NIOCore
import Testing

/// The round's model goes to every sampled client from one network buffer an array: the pieces of each task's
/// response are its frame's bytes, and the large arrays' pieces share one storage across the responses.
@Suite struct SharedFrameBuffersTests {
    struct Task: Codable, Equatable {
        var seed: Int
        var parameters: [Tensor]
    }

    static let model = [Tensor(name: "w", shape: [64, 256], values: (0..<(64 * 256)).map { Float($0 % 97) / 13 }),
                        Tensor(name: "b", shape: [8], values: [1, 2, 3, 4, 5, 6, 7, 8]),
                        Tensor(name: "v", shape: [5000], values: (0..<5000).map { Float($0) * 0.5 })]

    static func sorted() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }

    static func address(_ b: ByteBuffer) -> UInt { b.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } }

    @Test func tasksForManyClientsShareTheModelsBuffers() throws {
        let options = TensorFrames.Options(cache: TensorFrameCache())
        let shared = SharedFrameBuffers()
        let responses = try (0..<4).map { try TensorFrames.encodePieces(Task(seed: $0, parameters: Self.model), with: Self.sorted(), options: options, shared: shared) }
        for (seed, pieces) in responses.enumerated() {
            let frame: Data = try TensorFrames.encode(Task(seed: seed, parameters: Self.model), with: Self.sorted())
            var joined = ByteBuffer()
            for p in pieces { joined.writeImmutableBuffer(p) }
            #expect(Data(joined.readableBytesView) == frame)
            #expect(try TensorFrames.decode(Task.self, from: Data(joined.readableBytesView), with: JSONDecoder()) == Task(seed: seed, parameters: Self.model))
            // The header, the 64 kB array, the 32-byte one (copied), the 20 kB one.
            let arrays = (64 * 256 + 8 + 5000) * 4
            let sizes: [Int] = pieces.map(\.readableBytes)
            #expect(sizes == [frame.count - arrays, 64 * 256 * 4, 32, 5000 * 4])
        }
        // Each large array was copied into a buffer once; every response sends that buffer.
        #expect(shared.copies == 2)
        #expect(Set(responses.map { Self.address($0[1]) }).count == 1 && Set(responses.map { Self.address($0[3]) }).count == 1)
        #expect(Set(responses.map { Self.address($0[2]) }).count == 4)
    }

    /// Every sampled client's task asks for the model's buffers at once as a round starts: one copy is made and all
    /// get it (the same storage), instead of a copy each.
    @Test func manyAskingAtOnceGetOneCopy() {
        let shared = SharedFrameBuffers()
        var bytes = Data(count: 16 << 20)
        for i in stride(from: 0, to: bytes.count, by: 4093) { bytes[i] = UInt8(truncatingIfNeeded: i >> 12) }
        let data = bytes
        let addresses = Addresses()
        // Threads of their own (not the dispatch pool, which may run the callers one after another), let go at once.
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let threads = (0..<6).map { _ in
            Thread {
                start.wait()
                addresses.add(Self.address(shared.buffer(for: data)))
                done.leave()
            }
        }
        for t in threads {
            done.enter()
            t.start()
        }
        for _ in threads { start.signal() }
        done.wait()
        #expect(shared.copies == 1)
        #expect(addresses.distinct == 1)
        #expect(Data(shared.buffer(for: data).readableBytesView) == data)
    }

    /// The oldest buffers are dropped beyond the entry and byte limits; one past the byte limit is never kept.
    @Test func theBuffersStayWithinTheirLimits() {
        let shared = SharedFrameBuffers(maxEntries: 2, maxBytes: 100_000)
        let arrays = (0..<3).map { k in Data(repeating: UInt8(k), count: 40_000) }
        for a in arrays { _ = shared.buffer(for: a) }
        #expect(shared.copies == 3)
        _ = shared.buffer(for: arrays[2])
        #expect(shared.copies == 3)
        _ = shared.buffer(for: arrays[0])
        #expect(shared.copies == 4)
        let huge = Data(repeating: 9, count: 200_000)
        _ = shared.buffer(for: huge)
        _ = shared.buffer(for: huge)
        #expect(shared.copies == 6)
        // Below `TensorFrames.minSharedBytes` nothing is kept.
        let small = Data(repeating: 1, count: 100)
        #expect(Array(shared.buffer(for: small).readableBytesView) == Array(small))
        #expect(shared.copies == 6)
    }
}

/// Buffer addresses several threads add to.
final class Addresses: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [UInt] = []
    func add(_ a: UInt) { lock.withLock { seen.append(a) } }
    var distinct: Int { lock.withLock { Set(seen).count } }
}
