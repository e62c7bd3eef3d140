/// What happened in one FedAvg round.
public struct RoundReport: Sendable, Codable, Equatable {
    public var round: Int
    public var sampled: [String]
    /// Clients whose update entered the average.
    public var aggregated: [String]
    /// Client id → why its reply was dropped (error, invalid update).
    public var rejected: [String: String]
    /// Sample-weighted mean of the clients' local training losses.
    public var meanLoss: Double?
    public var samples: Int
    /// Privacy spent so far, under DP-FedAvg.
    public var privacy: PrivacyReport?
    /// Who took part in secure aggregation, under it.
    public var secureAggregation: SecureAggregationReport?
    /// With best-round selection: the global model's Brier score on the clients' held-out rows
    /// after this round, and over how many validation cells.
    public var validationBrier: Double?
    public var validationCells: Double?
}

/// The secure-aggregation side of a round.
public struct SecureAggregationReport: Sendable, Codable, Equatable {
    /// Clients that sent a key and were told to mask for each other.
    public var listed: [String]
    /// Listed clients whose masked update never arrived.
    public var dropped: [String]
    /// Survivors that revealed their pair keys with the dropped clients.
    public var revealedBy: [String]
    /// The generators the listed pairs expanded their masks with (`MaskGenerator` names; nil in
    /// reports from before the field).
    public var maskGenerators: [String]?
    /// Listed clients that trained on the task sent with their key request and were asked to mask the result
    /// (`FederatedRequest.maskUpdate`) instead of being sent the model again (nil in reports from before the field).
    public var trainedWithKey: [String]?
    /// The ring's word size: 32 when the round was encoded by `SecureWords32`, 64 otherwise (nil in reports from
    /// before the field: 64).
    public var wordBits: Int?
    /// The fraction bits of a 32-bit round's fixed point (nil in a 64-bit round, whose fixed point is 2^-24).
    public var fractionBits: Int?

    public init(listed: [String], dropped: [String], revealedBy: [String], maskGenerators: [String]? = nil, trainedWithKey: [String]? = nil,
                wordBits: Int? = nil, fractionBits: Int? = nil) {
        self.trainedWithKey = trainedWithKey
        self.wordBits = wordBits
        self.fractionBits = fractionBits
        self.listed = listed
        self.dropped = dropped
        self.revealedBy = revealedBy
        self.maskGenerators = maskGenerators
    }
}

/// A round's result: the mean delta to apply (nil = the round is skipped) and its report.
struct RoundOutcome {
    var average: [[Float]]?
    var report: RoundReport
}
