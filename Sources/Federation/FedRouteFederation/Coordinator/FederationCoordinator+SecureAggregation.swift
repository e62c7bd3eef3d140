import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation

extension FederationCoordinator {
    /// A secure-aggregation round: keys → masked updates → pair keys of dropped clients → the sum.
    /// The coordinator never holds one client's update in the clear, only the masked vectors and the total.
    ///
    /// When every sampled client is asked at once (a network federation), a client whose description says
    /// `trainsWithKey` gets the round's task with the key request: it trains while the keys come in, and is
    /// then asked to mask its update (`maskUpdate`) instead of being sent the model a second time. The update
    /// is the one `trainMLP` would give (same task, same seed); only the key exchange no longer comes first.
    func secureRound(_ round: Int, sampled: [Int], parameters: [Tensor], configuration: FederatedMLPConfiguration, perRound: Int,
                     descriptions: [ClientDescription], task: (Int, [SecureAggregationParticipant]?) -> MLPRoundTask) async throws -> RoundOutcome {
        var report = RoundReport(round: round, sampled: sampled.map { clients[$0].id }, aggregated: [], rejected: [:], meanLoss: nil, samples: 0)
        let needed = max(2, configuration.minimumClients)
        // 1. Fresh public keys.
        var listed: [(index: Int, participant: SecureAggregationParticipant)] = []
        // With fewer requests at once than clients sampled, training with the key would run more clients at
        // once than `trainMLP` does (the simulation's memory bound); there it waits for the list as before.
        let early = maxConcurrentRequests >= sampled.count
            ? Dictionary(uniqueKeysWithValues: sampled.filter { descriptions.indices.contains($0) && descriptions[$0].trainsWithKey == true }.map { ($0, task($0, nil)) })
            : [:]
        var training: Set<Int> = []
        var ring32: Set<Int> = []
        for (i, result) in await ask(sampled, { .secureAggregationKey(round: round, train: early[$0]) }) {
            let id = clients[i].id
            switch result {
            case .success(.secureAggregationKey(let r, let key, let masks, let started, let words32)) where r == round && key.count == 32:
                if started == true {
                    guard early[i] != nil else {
                        report.rejected[id] = "says it started training in round \(round), but was sent no task with its key"
                        continue
                    }
                    training.insert(i)
                }
                if words32 == true { ring32.insert(i) }
                // Only the generators this coordinator knows are relayed: every client then decides each
                // pair's generator from the same list (see `SecureAggregationParticipant.maskGenerator`).
                let known = masks.map { m in MaskGenerator.allCases.map(\.rawValue).filter { m.contains($0) } }
                listed.append((i, SecureAggregationParticipant(id: id, publicKey: key, masks: known)))
            case .success(let reply): report.rejected[id] = "expected a 32-byte key for round \(round), got \(reply.kind)"
            case .failure(let error): report.rejected[id] = "\(error)"
            }
        }
        let participants = listed.map(\.participant)
        let words32 = Self.words32(listed: listed.map(\.index), declaring: ring32, descriptions: descriptions, configuration: configuration)
        let generators = Set(participants.flatMap { p in participants.filter { $0.id != p.id }.map { p.maskGenerator(with: $0).rawValue } })
        report.secureAggregation = SecureAggregationReport(listed: participants.map(\.id), dropped: [], revealedBy: [], maskGenerators: generators.sorted(),
                                                           trainedWithKey: listed.filter { training.contains($0.index) }.map(\.participant.id),
                                                           wordBits: words32 == nil ? 64 : 32, fractionBits: words32?.fractionBits)
        guard listed.count >= needed else {
            report.rejected["(round)"] = "only \(listed.count) clients sent keys, secure aggregation needs \(needed)"
            return RoundOutcome(average: nil, report: report)
        }
        // 2. Masked updates.
        let width = parameters.reduce(2) { $0 + $1.count }
        let tasks = Dictionary(uniqueKeysWithValues: listed.filter { !training.contains($0.index) }.map { entry in
            var t = task(entry.index, participants)
            t.secureWords32 = words32
            return (entry.index, t)
        })
        // Each masked vector is folded into the sum as it comes in (in client order), as a plain round folds its
        // updates: the coordinator holds one vector of `width` words, not one per sampled client.
        var sum: [UInt64] = [], sum32: [UInt32] = []
        var masked: [(index: Int, id: String)] = []
        let ring = words32 == nil ? "64-bit" : "32-bit"
        await ask(listed.map(\.index), { i in tasks[i].map { .trainMLP($0) } ?? .maskUpdate(round: round, participants: participants, words32: words32) }) { i, result in
            let id = clients[i].id
            switch result {
            case .success(.maskedUpdate(let u)) where u.round == round && words32 == nil && u.values32 == nil && u.values.count == width:
                if masked.isEmpty { sum = u.values } else { SecureAggregation.accumulate(u.values, into: &sum) }
                masked.append((i, id))
            case .success(.maskedUpdate(let u)) where u.round == round && words32 != nil && u.values32?.count == width:
                let v = u.values32 ?? []
                if masked.isEmpty { sum32 = v } else { SecureAggregation.accumulate(v, into: &sum32) }
                masked.append((i, id))
            case .success(.maskedUpdate(let u)):
                report.rejected[id] = "masked update for round \(u.round) with \(u.wordCount) \(u.values32 == nil ? "64" : "32")-bit words, expected round \(round) and \(width) \(ring) words"
            case .success(let reply): report.rejected[id] = "unexpected reply \(reply.kind)"
            case .failure(let error): report.rejected[id] = "\(error)"
            }
        }
        let dropped = participants.map(\.id).filter { id in !masked.contains { $0.id == id } }
        report.secureAggregation?.dropped = dropped
        guard masked.count >= needed else {
            report.rejected["(round)"] = "only \(masked.count) masked updates arrived, secure aggregation needs \(needed)"
            return RoundOutcome(average: nil, report: report)
        }
        // 3. Survivors reveal their pair keys with the dropped clients; nobody else's.
        var revealed: [String: [String: Data]] = [:]
        if !dropped.isEmpty {
            for (i, result) in await ask(masked.map(\.index), { _ in .revealPairKeys(round: round, dropped: dropped) }) {
                let id = clients[i].id
                switch result {
                case .success(.pairKeys(let r, let keys)) where r == round && Set(keys.keys) == Set(dropped) && keys.values.allSatisfy({ $0.count == 32 }):
                    revealed[id] = keys
                case .success(let reply): report.rejected[id] = "expected pair keys for \(dropped), got \(reply.kind)"
                case .failure(let error): report.rejected[id] = "\(error)"
                }
            }
            report.secureAggregation?.revealedBy = revealed.keys.sorted()
            guard revealed.count == masked.count else {
                report.rejected["(round)"] = "a survivor did not reveal its pair keys; the sum cannot be unmasked and the round is dropped"
                return RoundOutcome(average: nil, report: report)
            }
        }
        let survivors = masked.map(\.id)
        // The weight word's sum: Σ w (samples) in the 64-bit ring, Σ r (the survivors' share of W) in the 32-bit one.
        let totalWeight: Double, lossSum: Double, scale: Double
        if let words32 {
            try SecureAggregation.removeDanglingMasks(from: &sum32, survivors: survivors, dropped: dropped, revealed: revealed, participants: participants)
            (totalWeight, lossSum, scale) = (words32.decode(sum32[width - 2]), words32.decode(sum32[width - 1]), words32.scale)
            // Σ r over the survivors is at most 1 (plus each client's rounding) when every client weighed by its
            // described samples; more, and the words may have wrapped.
            guard totalWeight <= 1 + Double(masked.count) / scale else {
                report.rejected["(round)"] = "the 32-bit round's weights sum to \(totalWeight) of the listed clients' described samples, more than all of them; dropped"
                return RoundOutcome(average: nil, report: report)
            }
        } else {
            try SecureAggregation.removeDanglingMasks(from: &sum, survivors: survivors, dropped: dropped, revealed: revealed, participants: participants)
            (totalWeight, lossSum, scale) = (FixedPoint.decode(sum[width - 2]), FixedPoint.decode(sum[width - 1]), FixedPoint.scale)
        }
        guard totalWeight > 0 else {
            report.rejected["(round)"] = "the aggregate carries no training samples"
            return RoundOutcome(average: nil, report: report)
        }
        let denominator = configuration.privacy == nil ? totalWeight : Double(perRound)
        var average: [[Float]] = []
        var offset = 0
        var squared = 0.0
        for p in parameters {
            average.append(words32 == nil
                ? FixedPoint.decode(sum[offset..<(offset + p.count)], scale: scale, dividedBy: denominator)
                : FixedPoint.decode(sum32[offset..<(offset + p.count)], scale: scale, dividedBy: denominator))
            squared += average.last!.withUnsafeBufferPointer(VectorMath.sumOfSquares)
            offset += p.count
        }
        // Individual norms are hidden; the mean update is checked instead.
        guard squared.squareRoot() <= configuration.maxUpdateNorm else {
            report.rejected["(round)"] = "the aggregate update has norm \(squared.squareRoot()) > \(configuration.maxUpdateNorm); dropped"
            return RoundOutcome(average: nil, report: report)
        }
        report.aggregated = masked.map(\.id)
        report.meanLoss = lossSum / totalWeight
        // A 32-bit round's Σ r is rounded; the samples are the survivors' described ones, which they weighed by.
        report.samples = configuration.privacy != nil ? 0
            : words32 == nil ? Int(totalWeight.rounded()) : masked.reduce(0) { sum, m in
                let (s, overflow) = sum.addingReportingOverflow(descriptions[m.index].trainableQueries)
                return overflow ? Int.max : s
            }
        return RoundOutcome(average: average, report: report)
    }

    /// The 32-bit ring's encoding for a round, or nil to keep the 64-bit ring: a round without differential privacy
    /// (its noise has no bound), in a configuration that allows the ring, whose listed clients all declared it and
    /// all described their samples (W, their sum, is what each weighs its update against). The bound is the
    /// configured word bound, or the update-norm limit if smaller (it bounds every coordinate of an accepted update).
    static func words32(listed: [Int], declaring: Set<Int>, descriptions: [ClientDescription],
                        configuration: FederatedMLPConfiguration) -> SecureWords32? {
        guard configuration.privacy == nil, configuration.secureRing32 != false,
              listed.allSatisfy({ declaring.contains($0) && descriptions.indices.contains($0) }) else { return nil }
        // Each count is at most 2^40 (checked at `describe`); summed as Double, no client count can overflow it.
        let total = listed.reduce(0.0) { $0 + Double(descriptions[$1].trainableQueries) }
        let bound = min(configuration.secureWordBound ?? SecureWords32.defaultBound, configuration.maxUpdateNorm)
        return SecureWords32(bound: bound, totalWeight: total)
    }
}
