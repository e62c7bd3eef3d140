import Crypto
import CryptoExtras
import FedRouteFeatures
import FedRouteData
@testable import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Synchronization
import Testing

/// A client that fails chosen requests, as if it crashed at that point.
struct FailingClient: FederatedClient {
    let inner: any FederatedClient
    let fails: @Sendable (FederatedRequest) -> Bool
    var id: String { inner.id }

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        if fails(request) { throw FederationError.protocolViolation(client: id, "simulated crash during \(request.kind)") }
        return try await inner.handle(request)
    }
}

@Suite struct PrivacyAccountantTests {
    /// Reference values: dp_accounting 0.6.0, RdpAccountant(orders = 2…64, 80, 96, 128, 160, 192, 256),
    /// SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(σ)), rounds).get_epsilon(1e-5).
    @Test(arguments: [(0.6, 1.0, 5, 9.224101232168312), (0.01, 1.1, 1000, 1.7252908180449444),
                      (0.3, 0.8, 20, 15.970558253848951), (1.0, 2.0, 10, 8.087861628831664)])
    func epsilonMatchesDPAccounting(_ c: (Double, Double, Int, Double)) {
        var a = PrivacyAccountant()
        for _ in 0..<c.2 { a.addRound(samplingRate: c.0, noiseMultiplier: c.1) }
        #expect(abs(a.epsilon(delta: 1e-5) - c.3) < 1e-6 * c.3, "q=\(c.0) σ=\(c.1) T=\(c.2): \(a.epsilon(delta: 1e-5)) vs \(c.3)")
    }

    @Test func clippingBoundsTheNormAndNoiseHasTheRequestedSpread() {
        var delta = [Tensor(name: "a", shape: [3], values: [30, 40, 0])]
        var g = SeededRandom(seed: 1)
        let before = UpdatePrivacy(clipNorm: 5, noiseStd: 0).apply(to: &delta, using: &g)
        #expect(before == 50 && delta[0].values == [3, 4, 0])
        var big = [Tensor(name: "b", shape: [20_000], repeating: 0)]
        UpdatePrivacy(clipNorm: 1, noiseStd: 0.5).apply(to: &big, using: &g)
        let sd = (big[0].values.reduce(0.0) { $0 + Double($1 * $1) } / 20_000).squareRoot()
        #expect(abs(sd - 0.5) < 0.01)
    }
}

@Suite struct SecureAggregationTests {
    static func configuration(secure: Bool) -> FederatedMLPConfiguration {
        var c = Fixture.smallMLP
        c.secureAggregation = secure
        return c
    }

    /// Trains on `tables` with client `dying` failing its round-2 task (after it sent its key, under secure
    /// aggregation), in the clear or securely, the clients declaring `policies`' mask generators.
    static func trainWithAClientDyingInRound2(_ tables: [EvaluationTable], dying: Int, secure: Bool,
                                              policies: [ClientPolicy]? = nil) async throws -> (MLPRouter, [RoundReport]) {
        let dies: @Sendable (FederatedRequest) -> Bool = { if case .trainMLP(let t) = $0 { return t.round == 2 }; return false }
        let (_, clients, _) = try await Fixture.federation(tables, policies: policies)
        let coordinator = try FederationCoordinator(clients: clients.enumerated().map { i, c in
            i == dying ? FailingClient(inner: c, fails: dies) as any FederatedClient : c
        })
        return try await coordinator.trainMLP(configuration(secure: secure))
    }

