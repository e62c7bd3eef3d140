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
        for (i, result) in await ask(sampled, { .secureAggregationKey(round: round, train: early[$0]) }) {
            let id = clients[i].id
            switch result {
            case .success(.secureAggregationKey(let r, let key, let masks, let started)) where r == round && key.count == 32:
                if started == true {
                    guard early[i] != nil else {
                        report.rejected[id] = "says it started training in round \(round), but was sent no task with its key"
                        continue
                    }
                    training.insert(i)
                }
                // Only the generators this coordinator knows are relayed: every client then decides each
                // pair's generator from the same list (see `SecureAggregationParticipant.maskGenerator`).
                let known = masks.map { m in MaskGenerator.allCases.map(\.rawValue).filter { m.contains($0) } }
                listed.append((i, SecureAggregationParticipant(id: id, publicKey: key, masks: known)))
            case .success(let reply): report.rejected[id] = "expected a 32-byte key for round \(round), got \(reply.kind)"
            case .failure(let error): report.rejected[id] = "\(error)"
            }
        }
        let participants = listed.map(\.participant)
        let generators = Set(participants.flatMap { p in participants.filter { $0.id != p.id }.map { p.maskGenerator(with: $0).rawValue } })
        report.secureAggregation = SecureAggregationReport(listed: participants.map(\.id), dropped: [], revealedBy: [], maskGenerators: generators.sorted(),
                                                           trainedWithKey: listed.filter { training.contains($0.index) }.map(\.participant.id))
        guard listed.count >= needed else {
            report.rejected["(round)"] = "only \(listed.count) clients sent keys, secure aggregation needs \(needed)"
            return RoundOutcome(average: nil, report: report)
        }
        // 2. Masked updates.
        let width = parameters.reduce(2) { $0 + $1.count }
        let tasks = Dictionary(uniqueKeysWithValues: listed.filter { !training.contains($0.index) }.map { ($0.index, task($0.index, participants)) })
        // Each masked vector is folded into the sum as it comes in (in client order), as a plain round folds its
        // updates: the coordinator holds one vector of `width` words, not one per sampled client.
        var sum: [UInt64] = []
        var masked: [(index: Int, id: String)] = []
        await ask(listed.map(\.index), { i in tasks[i].map { .trainMLP($0) } ?? .maskUpdate(round: round, participants: participants) }) { i, result in
            let id = clients[i].id
            switch result {
            case .success(.maskedUpdate(let u)) where u.round == round && u.values.count == width:
                if masked.isEmpty { sum = u.values } else { SecureAggregation.accumulate(u.values, into: &sum) }
                masked.append((i, id))
            case .success(.maskedUpdate(let u)): report.rejected[id] = "masked update for round \(u.round) with \(u.values.count) values, expected round \(round) and \(width)"
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
        try SecureAggregation.removeDanglingMasks(from: &sum, survivors: masked.map(\.id), dropped: dropped, revealed: revealed,
                                                  participants: participants)
        let totalWeight = FixedPoint.decode(sum[width - 2])
        let lossSum = FixedPoint.decode(sum[width - 1])
        guard totalWeight > 0 else {
            report.rejected["(round)"] = "the aggregate carries no training samples"
            return RoundOutcome(average: nil, report: report)
        }
        let denominator = configuration.privacy == nil ? totalWeight : Double(perRound)
        var average: [[Float]] = []
        var offset = 0
        var squared = 0.0
        for p in parameters {
            average.append(FixedPoint.decode(sum[offset..<(offset + p.count)], dividedBy: denominator))
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
        report.samples = configuration.privacy == nil ? Int(totalWeight.rounded()) : 0
        return RoundOutcome(average: average, report: report)
    }
}
