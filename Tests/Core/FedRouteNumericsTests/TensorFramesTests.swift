@testable import FedRouteNumerics
import Foundation
import Testing

@Suite struct TensorFramesTests {
    struct Message: Codable, Equatable {
        var round: Int
        var tensors: [Tensor]
        var features: Matrix
    }

    let message = Message(
        round: 3,
        tensors: [Tensor(name: "w", shape: [2, 3], values: [1, -2, .pi, 0, .infinity, -0.0]), Tensor(name: "empty", shape: [0], values: [])],
        features: Matrix(rowArrays: [[1, 2], [3, 4]]))

    @Test func roundTripsBitExactAndIsSmallerThanBase64JSON() throws {
        let frame = try TensorFrames.encode(message, with: JSONEncoder())
        #expect(TensorFrames.isFrame(frame))
        let back = try TensorFrames.decode(Message.self, from: frame, with: JSONDecoder())
        #expect(back.tensors[0].values.map(\.bitPattern) == message.tensors[0].values.map(\.bitPattern))
        #expect(back == message)
        // The JSON part carries references, not numbers.
        let json = String(decoding: frame.dropFirst(8).prefix(80), as: UTF8.self)
        #expect(json.contains("\"blob\""))
        let big = Message(round: 1, tensors: [Tensor(name: "w", shape: [100_000], values: (0..<100_000).map { Float($0) / 7 })], features: Matrix(rows: 0, cols: 0))
        let packed = JSONEncoder()
        packed.userInfo[.packedFloats] = true
        #expect(try TensorFrames.encode(big, with: JSONEncoder()).count < 400_200)
        #expect(try packed.encode(big).count > 530_000)
        // Arrays are written straight from the values unless cached; both give the same bytes.
        let sorted = JSONEncoder()
        sorted.outputFormatting = .sortedKeys
        let direct = try TensorFrames.encode(big, with: sorted)
        #expect(direct == (try TensorFrames.encode(big, with: sorted, options: .init(cache: TensorFrameCache()))))
        // A frame inside a larger buffer (a slice that does not start at index 0) decodes the same:
        // its arrays are views of that buffer until they become values.
        let embedded = (Data("junk".utf8) + direct + Data("tail".utf8)).dropFirst(4).dropLast(4)
        #expect(embedded.startIndex == 4)
        #expect(try TensorFrames.decode(Message.self, from: embedded, with: JSONDecoder()) == big)
    }

    /// Every malformed header is an error naming the problem, never a crash or a huge allocation.
    /// A frame written into a caller's sink (the network buffer) is the `Data` frame byte for byte, announced
    /// once with its exact size; arrays go to the sink straight from their values, cached ones from the cache.
    @Test(arguments: [false, true])
    func aFrameWrittenIntoASinkIsTheSameBytes(cached: Bool) throws {
        let big = Message(round: 2, tensors: [Tensor(name: "w", shape: [30_000], values: (0..<30_000).map { Float($0) * 0.25 }), message.tensors[0]],
                          features: Matrix(rowArrays: [[5, 6, 7]]))
        let sorted = JSONEncoder()
        sorted.outputFormatting = .sortedKeys
        let options = TensorFrames.Options(cache: cached ? TensorFrameCache() : nil)
        let expected = try TensorFrames.encode(big, with: sorted, options: options)
        var reserved: [Int] = [], pieces = 0
        var sink = [UInt8]()
        try TensorFrames.encode(big, with: sorted, options: options, reserve: { reserved.append($0) }, append: { sink.append(contentsOf: $0); pieces += 1 })
        #expect(Data(sink) == expected)
        #expect(reserved == [expected.count])
        #expect(pieces == 1 + 3)  // the header with the JSON, then each of the three arrays
        #expect(try TensorFrames.decode(Message.self, from: Data(sink), with: JSONDecoder()) == big)
    }