    /// The secure router's parameters equal the plain one's to fixed-point rounding.
    static func expectSameParameters(_ router: MLPRouter, _ plainRouter: MLPRouter) {
        for (a, b) in zip(router.network.parameters, plainRouter.network.parameters) {
            for (x, y) in zip(a.values, b.values) { #expect(abs(x - y) < 1e-4) }
        }
    }

    /// The masks are the ChaCha20-Poly1305 encryption of zeros (the protocol's first definition),
    /// generated in chunks from their own block counters, over the cores; adding then subtracting a
    /// mask restores the vector. Lengths cross the chunk size and end mid-block.
    @Test(arguments: [1, 7, 8, SecureAggregation.keystreamChunkWords - 3, 3 * SecureAggregation.keystreamChunkWords + 5])
    func masksAreTheChaChaPolyKeystreamInChunks(count: Int) throws {
        let key = Data((0..<32).map { UInt8($0 &* 7 &+ 3) })
        let sealed = try ChaChaPoly.seal(Data(count: count * 8), using: SymmetricKey(data: key), nonce: ChaChaPoly.Nonce(data: Data(count: 12)))
        let reference = sealed.ciphertext.withUnsafeBytes { raw in
            (0..<count).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
        #expect(try SecureAggregation.mask(pairKey: key, count: count) == reference)
        let plain = (0..<count).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
        var v = plain
        try SecureAggregation.applyMask(pairKey: key, to: &v, adding: true)
        #expect(v == zip(plain, reference).map { $0 &+ $1 })
        try SecureAggregation.applyMask(pairKey: key, to: &v, adding: false)
        #expect(v == plain)
    }

    /// AES-256-CTR masks are the keystream E_k(0⁹⁶ ‖ b) for blocks b = 0, 1, … (checked against single-block
    /// AES from swift-crypto, independently of its CTR mode), generated in chunks from their own counters.
    @Test(arguments: [1, 2, 3, SecureAggregation.keystreamChunkWords - 1, 2 * SecureAggregation.keystreamChunkWords + 3])
    func aesMasksAreTheCounterModeKeystreamInChunks(count: Int) throws {
        let key = Data((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ 5) })
        var reference = [UInt64]()
        for b in 0..<((count + 1) / 2) {
            var block = [UInt8](repeating: 0, count: 12) + withUnsafeBytes(of: UInt32(b).bigEndian) { Array($0) }
            try AES.permute(&block, key: SymmetricKey(data: key))
            block.withUnsafeBytes { raw in
                reference.append(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)))
                reference.append(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
        }
        let mask = try SecureAggregation.mask(pairKey: key, count: count, generator: .aes256CTR)
        #expect(mask == Array(reference.prefix(count)))
        #expect(mask != (try SecureAggregation.mask(pairKey: key, count: count, generator: .chacha20)))
    }

    /// The VAES kernel (keystream generated and added in one pass) gives swift-crypto's `AES._CTR` keystream
    /// added word for word: at every tail length around its 32-word step, across chunks, mixed with ChaCha20
    /// masks, with both signs.
    @Test(.enabled(if: AESCTRMaskKernel.isAvailable, "the CPU has no VAES"),
          arguments: [1, 2, 3, 4, 5, 31, 32, 33, 34, 63, 64, 65, 97, SecureAggregation.keystreamChunkWords + 1, 2 * SecureAggregation.keystreamChunkWords + 35])
    func aesMaskKernelEqualsSwiftCrypto(count: Int) throws {
        let masks = (0..<4).map { k in
            SecureAggregation.PairMask(key: Data((0..<32).map { UInt8(($0 &* 29 &+ k &* 3 &+ 1) & 0xFF) }),
                                       generator: k == 2 ? .chacha20 : .aes256CTR, adding: k != 1)
        }
        let plain = (0..<count).map { UInt64($0 &+ 1) &* 0xD1B5_4A32_D192_ED03 }
        var kernel = plain, reference = plain
        try SecureAggregation.applyMasks(masks, to: &kernel, kernel: true)
        try SecureAggregation.applyMasks(masks, to: &reference, kernel: false)
        #expect(kernel == reference)
        #expect(kernel != plain)
    }

    /// The kernel from a block other than 0: the words of blocks b, b + 1, … as single-block AES gives them.
    @Test(.enabled(if: AESCTRMaskKernel.isAvailable, "the CPU has no VAES"))
    func aesMaskKernelStartsAtItsBlock() throws {
        let key = Data((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 200) })
        let first: UInt32 = 0x0102_03F0
        var expected = [UInt64]()
        for b in first..<(first + 20) {
            var block = [UInt8](repeating: 0, count: 12) + withUnsafeBytes(of: b.bigEndian) { Array($0) }
            try AES.permute(&block, key: SymmetricKey(data: key))
            block.withUnsafeBytes { raw in
                expected.append(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)))
                expected.append(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
        }
        var words = [UInt64](repeating: 5, count: 39)
        let done = key.withUnsafeBytes { k in
            words.withUnsafeMutableBufferPointer { AESCTRMaskKernel.add(key: k, firstBlock: first, to: $0.baseAddress!, count: 39, subtracting: false) }
        }
        #expect(done)
        #expect(words == expected.prefix(39).map { $0 &+ 5 })
        let refused = Data(count: 16).withUnsafeBytes { k in
            words.withUnsafeMutableBufferPointer { AESCTRMaskKernel.add(key: k, firstBlock: 0, to: $0.baseAddress!, count: 39, subtracting: false) }
        }
        #expect(!refused)
    }

