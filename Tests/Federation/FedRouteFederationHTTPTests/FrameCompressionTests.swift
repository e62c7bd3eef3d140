import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteNumerics
import Foundation
import Testing

@Suite struct FrameCompressionTests {
    struct Message: Codable, Equatable {
        var tensors: [Tensor]
        var words: MaskedUpdate
    }

    /// Parameters as training leaves them (small values, similar exponents) and random 64-bit masked words.
    static func message() -> Message {
        var rng = SeededRandom(seed: 7)
        let w = (0..<40_000).map { _ in Float(rng.nextGaussian() * 0.05) }
        let words = (0..<10_000).map { _ in rng.next() }
        return Message(tensors: [Tensor(name: "w", shape: [200, 200], values: w), Tensor(name: "b", shape: [3], values: [0.5, -1, 2])],
                       words: MaskedUpdate(round: 2, values: words))
    }

    @Test func compressedFramesRoundTripBitExactAndAreSmaller() throws {
        let m = Self.message()
        let plain = try TensorFrames.encode(m, with: JSONEncoder())
        let coded = try TensorFrames.encode(m, with: JSONEncoder(), options: .init(codec: ShuffleDeflateCodec()))
        #expect(coded.prefix(4) == TensorFrames.codedMagic && plain.prefix(4) == TensorFrames.magic)
        // The float planes shrink (their exponent bytes; the mantissas are close to random); the random words
        // do not, and are stored as they are (80,000 bytes).
        #expect(coded.count < plain.count - 15_000)
        #expect(coded.count > 80_000)
        let back = try TensorFrames.decode(Message.self, from: coded, with: JSONDecoder(), codecs: [ShuffleDeflateCodec()])
        #expect(back.tensors[0].values.map(\.bitPattern) == m.tensors[0].values.map(\.bitPattern))
        #expect(back == m)
        // Nothing compressible: the frame stays FRF1, readable by peers that know no codec.
        let random = Message(tensors: [], words: m.words)
        #expect(try TensorFrames.encode(random, with: JSONEncoder(), options: .init(codec: ShuffleDeflateCodec())).prefix(4) == TensorFrames.magic)
    }

    @Test func byteShuffleInvertsForEveryWidth() throws {
        let codec = ShuffleDeflateCodec()
        for width in [1, 2, 4, 8] {
            let bytes = (0..<(width * 5000)).map { UInt8(truncatingIfNeeded: ($0 / width) % 7 + ($0 % width) * 31) }
            let coded = try #require(try bytes.withUnsafeBytes { try codec.encode($0, width: width) })
            #expect(coded.count < bytes.count)
            #expect(try coded.withUnsafeBytes { try codec.decode($0, width: width, count: bytes.count) } == Data(bytes))
        }
    }

    /// A hostile frame cannot make the reader decode more than its limit, use a codec it did not offer, or pass
    /// off a stream that decodes to another size.
    @Test func hostileCompressedFramesAreRefused() throws {
        let m = Self.message()
        let coded = try TensorFrames.encode(m, with: JSONEncoder(), options: .init(codec: ShuffleDeflateCodec()))
        func refused(_ data: Data, codecs: [any TensorFrameCodec] = [ShuffleDeflateCodec()], limit: Int = 256 << 20) -> String? {
            do {
                _ = try TensorFrames.decode(Message.self, from: data, with: JSONDecoder(), codecs: codecs, maxDecodedBytes: limit)
                return nil
            } catch { return "\(error)" }
        }
        #expect(refused(coded) == nil)
        #expect(refused(coded, codecs: [])?.contains("was not offered") == true)
        #expect(refused(coded, limit: 100_000)?.contains("at most 100000") == true)
        // The first array's table entry: stored count (8), codec (1), width (1), decoded count (8).
        let jsonCount = Int(coded[4]) | Int(coded[5]) << 8 | Int(coded[6]) << 16 | Int(coded[7]) << 24
        let entry = 12 + jsonCount
        var wrongSize = coded
        wrongSize[entry + 10] = wrongSize[entry + 10] &+ 4  // declares 4 more decoded bytes
        #expect(refused(wrongSize)?.contains("does not decode") == true)
        var huge = coded
        huge.replaceSubrange((entry + 10)..<(entry + 18), with: [UInt8](repeating: 0xff, count: 8))
        #expect(refused(huge)?.contains("decoded bytes") == true)
        var amplified = coded  // within the limit, but more than deflate can expand the stored bytes to
        amplified.replaceSubrange((entry + 10)..<(entry + 18), with: withUnsafeBytes(of: UInt64(200_000_000).littleEndian) { Array($0) })
        #expect(refused(amplified)?.contains("more than shuffle-deflate can expand") == true)
        let storedCount = Int(coded[entry]) | Int(coded[entry + 1]) << 8 | Int(coded[entry + 2]) << 16
        let arrays = coded.count - (0..<3).reduce(0) { total, i in
            let e = entry + 18 * i
            return total + (Int(coded[e]) | Int(coded[e + 1]) << 8 | Int(coded[e + 2]) << 16)
        }
        var garbled = coded
        for i in 0..<16 { garbled[arrays + storedCount / 2 + i] ^= 0x5a }
        #expect(refused(garbled)?.contains("does not decode") == true)
    }

    @Test func headerListsParse() {
        #expect(FrameCompression.names(in: " shuffle-deflate , none,") == ["shuffle-deflate", "none"])
        #expect(FrameCompression.names(in: nil).isEmpty)
        #expect(FrameCompression.readable.map(\.name) == ["shuffle-deflate"])
    }
}