    @Test func hostileFramesAreRefused() throws {
        let good = try TensorFrames.encode(message, with: JSONEncoder())
        func refused(_ data: Data) -> String? {
            do {
                _ = try TensorFrames.decode(Message.self, from: data, with: JSONDecoder())
                return nil
            } catch { return "\(error)" }
        }
        #expect(refused(good.prefix(6))?.contains("header") == true)
        #expect(refused(good.dropLast())?.contains("declare") == true)
        #expect(refused(good + Data([0, 0, 0, 0]))?.contains("declare") == true)
        var hugeJSON = good
        hugeJSON.replaceSubrange(4..<8, with: [0xff, 0xff, 0xff, 0x7f])
        #expect(refused(hugeJSON)?.contains("JSON bytes") == true)
        // The array count field sits after the JSON.
        let jsonCount = Int(good[4]) | Int(good[5]) << 8 | Int(good[6]) << 16 | Int(good[7]) << 24
        var manyArrays = good
        manyArrays.replaceSubrange((8 + jsonCount)..<(12 + jsonCount), with: [0xff, 0xff, 0xff, 0xff])
        #expect(refused(manyArrays)?.contains("arrays") == true)
        var hugeArray = good
        hugeArray.replaceSubrange((12 + jsonCount)..<(20 + jsonCount), with: [UInt8](repeating: 0xff, count: 8))
        #expect(refused(hugeArray)?.contains("larger than the body") == true)
        // A reference to an array the frame does not have.
        let bad = try TensorFrames.encode(Message(round: 1, tensors: [], features: Matrix(rows: 0, cols: 0)), with: JSONEncoder())
        let text = String(decoding: bad, as: UTF8.self).replacingOccurrences(of: "{\"blob\":0}", with: "{\"blob\":5}")
        #expect(refused(Data(text.utf8))?.contains("not in the frame") == true)
    }
}

@Suite struct TensorFrameCacheTests {
    struct Task: Codable {
        var seed: Int
        var parameters: [Tensor]
    }

    static let model = [Tensor(name: "w", shape: [64, 256], values: (0..<(64 * 256)).map { Float($0 % 97) / 13 }),
                        Tensor(name: "b", shape: [8], values: [1, 2, 3, 4, 5, 6, 7, 8])]