    /// Several pairs' masks applied in one pass (chunk by chunk) equal applying them one by one; taking
    /// the same masks with the other sign restores the vector.
    @Test func fusedMasksEqualMasksAppliedOneByOne() throws {
        let count = 3 * SecureAggregation.keystreamChunkWords + 17
        let masks = (0..<5).map { k in
            SecureAggregation.PairMask(key: Data((0..<32).map { UInt8(($0 &* 13 &+ k &* 7) & 0xFF) }),
                                       generator: k % 2 == 0 ? .aes256CTR : .chacha20, adding: k % 3 != 0)
        }
        let plain = (0..<count).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
        var fused = plain
        try SecureAggregation.applyMasks(masks, to: &fused)
        var oneByOne = plain
        for m in masks { try SecureAggregation.applyMask(pairKey: m.key, to: &oneByOne, adding: m.adding, generator: m.generator) }
        #expect(fused == oneByOne && fused != plain)
        try SecureAggregation.applyMasks(masks.map { var m = $0; m.adding.toggle(); return m }, to: &fused)
        #expect(fused == plain)
        // A key of the wrong size is an error, not a crash.
        var v = plain
        #expect(throws: FederationError.self) { try SecureAggregation.applyMasks([.init(key: Data(count: 16), generator: .aes256CTR, adding: true)], to: &v) }
    }

    /// A pair uses AES-256-CTR only when both sides declared it; no declaration (a client from before
    /// the field) or an unknown name means ChaCha20, and both sides of a pair agree.
    @Test func aPairUsesAESOnlyWhenBothDeclaredIt() {
        func p(_ masks: [String]?) -> SecureAggregationParticipant { SecureAggregationParticipant(id: "x", publicKey: Data(count: 32), masks: masks) }
        let aes = p(["aes256-ctr", "chacha20"]), chacha = p(["chacha20"]), old = p(nil), future = p(["chacha8-future"])
        #expect(aes.maskGenerator(with: aes) == .aes256CTR)
        for other in [chacha, old, future] {
            #expect(aes.maskGenerator(with: other) == .chacha20 && other.maskGenerator(with: aes) == .chacha20)
        }
        #expect(p(["aes256-ctr"]).maskGenerator(with: aes) == .aes256CTR)
    }

