import FedRouteNumerics
import Foundation

/// PPO settings for the multi-round policy (clipped surrogate, GAE, entropy bonus).
public struct PPOConfiguration: Sendable, Codable, Equatable {
    /// Weight of the cost term in the reward, α ∈ [0, 1].
    public var alpha = 0.5
    public var iterations = 120
    public var episodesPerIteration = 512
    public var epochs = 4
    public var minibatchSize = 256
    public var learningRate: Float = 1e-3
    public var clip: Float = 0.2
    public var gamma: Float = 1
    public var gaeLambda: Float = 0.95
    public var entropyCoefficient: Float = 0.01
    public var valueCoefficient: Float = 0.5
    public var maxGradientNorm: Float = 1
    public var hidden = 64
    public var candidateHidden = 32
    public var valueHidden = 64
    /// Trajectories in the reward's cost-percentile window.
    public var costWindow = 1000
    public var seed: UInt64 = 0

    public init() {}

    func validate() throws {
        guard (0...1).contains(alpha) else { throw MultiRoundError("α = \(alpha); it must lie in [0, 1]") }
        guard iterations >= 1, episodesPerIteration >= 1, epochs >= 1, minibatchSize >= 1 else {
            throw MultiRoundError("iterations, episodes per iteration, epochs and minibatch size must be at least 1")
        }
        guard learningRate > 0, clip > 0, (0...1).contains(gamma), (0...1).contains(gaeLambda), entropyCoefficient >= 0, valueCoefficient >= 0 else {
            throw MultiRoundError("PPO needs a positive learning rate and clip, γ and λ in [0, 1], non-negative coefficients")
        }
        guard hidden >= 1, candidateHidden >= 1, valueHidden >= 1, costWindow >= 1 else { throw MultiRoundError("layer widths and the cost window must be at least 1") }
    }
}

/// A trained multi-round routing policy: the network plus what it was trained against.
public struct MultiRoundPolicy: Sendable, Codable {
    public var network: PolicyNetwork
    public var alpha: Double
    public var models: [String]

    /// Action probabilities in `state` (`0..<models` call, last = answer).
    public func probabilities(_ env: MultiRoundEnvironment, _ state: EpisodeState) -> [Float] {
        PolicyNetwork.softmax(network.forward(env.observe(state), models: env.modelCount).logits)
    }

    /// The most probable action.
    public func greedyAction(_ env: MultiRoundEnvironment, _ state: EpisodeState) -> Int {
        let p = probabilities(env, state)
        return p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }!
    }

    /// Checks that `env` produces observations this network reads.
    public func check(_ env: MultiRoundEnvironment) throws {
        guard env.globalDimension == network.globalDimension, env.candidateDimension == network.candidateDimension else {
            throw MultiRoundError("the policy reads \(network.globalDimension) global / \(network.candidateDimension) per-model features; the environment gives \(env.globalDimension) / \(env.candidateDimension)")
        }
    }
}

/// One PPO iteration's figures (on the sampled training trajectories).
public struct PPOIterationLog: Sendable, Codable, Equatable {
    public var iteration: Int
    public var meanReward: Double
    public var quality: Double
    public var cost: Double
    public var invalidRate: Double
    public var meanCalls: Double
    public var entropy: Double
    public var approximateKL: Double
    public var clipFraction: Double
}

/// Proximal policy optimisation of a `MultiRoundPolicy` on an offline table.
public enum PPOTrainer {
    struct Transition {
        var observation: Observation
        var action: Int
        var logProbability: Float
        var value: Float
        var advantage: Float = 0
        var returnValue: Float = 0
    }

