import FedRouteData
import FedRouteFeatures
@testable import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Testing

/// A client that describes fewer trainable queries than it trains on (so that its share of W is too large).
struct UnderstatingClient: FederatedClient {
    let inner: any FederatedClient
    var id: String { inner.id }

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        let reply = try await inner.handle(request)
        guard case .description(var d) = reply else { return reply }
        d.trainableQueries = 1
        return .description(d)
    }
}

/// A client that answers a 32-bit round with its words widened to 64 bits.
struct WideningClient: FederatedClient {
    let inner: any FederatedClient
    var id: String { inner.id }

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        let reply = try await inner.handle(request)
        guard case .maskedUpdate(let u) = reply, let words = u.values32 else { return reply }
        return .maskedUpdate(MaskedUpdate(round: u.round, values: words.map(UInt64.init)))
    }
}

/// The 32-bit ring (`SecureWords32`): its masks, its encoding, its bounds, and the routers it trains.
@Suite struct SecureWords32Tests {
    static let chunk32 = SecureAggregation.keystreamChunkBytes / 4

    /// The 32-bit ring's mask is the same keystream as the 64-bit ring's, read in 32-bit little-endian words, from
    /// both generators; the AES kernel gives swift-crypto's words; adding then subtracting a mask restores the
    /// vector. Lengths cross the chunk size and end mid-block.
    @Test(arguments: [1, 3, 7, 8, 9, 17, chunk32 - 3, 3 * chunk32 + 5])
    func masksAreTheSameKeystreamInThirtyTwoBitWords(count: Int) throws {
        let key = Data((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ 5) })
        for generator in MaskGenerator.allCases {
            let wide = try SecureAggregation.mask(pairKey: key, count: (count + 1) / 2, generator: generator)
            let narrow = try SecureAggregation.mask(pairKey: key, count: count, generator: generator, as: UInt32.self)
            let halves = wide.flatMap { [UInt32(truncatingIfNeeded: $0), UInt32(truncatingIfNeeded: $0 >> 32)] }
            #expect(narrow == Array(halves.prefix(count)), "\(generator)")
            var rng = SeededRandom(seed: UInt64(count))
            let original = (0..<count).map { _ in UInt32(truncatingIfNeeded: rng.next()) }
            let mask = SecureAggregation.PairMask(key: key, generator: generator, adding: true)
            var viaStream = original, viaKernel = original
            try SecureAggregation.applyMasks([mask], to: &viaStream, kernel: false)
            if AESCTRMaskKernel.isAvailable {
                try SecureAggregation.applyMasks([mask], to: &viaKernel, kernel: true)
                #expect(viaKernel == viaStream, "\(generator)")
            }
            #expect(viaStream == zip(original, narrow).map { $0 &+ $1 })
            try SecureAggregation.applyMasks([SecureAggregation.PairMask(key: key, generator: generator, adding: false)], to: &viaStream)
            #expect(viaStream == original)
        }
    }

    /// The 32-bit encoding is the 64-bit one's word reduced mod 2^32, at every vector width, and stops at the same
    /// first value out of range or not finite.
    @Test func encodingIsTheLowHalfOfTheSixtyFourBitWord() {
        var rng = SeededRandom(seed: 5)
        var values = (0..<1_003).map { _ in Float(rng.nextDouble() * 2 - 1) * 900 }
        values += [0, -0.0, 0x1p-21, -0x1.8p-21, 0x1.4p-20, 999.9]
        let (r, scale) = (0.37, 0x1p20)
        let limit = r * 1_000
        var wide = [UInt64](repeating: 0, count: values.count)
        let all = values.withUnsafeBufferPointer { FixedPointKernel.encode($0, weight: r, scale: scale, limit: limit, into: &wide, width: 0) }
        #expect(all == values.count)
        for width: Int32 in [0, 1] {
            var narrow = [UInt32](repeating: 0, count: values.count)
            let done = values.withUnsafeBufferPointer { FixedPointKernel.encode($0, weight: r, scale: scale, limit: limit, into: &narrow, width: width) }
            #expect(done == values.count)
            #expect(narrow == wide.map { UInt32(truncatingIfNeeded: $0) }, "width \(width)")
            #expect(narrow.map { Double(Int32(bitPattern: $0)) } == wide.map { Double(Int64(bitPattern: $0)) })
            for bad: Float in [.nan, .infinity, 1_000, -1_000.5] {
                var v = values
                v[517] = bad
                var out = [UInt32](repeating: 0, count: v.count)
                #expect(v.withUnsafeBufferPointer { FixedPointKernel.encode($0, weight: r, scale: scale, limit: limit, into: &out, width: width) } == 517)
            }
        }
    }

    /// The fraction bits are the most the bound allows (bound · 2^f ≤ 2^30); a bound too large for 12 bits, or a
    /// bound or total weight that is not finite and positive, keeps the 64-bit ring; parameters that could wrap
    /// the sum are named as a problem.
    @Test func fractionBitsFollowTheBound() throws {
        #expect(SecureWords32(bound: 1_000, totalWeight: 10)?.fractionBits == 20)
        #expect(SecureWords32(bound: 1_024, totalWeight: 10)?.fractionBits == 20)
        #expect(SecureWords32(bound: 1_025, totalWeight: 10)?.fractionBits == 19)
        #expect(SecureWords32(bound: 1, totalWeight: 10)?.fractionBits == 30)
        #expect(SecureWords32(bound: 1e-3, totalWeight: 10)?.fractionBits == 30)
        #expect(SecureWords32(bound: 0x1p18, totalWeight: 10)?.fractionBits == 12)
        #expect(SecureWords32(bound: 0x1p18 + 1, totalWeight: 10) == nil)
        for bound in [0, -1, Double.nan, .infinity] { #expect(SecureWords32(bound: bound, totalWeight: 10) == nil) }
        for weight in [0, -3, Double.nan] { #expect(SecureWords32(bound: 1, totalWeight: weight) == nil) }
        #expect(try #require(SecureWords32(bound: 1_000, totalWeight: 10)).problem == nil)
        #expect(SecureWords32(fractionBits: 31, bound: 1, totalWeight: 10).problem != nil)
        #expect(SecureWords32(fractionBits: 20, bound: 1_025, totalWeight: 10).problem != nil)
        #expect(SecureWords32(fractionBits: 20, bound: 1_000, totalWeight: 0).problem != nil)
        #expect(SecureWords32(fractionBits: 20, bound: .nan, totalWeight: 10).problem != nil)
    }

    /// The configuration can keep the 64-bit ring, and refuses a word bound the ring cannot use, by value; a
    /// bound above the update-norm limit gives way to it.
    @Test func theConfigurationChoosesTheRing() throws {
        var c = SecureAggregationTests.configuration(secure: true)
        let declaring: Set<Int> = [0, 1]
        let descriptions = [40, 60].map { ClientDescription(models: ["a"], trainQueries: $0, trainableQueries: $0, observedCells: $0, featureDimension: 4) }
        let chosen = FederationCoordinator.words32(listed: [0, 1], declaring: declaring, descriptions: descriptions, configuration: c)
        #expect(chosen == SecureWords32(fractionBits: 27, bound: 8, totalWeight: 100))
        #expect(FederationCoordinator.words32(listed: [0, 1], declaring: [0], descriptions: descriptions, configuration: c) == nil)
        c.maxUpdateNorm = 2
        #expect(FederationCoordinator.words32(listed: [0, 1], declaring: declaring, descriptions: descriptions, configuration: c)?.fractionBits == 29)
        c.secureRing32 = false
        #expect(FederationCoordinator.words32(listed: [0, 1], declaring: declaring, descriptions: descriptions, configuration: c) == nil)
        c.secureRing32 = nil
        c.privacy = DifferentialPrivacy(clipNorm: 1, noiseMultiplier: 1, delta: 1e-5)
        #expect(FederationCoordinator.words32(listed: [0, 1], declaring: declaring, descriptions: descriptions, configuration: c) == nil)
        for bad in [0, -1, Double.nan, 0x1p19] {
            var b = SecureAggregationTests.configuration(secure: true)
            b.secureWordBound = bad
            #expect(throws: FederationError.self) { try b.validate(clients: 4) }
        }
    }

    /// Keys of three in-process clients for round 1.
    static func keys(_ clients: [InProcessClient]) async throws -> [SecureAggregationParticipant] {
        var keys: [SecureAggregationParticipant] = []
        for c in clients {
            guard case .secureAggregationKey(_, let k, let masks, _, let ring32) = try await c.handle(.secureAggregationKey(round: 1)) else {
                throw FederationError.notEnoughClients("no key")
            }
            #expect(ring32 == true)
            keys.append(SecureAggregationParticipant(id: c.id, publicKey: k, masks: masks))
        }
        return keys
    }

    /// Each client sends [r·Δ, r, r·loss] in 2^-20 fixed point mod 2^32, masked; the masks cancel in the sum, and the
    /// survivors' reveals remove a dropped client's.
    @Test func theMasksCancelInTheThirtyTwoBitRing() async throws {
        let (_, clients, _) = try await Fixture.federation(try Fixture.shards(sizes: [40, 40, 40]))
        let keys = try await Self.keys(clients)
        let encoding = try #require(SecureWords32(bound: 1_000, totalWeight: 40))
        let update = MLPUpdate(round: 1, delta: [Tensor(name: "w", shape: [4], values: [1, -2, 3, 4.5])], sampleCount: 10, meanLoss: 0.5)
        var masked: [[UInt32]] = []
        for c in clients {
            let u = try await c.maskedUpdate(update, participants: keys, uniformWeight: false, words32: encoding)
            #expect(u.values.isEmpty)
            masked.append(try #require(u.values32))
        }
        // r = 10 / 40 for each: the sum is 3 × (Δ/4, 1/4, 1/8).
        let sum = try SecureAggregation.unmaskedSum(masked: zip(clients.map(\.id), masked).map { ($0, $1) }, dropped: [], revealed: [:], participants: keys)
        #expect(sum.map(encoding.decode) == [0.75, -1.5, 2.25, 3.375, 0.75, 0.375])
        var revealed: [String: [String: Data]] = [:]
        for c in clients.prefix(2) {
            guard case .pairKeys(_, let k) = try await c.handle(.revealPairKeys(round: 1, dropped: ["c2"])) else { throw FederationError.notEnoughClients("") }
            revealed[c.id] = k
        }
        let partial = try SecureAggregation.unmaskedSum(masked: [("c0", masked[0]), ("c1", masked[1])], dropped: ["c2"], revealed: revealed, participants: keys)
        #expect(partial.map(encoding.decode) == [0.5, -1, 1.5, 2.25, 0.5, 0.25])
    }

    /// A client declines (a named error, so the coordinator drops it) an update or loss not under the bound, more
    /// samples than the round's total weight, parameters that could wrap the sum, and a 32-bit round under DP.
    @Test func aClientDeclinesWhatTheRingCannotHold() async throws {
        let (_, clients, _) = try await Fixture.federation(try Fixture.shards(sizes: [40, 40, 40]))
        let keys = try await Self.keys(clients)
        let update = MLPUpdate(round: 1, delta: [Tensor(name: "w", shape: [4], values: [1, -2, 3, 4.5])], sampleCount: 10, meanLoss: 0.5)
        func declines(_ u: MLPUpdate, _ e: SecureWords32, uniform: Bool = false, saying text: String) async {
            do {
                _ = try await clients[0].maskedUpdate(u, participants: keys, uniformWeight: uniform, words32: e)
                Issue.record("expected \(text)")
            } catch {
                #expect("\(error)".contains(text), "\(error)")
            }
        }
        await declines(update, SecureWords32(fractionBits: 28, bound: 4, totalWeight: 40), saying: "update value 4.5 at 3 in w")
        var lossy = update
        lossy.meanLoss = 1_200
        await declines(lossy, SecureWords32(fractionBits: 20, bound: 1_000, totalWeight: 40), saying: "loss 1200.0")
        await declines(update, SecureWords32(fractionBits: 20, bound: 1_000, totalWeight: 9), saying: "more than the round's total weight")
        await declines(update, SecureWords32(fractionBits: 21, bound: 1_000, totalWeight: 40), saying: "does not fit 32-bit words")
        await declines(update, SecureWords32(fractionBits: 20, bound: 1_000, totalWeight: 40), uniform: true, saying: "differential privacy")
        // A client with no samples sends zeros whatever its update.
        var empty = update
        empty.sampleCount = 0
        empty.delta[0].values = [5_000, 0, 0, 0]
        let u = try await clients[1].maskedUpdate(empty, participants: keys, uniformWeight: false, words32: SecureWords32(fractionBits: 20, bound: 1_000, totalWeight: 40))
        #expect(u.values32?.count == 6)
    }

    /// A federation trained in the 32-bit ring (the default bound 8: 2^-28 a word) is within its precision of the
    /// 64-bit ring's, but not bit for bit: the words did change. A bound of 1,000 (2^-21 a word) moves it further.
    @Test func theRouterIsWithinTheRingsPrecisionOfTheSixtyFourBitOne() async throws {
        let tables = try Fixture.shards(sizes: [120, 80, 60, 40])
        func train(ring32: Bool, bound: Double? = nil) async throws -> (MLPRouter, [RoundReport]) {
            let (coordinator, _, _) = try await Fixture.federation(tables, policies: tables.map { _ in ClientPolicy(ring32: ring32) })
            var configuration = SecureAggregationTests.configuration(secure: true)
            configuration.secureWordBound = bound
            return try await coordinator.trainMLP(configuration)
        }
        func largestDifference(_ a: MLPRouter, _ b: MLPRouter) -> Float {
            zip(a.network.parameters, b.network.parameters).map { x, y in zip(x.values, y.values).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
        }
        let (narrow, narrowRounds) = try await train(ring32: true)
        let (wide, wideRounds) = try await train(ring32: false)
        let (coarse, coarseRounds) = try await train(ring32: true, bound: 1_000)
        #expect(narrowRounds.allSatisfy { $0.secureAggregation?.wordBits == 32 && $0.secureAggregation?.fractionBits == 27 && $0.aggregated.count == 4 })
        #expect(coarseRounds.allSatisfy { $0.secureAggregation?.fractionBits == 20 })
        #expect(wideRounds.allSatisfy { $0.secureAggregation?.wordBits == 64 })
        #expect(narrowRounds.map(\.samples) == wideRounds.map(\.samples))
        for (a, b) in zip(narrowRounds, wideRounds) { #expect(abs((a.meanLoss ?? 0) - (b.meanLoss ?? 0)) < 1e-6) }
        let (fine, rough) = (largestDifference(narrow, wide), largestDifference(coarse, wide))
        #expect(fine > 0 && fine < 1e-6, "largest difference \(fine)")
        #expect(rough > fine, "largest difference at 2^-21 \(rough), at 2^-28 \(fine)")
    }

    /// The round reports of a secure federation of `members` (the shared encoder fitted first).
    static func secureRounds(_ members: [any FederatedClient]) async throws -> [RoundReport] {
        let coordinator = try FederationCoordinator(clients: members)
        let encoder = try await coordinator.fitHashedEncoder(Fixture.encoderConfiguration)
        _ = try await coordinator.useEncoder(.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf))
        return try await coordinator.trainMLP(SecureAggregationTests.configuration(secure: true)).1
    }

    /// A client that described fewer samples than it trains on weighs its update by more than its share: the
    /// weights then sum past the listed clients' whole, which could have wrapped the words, and the round is
    /// dropped by name rather than applied.
    @Test func weightsSummingPastTheWholeDropTheRound() async throws {
        let tables = try Fixture.shards(sizes: [120, 80, 60, 40])
        let (_, clients, _) = try await Fixture.federation(tables)
        let members: [any FederatedClient] = [UnderstatingClient(inner: clients[0]), clients[1], clients[2], clients[3]]
        let rounds = try await Self.secureRounds(members)
        #expect(rounds.allSatisfy { $0.aggregated.isEmpty && $0.rejected["(round)"]?.contains("more than all of them") == true })
    }

    /// A 64-bit vector in a 32-bit round is refused by name; its sender counts as dropped and the survivors remove
    /// its masks, as for a client that died.
    @Test func aVectorInTheWrongRingIsRefusedAndItsSenderDropped() async throws {
        let tables = try Fixture.shards(sizes: [120, 80, 60, 40])
        let (_, clients, _) = try await Fixture.federation(tables)
        let members: [any FederatedClient] = [clients[0], clients[1], WideningClient(inner: clients[2]), clients[3]]
        let rounds = try await Self.secureRounds(members)
        for round in rounds {
            #expect(round.rejected["c2"]?.contains("64-bit words, expected round \(round.round) and") == true)
            #expect(round.secureAggregation?.dropped == ["c2"] && round.aggregated == ["c0", "c1", "c3"])
        }
    }

    /// A 32-bit masked update crosses the wire as a blob of 32-bit words (or base64 of them in JSON), bit-exact.
    @Test func thirtyTwoBitWordsRoundTrip() throws {
        let update = MaskedUpdate(round: 4, values32: [0, 1, .max, 0x8000_0000, 1_234_567_890])
        let frame = try TensorFrames.encode(update, with: FederationCoding.encoder())
        #expect(try TensorFrames.decode(MaskedUpdate.self, from: frame, with: FederationCoding.decoder()) == update)
        #expect(Array(frame.suffix(20)) == update.values32!.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } })
        let json = try JSONEncoder().encode(update)
        #expect(try JSONDecoder().decode(MaskedUpdate.self, from: json) == update)
        let odd = Data(#"{"round":1,"values32":"\#(Data([1, 2, 3]).base64EncodedString())"}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MaskedUpdate.self, from: odd) }
    }
}