    /// Replies and reports from before the mask declaration still decode (no `masks` key: ChaCha20).
    @Test func repliesAndReportsWithoutMaskDeclarationsDecode() throws {
        let key = Data(repeating: 7, count: 32)
        let json = #"{"secureAggregationKey":{"round":3,"publicKey":"\#(key.base64EncodedString())"}}"#
        let reply = try JSONDecoder().decode(FederatedReply.self, from: Data(json.utf8))
        #expect(reply == .secureAggregationKey(round: 3, publicKey: key, masks: nil))
        let report = try JSONDecoder().decode(SecureAggregationReport.self, from: Data(#"{"listed":["a","b"],"dropped":[],"revealedBy":[]}"#.utf8))
        #expect(report.maskGenerators == nil && report.listed == ["a", "b"])
    }

    /// Clients that declare AES and clients that only take ChaCha20 (as an older client would) in one
    /// federation: mixed pairs use ChaCha20, the sum still equals the plain average, and a client that
    /// dies after masking is unmasked with the right generator for each of its pairs.
    @Test func mixedMaskGeneratorsAggregateAndUnmaskCorrectly() async throws {
        let tables = try Fixture.shards(sizes: [120, 80, 60, 40])
        let (plainRouter, _) = try await Self.trainWithAClientDyingInRound2(tables, dying: 1, secure: false)
        let policies = [ClientPolicy(maskGenerators: [.aes256CTR, .chacha20]), ClientPolicy(maskGenerators: [.aes256CTR]),
                        ClientPolicy(maskGenerators: [.chacha20]), ClientPolicy(maskGenerators: [.aes256CTR, .chacha20])]
        let (router, rounds) = try await Self.trainWithAClientDyingInRound2(tables, dying: 1, secure: true, policies: policies)
        #expect(rounds.allSatisfy { $0.secureAggregation?.maskGenerators == ["aes256-ctr", "chacha20"] })
        #expect(rounds[1].secureAggregation?.dropped == ["c1"] && rounds[1].aggregated == ["c0", "c2", "c3"])
        Self.expectSameParameters(router, plainRouter)
        // All on ChaCha20: the report says so.
        let (_, chachaClients, _) = try await Fixture.federation(tables, policies: Array(repeating: ClientPolicy(maskGenerators: [.chacha20]), count: 4))
        let (_, chachaRounds) = try await FederationCoordinator(clients: chachaClients).trainMLP(Self.configuration(secure: true))
        #expect(chachaRounds.allSatisfy { $0.secureAggregation?.maskGenerators == ["chacha20"] })
    }

    /// The coordinator's sum, chunk by chunk over the cores, equals the word-by-word sum; vectors of
    /// another length are refused by name.
    @Test func theMaskedSumIsTheWordwiseSumAndRefusesMismatchedLengths() throws {
        let n = 2 * SecureAggregation.keystreamChunkWords + 5
        var rng = SeededRandom(seed: 9)
        let vectors = (0..<4).map { _ in (0..<n).map { _ in rng.next() } }
        let sum = try SecureAggregation.unmaskedSum(masked: vectors.enumerated().map { ("c\($0)", $1) }, dropped: [], revealed: [:], participants: [])
        #expect(sum == (0..<n).map { i in vectors.reduce(0) { $0 &+ $1[i] } })
        #expect(throws: FederationError.self) {
            try SecureAggregation.unmaskedSum(masked: [("c0", vectors[0]), ("c1", Array(vectors[1].dropLast()))], dropped: [], revealed: [:], participants: [])
        }
        let words = sum[3..<(n - 2)]
        #expect(FixedPoint.decode(words, dividedBy: 7) == words.map { Float(FixedPoint.decode($0) / 7) })
    }

    /// The coordinator folds each masked vector into the round's sum as it arrives: split over the cores
    /// above 2 · 262,144 words (2 MB a part), with a tail that is not a multiple of the vector width, it is the
    /// word-wise sum, in either ring.
    @Test func foldingMaskedVectorsOverTheCoresIsTheWordwiseSum() {
        let n = 2 * 262_144 + 7
        var rng = SeededRandom(seed: 17)
        let vectors = (0..<3).map { _ in (0..<n).map { _ in rng.next() } }
        var sum = vectors[0]
        for v in vectors.dropFirst() { SecureAggregation.accumulate(v, into: &sum) }
        #expect(sum == (0..<n).map { i in vectors.reduce(0) { $0 &+ $1[i] } })
        #expect(vectors[0][n - 1] != sum[n - 1])
        // The 32-bit ring's words split over the cores above 2 · 524,288 of them.
        let n32 = 2 * 524_288 + 7
        let narrow = (0..<3).map { _ in (0..<n32).map { _ in UInt32(truncatingIfNeeded: rng.next()) } }
        var sum32 = narrow[0]
        for v in narrow.dropFirst() { SecureAggregation.accumulate(v, into: &sum32) }
        #expect(sum32 == (0..<n32).map { i in narrow.reduce(0) { $0 &+ $1[i] } })
        #expect(narrow[0][n32 - 1] != sum32[n32 - 1])
    }

    /// In either ring (32-bit words when every client declares them, the default; 64-bit otherwise).
    @Test(arguments: [true, false])
    func maskedSumEqualsThePlainAverageAndTheServerHoldsOnlyMaskedVectors(ring32: Bool) async throws {
        let tables = try Fixture.shards(sizes: [120, 80, 60, 40])
        let (plainCoordinator, _, _) = try await Fixture.federation(tables)
        let (plainRouter, _) = try await plainCoordinator.trainMLP(Self.configuration(secure: false))
        // The same clients (same data, same seeds) behind recorders of everything the server receives.
        let (_, clients, _) = try await Fixture.federation(tables, policies: tables.map { _ in ClientPolicy(ring32: ring32) })
        let recorders = clients.map { RecordingClient($0) }
        let secure = try FederationCoordinator(clients: recorders)
        let (secureRouter, rounds) = try await secure.trainMLP(Self.configuration(secure: true))
        Self.expectSameParameters(secureRouter, plainRouter)
        #expect(rounds.allSatisfy { $0.aggregated.count == 4 && $0.secureAggregation?.dropped == [] })
        #expect(rounds.allSatisfy { $0.secureAggregation?.wordBits == (ring32 ? 32 : 64) && $0.secureAggregation?.fractionBits == (ring32 ? 27 : nil) })
        // What the server received from each client: keys and masked vectors, never an `mlpUpdate`.
        // Read as two's complement, a masked vector is spread over the whole ring (|values| ~ 10^18 or 10^9),
        // where the true update in fixed point is at most 2^24 · w·|Δ| (64-bit) or 2^27 · r·|Δ| (32-bit, r ≤ 1).
        for (k, recorder) in recorders.enumerated() {
            let received = await recorder.replies
            let kinds = try received.map { try JSONDecoder().decode(FederatedReply.self, from: $0.json).kind }
            #expect(!kinds.contains("mlpUpdate"))
            let masked = try received.filter { $0.request == "trainMLP" }.map { try JSONDecoder().decode(FederatedReply.self, from: $0.json) }
            #expect(masked.count == 3)
            for reply in masked {
                guard case .maskedUpdate(let u) = reply else { Issue.record("expected a masked update"); continue }
                #expect((u.values32 != nil) == ring32 && u.values.isEmpty == ring32)
                let seen = ring32 ? (u.values32 ?? []).map { abs($0.signedValue) } : u.values.map { abs($0.signedValue) }
                let median = seen.sorted()[seen.count / 2]
                #expect(median > (ring32 ? 1e8 : 1e17), "client \(k)'s masked vector looks unmasked (median |word| \(median))")
            }
        }
    }

    @Test func aClientThatDiesAfterMaskingIsUnmaskedByTheSurvivors() async throws {
        let tables = try Fixture.shards(sizes: [120, 80, 60, 40])
        // Reference: client c2 fails round 2 in the clear.
        let (plainRouter, plainRounds) = try await Self.trainWithAClientDyingInRound2(tables, dying: 2, secure: false)
        #expect(plainRounds[1].aggregated == ["c0", "c1", "c3"])
        // Secure: c2 sends its key, then dies before its masked update; the survivors reveal.
        let (router, rounds) = try await Self.trainWithAClientDyingInRound2(tables, dying: 2, secure: true)
        #expect(rounds[1].secureAggregation == SecureAggregationReport(listed: ["c0", "c1", "c2", "c3"], dropped: ["c2"], revealedBy: ["c0", "c1", "c3"],
                                                                       maskGenerators: [MaskGenerator.preferredHere[0].rawValue], trainedWithKey: [],
                                                                       wordBits: 32, fractionBits: 27))
        #expect(rounds[1].aggregated == ["c0", "c1", "c3"] && rounds[2].aggregated.count == 4)
        Self.expectSameParameters(router, plainRouter)
    }

    @Test func aClientRefusesToRevealKeysThatWouldUnmaskItself() async throws {
        let tables = try Fixture.shards(sizes: [40, 40, 40])
        let (_, clients, _) = try await Fixture.federation(tables)
        var keys: [SecureAggregationParticipant] = []
        for c in clients {
            guard case .secureAggregationKey(_, let k, let masks, _, _) = try await c.handle(.secureAggregationKey(round: 1)) else { throw FederationError.notEnoughClients("") }
            keys.append(SecureAggregationParticipant(id: c.id, publicKey: k, masks: masks))
        }
        let update = MLPUpdate(round: 1, delta: [Tensor(name: "w", shape: [4], values: [1, 2, 3, 4])], sampleCount: 10, meanLoss: 0.5)
        var masked: [[UInt64]] = []
        for c in clients { masked.append(try await c.maskedUpdate(update, participants: keys, uniformWeight: false).values) }
        // The masks cancel: the sum is 3 × (10·Δ, 10, 10·0.5).
        let sum = try SecureAggregation.unmaskedSum(masked: zip(clients.map(\.id), masked).map { ($0, $1) }, dropped: [], revealed: [:], participants: keys)
        #expect(sum.map(FixedPoint.decode) == [30, 60, 90, 120, 30, 15])
        // Revealing both other pair keys would unmask c0; revealing its own is meaningless.
        await #expect(throws: FederationError.self) { try await clients[0].handle(.revealPairKeys(round: 1, dropped: ["c1", "c2"])) }
        await #expect(throws: FederationError.self) { try await clients[0].handle(.revealPairKeys(round: 1, dropped: ["c0"])) }
        await #expect(throws: FederationError.self) { try await clients[0].handle(.revealPairKeys(round: 1, dropped: ["stranger"])) }
        guard case .pairKeys(_, let revealed) = try await clients[0].handle(.revealPairKeys(round: 1, dropped: ["c2"])) else {
            Issue.record("expected pair keys"); return
        }
        // With c2 dropped, c0's and c1's reveals remove the dangling masks: the sum is 2 × the update.
        guard case .pairKeys(_, let revealed1) = try await clients[1].handle(.revealPairKeys(round: 1, dropped: ["c2"])) else { return }
        let partial = try SecureAggregation.unmaskedSum(masked: [("c0", masked[0]), ("c1", masked[1])], dropped: ["c2"],
                                                        revealed: ["c0": revealed, "c1": revealed1], participants: keys)
        #expect(partial.map(FixedPoint.decode) == [20, 40, 60, 80, 20, 10])
    }
}

