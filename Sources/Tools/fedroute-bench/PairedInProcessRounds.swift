import FedRouteFederation
import FedRouteRouters

/// How the network bench times each network round's in-process peer.
enum NetworkPairing: String, CaseIterable {
    /// Each network round next to the same round in process, run just before its clock starts (the same
    /// sampled clients with the same seeds): a machine that slows down for a second moves both sides of the pair.
    case rounds
    /// Each run's in-process rounds before and after all of its transports (the bench before stop 50): the
    /// network rounds run back to back, seconds away from their peer.
    case runs
}

/// The in-process peer of a network job, one round at a time: `run(round:)` runs the coordinator's round
/// `round` from the state the previous call left, so that round k here samples the same clients, with the same
/// seeds, as the network job's round k. Timed as `InProcessRounds` times rounds (from `beforeRound` to `checkpoint`).
actor PairedInProcessRounds {
    let coordinator: FederationCoordinator
    let configuration: FederatedMLPConfiguration
    let initial: MLPRouter
    let descriptions: [ClientDescription]
    private var state: MLPTrainingState?
    /// Seconds of each round run so far, in order.
    private(set) var seconds: [Double] = []
    /// The process's CPU seconds over each round (`ProcessCPUTime`), in order.
    private(set) var cpuSeconds: [Double] = []

    /// Describes the clients and builds the untrained router, as `trainMLP` does before its first round.
    init(_ coordinator: FederationCoordinator, _ configuration: FederatedMLPConfiguration) async throws {
        let descriptions = try await coordinator.describe()
        guard let dimension = descriptions[0].featureDimension else {
            throw FederationError.invalidConfiguration("the in-process clients have no features (send useEncoder first)")
        }
        let normalizer = try await coordinator.costNormalizer(models: descriptions[0].models.count)
        self.coordinator = coordinator
        self.configuration = configuration
        self.descriptions = descriptions
        initial = try FederationCoordinator.initialMLP(configuration, models: descriptions[0].models, featureDimension: dimension, normalizer: normalizer)
    }

    /// Runs round `round`, which must be the one after the last round run here.
    func run(round: Int) async throws {
        guard round == (state?.completedRounds ?? 0) + 1 else {
            throw FederationError.invalidConfiguration("paired in-process round \(round) asked for after round \(state?.completedRounds ?? 0)")
        }
        var c = configuration
        c.rounds = round
        let clock = InProcessRounds()
        _ = try await coordinator.continueMLP(initial, c, descriptions: descriptions, resume: state,
                                              beforeRound: { _ in await clock.start() },
                                              checkpoint: { s in
                                                  await clock.stop()
                                                  await self.keep(s)
                                              })
        seconds.append(Double(await clock.total) / 1e9)
        cpuSeconds.append(await clock.cpuTotal)
    }

    private func keep(_ s: MLPTrainingState) { state = s }
}
