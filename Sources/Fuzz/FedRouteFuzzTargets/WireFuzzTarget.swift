import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteNumerics
import FedRouteRouters
import Foundation

/// The federation's wire messages, decoded with the wire decoder as the coordinator (join, reply)
/// and the clients (join answer, poll answer) decode them; then what each side checks next: the
/// coordinator screens a model update against the round's parameters, a client builds the network
/// a training task describes.
enum WireFuzzTarget {
    static func run(_ input: Data) {
        // Tensor frames (binary bodies) go through the same decoders once their header is read.
        if TensorFrames.isFrame(input) {
            _ = try? Wire.decode(PollResponse.self, from: input, codecs: FrameCompression.readable)
            _ = try? Wire.decode(ReplyEnvelope.self, from: input, codecs: FrameCompression.readable)
            return
        }
        let decoder = Wire.decoder()
        _ = try? decoder.decode(JoinRequest.self, from: input)
        _ = try? decoder.decode(JoinResponse.self, from: input)
        _ = try? decoder.decode(WireError.self, from: input)
        if let poll = try? decoder.decode(PollResponse.self, from: input), case .trainMLP(let task)? = poll.task?.request {
            if (try? task.architecture.validate()) != nil {
                _ = try? MLPNetwork(architecture: task.architecture, parameters: task.parameters)
            }
        }
        // A validation task: the client rebuilds (and so checks) the candidate router.
        if let poll = try? decoder.decode(PollResponse.self, from: input), case .validate(let task)? = poll.task?.request {
            _ = try? task.candidate.router(models: ["a", "b"])
        }
        if let envelope = try? decoder.decode(ReplyEnvelope.self, from: input) {
            switch envelope.reply {
            case .mlpUpdate(let update)?: _ = FederationCoordinator.problem(with: update, round: 1, parameters: parameters, maxSamples: 1000, maxNorm: 100)
            case .validation(let statistics)?: _ = statistics.problem(bands: 2, maxQueries: 1000)
            default: break
            }
        }
        _ = try? decoder.decode(FederatedReply.self, from: input)
        _ = try? decoder.decode(FederatedRequest.self, from: input)
    }

    /// The round's parameters updates are screened against: the seeds' small network.
    static let architecture = MLPArchitecture(inputDimension: 4, hiddenDimension: 3, trunkLayers: 1, modelCount: 2, dropout: 0)
    static let parameters = MLPNetwork(architecture: architecture, seed: 1).parameters

    /// One of each message as fedroute writes it.
    static func seeds() throws -> [FuzzSeed] {
        let encoder = Wire.encoder()
        let delta = parameters.map { Tensor(name: $0.name, shape: $0.shape, values: $0.values.map { $0 * 0.01 }) }
        let task = MLPRoundTask(round: 1, architecture: architecture, parameters: parameters,
                                costNormalizer: CostNormalizer(mean: [0, 0], std: [1, 1]), settings: LocalTrainingSettings(), seed: 9)
        func encoded(_ value: some Encodable) throws -> Data { try encoder.encode(value) }
        let messages: [(String, Data)] = try [
            ("join.json", encoded(JoinRequest())),
            ("join-response.json", encoded(JoinResponse(federation: "f", session: "s-1"))),
            ("poll-describe.json", encoded(PollResponse(task: TaskEnvelope(taskID: "t1", request: .describe, deadlineSeconds: 30), finished: false))),
            ("poll-train.json", encoded(PollResponse(task: TaskEnvelope(taskID: "t2", request: .trainMLP(task), deadlineSeconds: 30), finished: false))),
            ("poll-finished.json", encoded(PollResponse(task: nil, finished: true, routers: ["mlp": Data([1, 2, 3])], fineTuning: LocalTrainingSettings()))),
            ("reply-update.json", encoded(ReplyEnvelope(taskID: "t2", reply: .mlpUpdate(MLPUpdate(round: 1, delta: delta, sampleCount: 20, meanLoss: 0.5))))),
            ("poll-validate.json", encoded(PollResponse(task: TaskEnvelope(taskID: "t4", request: .validate(ValidationTask(
                candidate: .network(architecture: architecture, parameters: parameters, costNormalizer: CostNormalizer(mean: [0, 0], std: [1, 1])),
                bands: ValidationBands(lambdas: [1, 10], fallback: [0, 1]))), deadlineSeconds: 30), finished: false))),
            ("reply-validation.json", encoded(ReplyEnvelope(taskID: "t4", reply: .validation({
                var s = ValidationStatistics(bands: 2)
                s.cells = 12; s.queries = 10; s.squaredScoreError = 2.5; s.differenceSum = [0.4, -0.1]; s.differenceSquares = [1.2, 0.3]
                return s
            }())))),
            ("reply-description.json", encoded(ReplyEnvelope(taskID: "t1", reply: .description(ClientDescription(
                models: ["a", "b"], trainQueries: 20, trainableQueries: 18, observedCells: 30, featureDimension: 4))))),
            ("reply-error.json", encoded(ReplyEnvelope(taskID: "t3", error: "no data"))),
            ("error.json", encoded(WireError("unknown client", status: 401))),
        ]
        let frames: [(String, Data)] = try [
            ("poll-train.frame", TensorFrames.encode(PollResponse(task: TaskEnvelope(taskID: "t2", request: .trainMLP(task), deadlineSeconds: 30), finished: false),
                                                     with: encoder)),
            ("reply-update.frame", TensorFrames.encode(ReplyEnvelope(taskID: "t2", reply: .mlpUpdate(MLPUpdate(round: 1, delta: delta, sampleCount: 20, meanLoss: 0.5))),
                                                       with: encoder)),
        ]
        // A compressed frame (arrays of at least 16 KiB are compressed).
        let wide = Tensor(name: "w", shape: [64, 80], values: (0..<5120).map { Float(sin(Double($0))) * 0.01 })
        let coded = try TensorFrames.encode(ReplyEnvelope(taskID: "t2", reply: .mlpUpdate(MLPUpdate(round: 1, delta: [wide], sampleCount: 20, meanLoss: 0.5))),
                                            with: encoder, options: .init(codec: ShuffleDeflateCodec()))
        return (messages + frames + [("reply-update-compressed.frame", coded)]).map { FuzzSeed(name: $0.0, data: $0.1) }
    }
}