@Suite struct FixedPointTests {
    /// The vectorised encoding gives `encode(w·Double(v))`'s words at every width: random values over
    /// many magnitudes, exact halves after scaling, values beyond 2^51 after scaling (the scalar path
    /// inside a vector block), every tail length; and it stops at the first non-finite or out-of-range
    /// product, having written the words before it.
    @Test func theKernelEncodesAsTheDefinitionAtEveryWidth() {
        let ulp = 1.0 / Double(1 << FixedPoint.fractionBits)
        var rng = SeededRandom(seed: 12)
        var values: [Float] = (0..<4_000).map { _ in Float((rng.nextDouble() * 2 - 1) * pow(10, Double(rng.nextInt(below: 10)) - 6)) }
        values += [0, -0.0, Float(0.5 * ulp), Float(-1.5 * ulp), Float(2.5 * ulp), 3e8, -3e8, 1.2e8, Float(FixedPoint.limit) * 0.99]
        for w in [1.0, 0.0, 3.0, 517.0] {
            for width: Int32? in [nil, 0, 1, 2] {
                let usable = values.filter { abs(w * Double($0)) < FixedPoint.limit }
                for n in [0, 1, 2, 3, 4, 5, 7, 9, usable.count] {
                    let slice = Array(usable.prefix(n))
                    var out = [UInt64](repeating: 0xDEAD, count: n)
                    let done = slice.withUnsafeBufferPointer { v in out.withUnsafeMutableBufferPointer { FixedPoint.encode(v, weight: w, into: $0.baseAddress!, width: width) } }
                    #expect(done == n && out == slice.map { FixedPoint.encode(w * Double($0)) }, "w \(w) width \(String(describing: width)) n \(n)")
                }
            }
        }
        for bad: Float in [.nan, .infinity, -.infinity, Float(FixedPoint.limit) * 2] {
            for at in [0, 3, 6] {
                var v = Array(values.prefix(9))
                v[at] = bad
                for width: Int32? in [nil, 0, 1] {
                    var out = [UInt64](repeating: 0, count: v.count)
                    let done = v.withUnsafeBufferPointer { b in out.withUnsafeMutableBufferPointer { FixedPoint.encode(b, weight: 1, into: $0.baseAddress!, width: width) } }
                    #expect(done == at, "\(bad) at \(at), width \(String(describing: width))")
                    #expect(Array(out.prefix(at)) == v.prefix(at).map { FixedPoint.encode(Double($0)) })
                }
            }
        }
    }