    /// JSONEncoder's key order varies between encodes unless sorted.
    static func sorted() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }

    /// The round's model goes to many clients with per-client fields: its arrays are turned into frame bytes once,
    /// and the frames are the same bytes as without the cache.
    @Test func anArraySentToManyPeersIsEncodedOnce() throws {
        let cache = TensorFrameCache()
        let frames = try (0..<3).map { try TensorFrames.encode(Task(seed: $0, parameters: Self.model), with: Self.sorted(), options: .init(cache: cache)) }
        // Only the 64 kB tensor is large enough to be kept; the 32-byte one is copied each time.
        #expect(cache.counts.misses == 1 && cache.counts.hits == 2)
        for (seed, frame) in frames.enumerated() {
            #expect(frame == (try TensorFrames.encode(Task(seed: seed, parameters: Self.model), with: Self.sorted())))
            #expect(try TensorFrames.decode(Task.self, from: frame, with: JSONDecoder()).parameters == Self.model)
        }
    }

    /// With `appendCached`, a cached array is handed over as the cache's own `Data` (the same storage in every
    /// frame) in its place in the order; `reserve` announces only the bytes `append` gets, and the pieces in
    /// order are the frame's bytes.
    @Test func aCachedArrayIsHandedOverAsTheCachesBytes() throws {
        let cache = TensorFrameCache()
        var handed: [UInt] = []
        for seed in 0..<2 {
            var pieces: [Data] = [Data()]
            var reserved: [Int] = []
            try TensorFrames.encode(Task(seed: seed, parameters: Self.model), with: Self.sorted(), options: .init(cache: cache),
                                    reserve: { reserved.append($0) }, append: { pieces[pieces.count - 1].append(contentsOf: $0) },
                                    appendCached: { data in
                                        handed.append(data.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) })
                                        pieces.append(data)
                                        pieces.append(Data())
                                    })
            let frame = try TensorFrames.encode(Task(seed: seed, parameters: Self.model), with: Self.sorted())
            #expect(pieces.reduce(Data(), +) == frame)
            // Only the 64 kB tensor is cached: the header, then it, then the 32-byte one.
            #expect(pieces.map(\.count) == [frame.count - 64 * 256 * 4 - 32, 64 * 256 * 4, 32])
            #expect(reserved == [frame.count - 64 * 256 * 4])
        }
        #expect(handed.count == 2 && handed[0] == handed[1])
    }

    /// As a round starts every sampled client's poll asks for the new model at once: the first encodes it, the
    /// others wait for its bytes instead of encoding (and holding) a copy each.
    @Test func anArrayAskedForByManyAtOnceIsEncodedOnce() {
        let cache = TensorFrameCache()
        let values = (0..<(1 << 18)).map { Float($0) }
        let makes = Counter()
        let sizes = Counter()
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            let blob = cache.blob(for: values, codec: 0) {
                makes.add(1)
                // Slow enough that the other callers ask while it runs.
                Thread.sleep(forTimeInterval: 0.05)
                return TensorFrames.Blob(stored: values.withUnsafeBytes { Data($0) }, codec: 0, width: 4, decodedCount: values.count * 4)
            }
            sizes.add(blob.stored.count)
        }
        #expect(makes.value == 1)
        #expect(sizes.value == 6 * values.count * 4)
        #expect(cache.counts.misses == 1 && cache.counts.hits == 5)
    }

    /// A caller whose encoding throws leaves the array to the next caller, who encodes it.
    @Test func aFailedEncodingIsNotKeptAndTheNextCallerEncodes() throws {
        struct Refused: Error {}
        let cache = TensorFrameCache()
        let values = [Float](repeating: 1, count: 10_000)
        #expect(throws: Refused.self) { _ = try cache.blob(for: values, codec: 0) { throw Refused() } }
        let blob = cache.blob(for: values, codec: 0) { TensorFrames.Blob(stored: Data(count: 40_000), codec: 0, width: 4, decodedCount: 40_000) }
        #expect(blob.stored.count == 40_000 && cache.counts.misses == 1)
    }

    /// A changed copy has its own storage, so it is never served the old bytes.
    @Test func aChangedArrayIsEncodedAfresh() throws {
        let cache = TensorFrameCache()
        var next = Self.model
        _ = try TensorFrames.encode(Task(seed: 0, parameters: Self.model), with: JSONEncoder(), options: .init(cache: cache))
        next[0].values[5] = -1
        let frame = try TensorFrames.encode(Task(seed: 0, parameters: next), with: JSONEncoder(), options: .init(cache: cache))
        #expect(cache.counts.misses == 2 && cache.counts.hits == 0)
        #expect(try TensorFrames.decode(Task.self, from: frame, with: JSONDecoder()).parameters[0].values[5] == -1)
    }

    /// The oldest arrays are dropped beyond the entry and byte limits.
    @Test func theCacheStaysWithinItsLimits() throws {
        let cache = TensorFrameCache(maxEntries: 2, maxBytes: 1 << 20)
        let models = (0..<3).map { k in [Tensor(name: "w", shape: [5000], values: (0..<5000).map { Float($0 + k) })] }
        for m in models { _ = try TensorFrames.encode(Task(seed: 0, parameters: m), with: JSONEncoder(), options: .init(cache: cache)) }
        _ = try TensorFrames.encode(Task(seed: 0, parameters: models[0]), with: JSONEncoder(), options: .init(cache: cache))
        #expect(cache.counts.misses == 4 && cache.counts.hits == 0)
        _ = try TensorFrames.encode(Task(seed: 0, parameters: models[2]), with: JSONEncoder(), options: .init(cache: cache))
        #expect(cache.counts.hits == 1)
        let tiny = TensorFrameCache(maxEntries: 10, maxBytes: 1000)
        _ = try TensorFrames.encode(Task(seed: 0, parameters: models[0]), with: JSONEncoder(), options: .init(cache: tiny))
        _ = try TensorFrames.encode(Task(seed: 0, parameters: models[0]), with: JSONEncoder(), options: .init(cache: tiny))
        #expect(tiny.counts.misses == 2, "an array over the byte limit is not kept")
    }
}

/// A count several threads add to.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0
    func add(_ n: Int) { lock.withLock { total += n } }
    var value: Int { lock.withLock { total } }
}