    /// Trains on `rows` of `env`; `progress` gets each iteration's log.
    public static func train(environment env: MultiRoundEnvironment, rows: [Int], configuration c: PPOConfiguration,
                             progress: ((PPOIterationLog) -> Void)? = nil) throws -> (policy: MultiRoundPolicy, log: [PPOIterationLog]) {
        try c.validate()
        guard !rows.isEmpty else { throw MultiRoundError("no training rows") }
        var rng = SeededRandom(seed: c.seed)
        var network = PolicyNetwork(globalDimension: env.globalDimension, candidateDimension: env.candidateDimension,
                                    hidden: c.hidden, candidateHidden: c.candidateHidden, valueHidden: c.valueHidden, seed: rng.derivedSeed(1))
        var optimizer = AdamW(configuration: AdamWConfiguration(learningRate: c.learningRate, weightDecay: 0), shapes: network.parameters.map(\.count))
        var reward = try CostAwareReward(alpha: c.alpha, capacity: c.costWindow)
        var order = rng.permutation(rows.count), cursor = 0
        var log: [PPOIterationLog] = []
        for iteration in 1...c.iterations {
            // Roll out.
            var transitions: [Transition] = []
            var rewardSum = 0.0, qualitySum = 0.0, costSum = 0.0, invalid = 0, calls = 0
            for _ in 0..<c.episodesPerIteration {
                if cursor == order.count { order = rng.permutation(rows.count); cursor = 0 }
                var state = EpisodeState(row: rows[order[cursor]])
                cursor += 1
                let start = transitions.count
                var outcome: EpisodeOutcome?
                while outcome == nil {
                    let o = env.observe(state)
                    let a = network.forward(o, models: env.modelCount)
                    let p = PolicyNetwork.softmax(a.logits)
                    let action = rng.weightedIndex(p.map(Double.init))
                    transitions.append(Transition(observation: o, action: action, logProbability: Scalar.log(max(p[action], 1e-30)), value: a.value))
                    outcome = env.step(&state, env.action(action))
                }
                let r = reward.reward(cost: outcome!.isValid ? outcome!.cost : nil, correct: outcome!.score >= 0.5)
                rewardSum += r
                qualitySum += outcome!.score
                costSum += outcome!.cost
                calls += state.called.count
                if !outcome!.isValid { invalid += 1 }
                // GAE over the episode (reward only at the end).
                var next: Float = 0, gae: Float = 0
                for t in stride(from: transitions.count - 1, through: start, by: -1) {
                    let rt: Float = t == transitions.count - 1 ? Float(r) : 0
                    let delta = rt + c.gamma * next - transitions[t].value
                    gae = delta + c.gamma * c.gaeLambda * gae
                    transitions[t].advantage = gae
                    transitions[t].returnValue = gae + transitions[t].value
                    next = transitions[t].value
                }
            }
            // Normalise advantages.
            let n = Float(transitions.count)
            let mean = transitions.reduce(0) { $0 + $1.advantage } / n
            let sd = (transitions.reduce(0) { $0 + ($1.advantage - mean) * ($1.advantage - mean) } / n).squareRoot()
            for i in transitions.indices { transitions[i].advantage = (transitions[i].advantage - mean) / (sd + 1e-8) }
            // Optimise the clipped surrogate.
            var entropySum = 0.0, klSum = 0.0, clipped = 0, seen = 0
            for _ in 0..<c.epochs {
                let perm = rng.permutation(transitions.count)
                var b = 0
                while b < perm.count {
                    let batch = perm[b..<min(b + c.minibatchSize, perm.count)]
                    b += c.minibatchSize
                    var grads = network.zeroGradients()
                    let scale = 1 / Float(batch.count)
                    for i in batch {
                        let t = transitions[i]
                        let a = network.forward(t.observation, models: env.modelCount)
                        let p = PolicyNetwork.softmax(a.logits)
                        let logP = p.map { Scalar.log(max($0, 1e-30)) }
                        let entropy = -zip(p, logP).reduce(0) { $0 + $1.0 * $1.1 }
                        let ratio = Scalar.exp(logP[t.action] - t.logProbability)
                        let active = !((t.advantage >= 0 && ratio > 1 + c.clip) || (t.advantage < 0 && ratio < 1 - c.clip))
                        let dLogP: Float = active ? -t.advantage * ratio : 0
                        if !active { clipped += 1 }
                        var dLogits = [Float](repeating: 0, count: p.count)
                        for k in p.indices {
                            dLogits[k] = dLogP * ((k == t.action ? 1 : 0) - p[k]) + c.entropyCoefficient * p[k] * (logP[k] + entropy)
                            dLogits[k] *= scale
                        }
                        let dValue = c.valueCoefficient * (a.value - t.returnValue) * scale
                        network.accumulateGradients(t.observation, a, dLogits: dLogits, dValue: dValue, into: &grads)
                        entropySum += Double(entropy)
                        klSum += Double(t.logProbability - logP[t.action])
                        seen += 1
                    }
                    GradientClipping.clipGlobalNorm(&grads, maxNorm: c.maxGradientNorm)
                    optimizer.update(&network.parameters, gradients: grads)
                }
            }
            guard network.parameters.allSatisfy({ $0.values.allSatisfy(\.isFinite) }) else {
                throw MultiRoundError("PPO diverged at iteration \(iteration) (non-finite parameters); lower the learning rate")
            }
            let episodes = Double(c.episodesPerIteration)
            let entry = PPOIterationLog(iteration: iteration, meanReward: rewardSum / episodes, quality: qualitySum / episodes, cost: costSum / episodes,
                                        invalidRate: Double(invalid) / episodes, meanCalls: Double(calls) / episodes,
                                        entropy: entropySum / Double(max(seen, 1)), approximateKL: klSum / Double(max(seen, 1)),
                                        clipFraction: Double(clipped) / Double(max(seen, 1)))
            log.append(entry)
            progress?(entry)
        }
        return (MultiRoundPolicy(network: network, alpha: c.alpha, models: env.table.models), log)
    }
}
