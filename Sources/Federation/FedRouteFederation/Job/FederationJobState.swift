import FedRouteRouters

/// What a job keeps on disk to resume: written atomically after setup, every round and every family.
public struct FederationJobState: Sendable, Codable {
    public struct Setup: Sendable, Codable {
        public var encoder: EncoderSpec
        public var descriptions: [ClientDescription]
        public var normalizer: CostNormalizer
    }

    public var setup: Setup?
    public var mlp: MLPTrainingState?
    /// The MF-Router's rounds (absent in checkpoints written before it).
    public var mf: MLPTrainingState?
    public var finishedFamilies: [String] = []
    /// The transport's replay state (last nonce accepted from each client), so a restart does not reopen replays.
    public var nonces: [String: UInt64] = [:]
    public var restarts = 0
    /// Per completed round: wire bytes in/out and seconds.
    public var roundTraffic: [RoundTraffic] = []
    /// Per completed MF-Router round, likewise.
    public var mfRoundTraffic: [RoundTraffic]?
    public var validationAUC: [String: Double] = [:]
    /// Per finished family with a safety gate: its fallback bands (absent in checkpoints before gates).
    public var safetyFallbackBands: [String: Int]?

    public init() {}

    /// Checks what a resumed job relies on, so that a tampered or damaged checkpoint is refused with
    /// its reason instead of trapping or silently starting a family over (and overwriting the file).
    public func validate() throws(FederationError) {
        guard restarts >= 0 else { throw .checkpoint("restarts is \(restarts)") }
        for f in finishedFamilies where RouterFamily(rawValue: f) == nil { throw .checkpoint("finished family '\(f)' is not a router family") }
        guard Set(finishedFamilies).count == finishedFamilies.count else { throw .checkpoint("finished families \(finishedFamilies) repeat") }
        if setup == nil, mlp != nil || !finishedFamilies.isEmpty || !roundTraffic.isEmpty {
            throw .checkpoint("it records training but no setup (encoder, descriptions, cost normaliser)")
        }
        if let setup {
            guard let first = setup.descriptions.first, setup.descriptions.allSatisfy({ $0.models == first.models }), !first.models.isEmpty else {
                throw .checkpoint("its setup holds no client descriptions or descriptions with different models")
            }
            if let problem = setup.normalizer.problem(models: first.models.count) {
                throw .checkpoint("its cost normaliser does not fit \(first.models.count) models: \(problem)")
            }
        }
        // Every completed MLP round leaves a traffic record and the MLP state; a missing `mlp` with
        // rounds recorded (or the MLP family finished) is damage, not a fresh start.
        let rounds = mlp?.completedRounds ?? 0
        guard rounds >= 0 else { throw .checkpoint("completedRounds is \(rounds)") }
        if mlp == nil, !roundTraffic.isEmpty || finishedFamilies.contains(RouterFamily.mlp.rawValue) {
            throw .checkpoint("it records \(roundTraffic.count) MLP rounds\(finishedFamilies.contains(RouterFamily.mlp.rawValue) ? " and a finished MLP family" : "") but holds no MLP state (the 'mlp' key is missing)")
        }
        guard roundTraffic.count == rounds, roundTraffic.map(\.round) == Array(stride(from: 1, through: rounds, by: 1)) else {
            throw .checkpoint("it records \(rounds) completed MLP rounds but traffic for rounds \(roundTraffic.map(\.round))")
        }
        let mfRounds = mf?.completedRounds ?? 0
        let mfTraffic = mfRoundTraffic ?? []
        guard mfRounds >= 0 else { throw .checkpoint("mf.completedRounds is \(mfRounds)") }
        if mf == nil, !mfTraffic.isEmpty || finishedFamilies.contains(RouterFamily.mf.rawValue) {
            throw .checkpoint("it records \(mfTraffic.count) MF rounds\(finishedFamilies.contains(RouterFamily.mf.rawValue) ? " and a finished MF family" : "") but holds no MF state (the 'mf' key is missing)")
        }
        if setup == nil, mf != nil { throw .checkpoint("it records MF training but no setup") }
        guard mfTraffic.count == mfRounds, mfTraffic.map(\.round) == Array(stride(from: 1, through: mfRounds, by: 1)) else {
            throw .checkpoint("it records \(mfRounds) completed MF rounds but traffic for rounds \(mfTraffic.map(\.round))")
        }
    }
}

/// One completed round's traffic, time and validation AUC.
public struct RoundTraffic: Sendable, Codable, Equatable {
    public var round: Int
    public var bytesIn: Int
    public var bytesOut: Int
    public var seconds: Double
    /// The process's CPU seconds over the round, all threads (`ProcessCPUTime`); absent in checkpoints written
    /// before stop 50.
    public var cpuSeconds: Double?
    public var validationAUC: Double?

    public init(round: Int, bytesIn: Int, bytesOut: Int, seconds: Double, cpuSeconds: Double? = nil, validationAUC: Double? = nil) {
        self.round = round
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.seconds = seconds
        self.cpuSeconds = cpuSeconds
        self.validationAUC = validationAUC
    }
}