    /// The encoding rounds as `rounded()` (halves away from zero) without libm: exact halves, values a
    /// hair either side of them, negatives, ±0, integers beyond 2^52 after scaling and values at the limit.
    @Test func encodingRoundsHalvesAwayFromZeroAsLibmDoes() {
        let ulp = 1.0 / Double(1 << FixedPoint.fractionBits)
        var xs: [Double] = [0, -0.0, 1, -1, FixedPoint.limit * 0.999, -FixedPoint.limit * 0.999, 3e11, -3e11, 1e-12, -1e-12]
        for k in [0.0, 1, 2, 7, 1e6, 123_456_789] {
            for half in [0.5, 1.5] {
                let x = (k + half) * ulp
                xs += [x, -x, x.nextUp, x.nextDown, -x.nextUp, -x.nextDown]
            }
        }
        var rng = SeededRandom(seed: 4)
        xs += (0..<10_000).map { _ in (rng.nextDouble() * 2 - 1) * pow(10, Double(rng.nextInt(below: 12)) - 8) }
        for x in xs {
            let libm = UInt64(bitPattern: Int64((x * Double(1 << FixedPoint.fractionBits)).rounded()))
            #expect(FixedPoint.encode(x) == libm, "x = \(x)")
        }
    }
}

@Suite struct DPFedAvgAndResumeTests {
    @Test func dpRoundsReportAGrowingEpsilonAndSeededNoiseIsReproducible() async throws {
        let tables = try Fixture.shards(sizes: [100, 100, 100, 100])
        func run(secure: Bool) async throws -> (MLPRouter, [RoundReport]) {
            let clients = tables.enumerated().map { InProcessClient(id: "c\($0)", train: $1, policy: ClientPolicy(noiseSeed: 7 &+ UInt64($0))) }
            let coordinator = try FederationCoordinator(clients: clients)
            let encoder = try await coordinator.fitHashedEncoder(Fixture.encoderConfiguration)
            _ = try await coordinator.useEncoder(.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf))
            var c = Fixture.smallMLP
            c.privacy = DifferentialPrivacy(clipNorm: 0.5, noiseMultiplier: 1.0, delta: 1e-5)
            c.participation = 0.5
            c.secureAggregation = secure
            return try await coordinator.trainMLP(c)
        }
        let (a, rounds) = try await run(secure: false)
        let (b, _) = try await run(secure: false)
        #expect(a == b)
        let eps = rounds.compactMap { $0.privacy?.epsilon }
        #expect(eps.count == 3 && eps[0] < eps[1] && eps[1] < eps[2])
        #expect(rounds.allSatisfy { $0.privacy?.samplingRate == 0.5 && $0.privacy?.effectiveNoiseMultiplier == 1 })
        var reference = PrivacyAccountant()
        for _ in 0..<3 { reference.addRound(samplingRate: 0.5, noiseMultiplier: 1) }
        #expect(eps[2] == reference.epsilon(delta: 1e-5))
        // Secure aggregation of the same noised updates gives the same model up to fixed point.
        let (s, _) = try await run(secure: true)
        for (x, y) in zip(s.network.parameters, a.network.parameters) {
            for (u, v) in zip(x.values, y.values) { #expect(abs(u - v) < 1e-4) }
        }
    }

