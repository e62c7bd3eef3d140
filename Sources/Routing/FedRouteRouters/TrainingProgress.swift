/// Training progress reported to a caller (the CLI draws a bar from it).
public struct TrainingProgress: Sendable {
    public var stage: String
    public var step: Int
    public var total: Int
    public var loss: Double?

    public init(stage: String, step: Int, total: Int, loss: Double? = nil) {
        self.stage = stage
        self.step = step
        self.total = total
        self.loss = loss
    }
}

public typealias ProgressHandler = @Sendable (TrainingProgress) -> Void