    @Test func resumingFromACheckpointGivesTheSameRouterAsAnUninterruptedRun() async throws {
        let tables = try Fixture.shards(sizes: [120, 80, 60])
        let (coordinator, _, _) = try await Fixture.federation(tables)
        var c = Fixture.smallMLP
        c.server = .adam
        c.participation = 0.67
        let (full, fullRounds) = try await coordinator.trainMLP(c)
        // Stop after round 1 (the checkpoint goes through JSON, as on disk), then resume.
        let saved = Saved()
        var one = c
        one.rounds = 1
        _ = try await coordinator.trainMLP(one, checkpoint: { await saved.set(try JSONEncoder().encode($0)) })
        let state = try JSONDecoder().decode(MLPTrainingState.self, from: await saved.data!)
        #expect(state.completedRounds == 1)
        let (resumed, rounds) = try await coordinator.trainMLP(c, resume: state)
        #expect(resumed == full && rounds == fullRounds)
        // A checkpoint of another shape is refused.
        var other = c
        other.hiddenDimension = 8
        await #expect(throws: FederationError.self) { try await coordinator.trainMLP(other, resume: state) }
    }

    @Test func anUpdateWithAnAbsurdNormIsRejected() async throws {
        let description = ClientDescription(models: ["a", "b"], trainQueries: 10, trainableQueries: 10, observedCells: 10, featureDimension: 3)
        let fine = ScriptedClient(id: "fine", description: description) { t in
            MLPUpdate(round: t.round, delta: t.parameters.map { Tensor(name: $0.name, shape: $0.shape, repeating: 0.01) }, sampleCount: 5, meanLoss: 1)
        }
        let huge = ScriptedClient(id: "huge", description: description) { t in
            MLPUpdate(round: t.round, delta: t.parameters.map { Tensor(name: $0.name, shape: $0.shape, repeating: 1e4) }, sampleCount: 5, meanLoss: 1)
        }
        var c = FederatedMLPConfiguration()
        c.hiddenDimension = 4; c.rounds = 1; c.participation = 1
        let start = try MLPRouter(models: ["a", "b"], network: MLPNetwork(architecture: MLPArchitecture(inputDimension: 3, hiddenDimension: 4, modelCount: 2), seed: 1),
                                  costNormalizer: CostNormalizer(mean: [0, 0], std: [1, 1]))
        let (_, rounds) = try await FederationCoordinator(clients: [fine, huge]).continueMLP(start, c)
        #expect(rounds[0].aggregated == ["fine"])
        #expect(rounds[0].rejected["huge"]?.contains("exceeds the limit") == true)
    }
}

actor Saved {
    var data: Data?
    func set(_ d: Data) { data = d }
}


/// Masked updates cross the wire as 64-bit words inside tensor frames (no base64) and come back bit-exact;
/// a blob that is not whole 64-bit words is refused.
@Suite struct MaskedUpdateFrameTests {
    /// A message shaped like a masked update whose blob holds one 32-bit word.
    struct OddWords: Encodable {
        enum CodingKeys: String, CodingKey { case round, values }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(1, forKey: .round)
            let writer = try #require(encoder.userInfo[.tensorBlobs] as? TensorFrames.Writer)
            try c.encode(TensorFrames.BlobReference(blob: writer.append([UInt32(7)], littleEndian: { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } })), forKey: .values)
        }
    }

    @Test func roundTripsThroughAFrame() throws {
        let update = MaskedUpdate(round: 4, values: [0, 1, .max, 0x8000_0000_0000_0000, 12_345_678_901_234])
        let frame = try TensorFrames.encode(update, with: FederationCoding.encoder())
        #expect(try TensorFrames.decode(MaskedUpdate.self, from: frame, with: FederationCoding.decoder()) == update)
        // The words follow the JSON as 40 raw bytes.
        let raw = update.values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        #expect(Array(frame.suffix(40)) == raw)
        #expect(String(decoding: frame, as: UTF8.self).contains("\"blob\""))
        let odd = try TensorFrames.encode(OddWords(), with: JSONEncoder())
        #expect(throws: DecodingError.self) { try TensorFrames.decode(MaskedUpdate.self, from: odd, with: FederationCoding.decoder()) }
    }

    /// Counts the arrays a frame offers it, and never shrinks one.
    final class CountingCodec: TensorFrameCodec, @unchecked Sendable {
        let id: UInt8 = 9
        let name = "counting"
        let maxExpansion = 1
        let offered = Mutex<[Int]>([])
        func encode(_ bytes: UnsafeRawBufferPointer, width: Int) throws -> Data? {
            offered.withLock { $0.append(width) }
            return nil
        }
        func decode(_ bytes: UnsafeRawBufferPointer, width: Int, count: Int) throws -> Data { Data(bytes) }
    }

    /// Masked words are uniformly random, so a negotiated codec is not run on them (it would spend a
    /// pass over megabytes per round to store them as they are anyway); a plain update's floats are offered.
    @Test func maskedWordsAreNotOfferedToACodec() throws {
        let codec = CountingCodec()
        let masked = MaskedUpdate(round: 2, values: (0..<10_000).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 })
        let frame = try TensorFrames.encode(FederatedReply.maskedUpdate(masked), with: FederationCoding.encoder(), options: .init(codec: codec))
        #expect(codec.offered.withLock { $0 }.isEmpty)
        #expect(try TensorFrames.decode(FederatedReply.self, from: frame, with: FederationCoding.decoder()) == .maskedUpdate(masked))
        let plain = MLPUpdate(round: 2, delta: [Tensor(name: "w", shape: [10_000], values: (0..<10_000).map { Float($0) / 3 })], sampleCount: 5, meanLoss: 0.5)
        _ = try TensorFrames.encode(FederatedReply.mlpUpdate(plain), with: FederationCoding.encoder(), options: .init(codec: codec))
        #expect(codec.offered.withLock { $0 } == [4])
    }
}
