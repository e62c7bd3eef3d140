import FedRouteNumerics
import Foundation

/// Actor-critic network over one observation, with one shared scorer for every model.
///
/// h = tanh(W₁g + b₁); a call to model k scores v·tanh(W₂[h; c_k] + b₂) + b_v, where c_k are k's
/// descriptor and status features; answering scores u·h + b_u; the value is
/// w·tanh(W_v g + b_v') + b_w. Because models enter only through c_k, the number of models can
/// change between training and use.
public struct PolicyNetwork: Sendable, Codable, Equatable {
    public let globalDimension: Int
    public let candidateDimension: Int
    public let hidden: Int
    public let candidateHidden: Int
    public let valueHidden: Int
    public var parameters: [Tensor]

    // Parameter order.
    static let w1 = 0, b1 = 1, w2 = 2, b2 = 3, v = 4, bv = 5, u = 6, bu = 7, wv = 8, bvv = 9, wo = 10, bo = 11

    public init(globalDimension: Int, candidateDimension: Int, hidden: Int = 64, candidateHidden: Int = 32, valueHidden: Int = 64, seed: UInt64) {
        self.globalDimension = globalDimension
        self.candidateDimension = candidateDimension
        self.hidden = hidden
        self.candidateHidden = candidateHidden
        self.valueHidden = valueHidden
        var rng = SeededRandom(seed: seed)
        func glorot(_ name: String, _ rows: Int, _ cols: Int, gain: Double = 1) -> Tensor {
            let scale = gain * (6.0 / Double(rows + cols)).squareRoot()
            return Tensor(name: name, shape: [rows, cols], values: (0..<(rows * cols)).map { _ in Float((rng.nextDouble() * 2 - 1) * scale) })
        }
        let x = hidden + candidateDimension
        parameters = [
            glorot("w1", hidden, globalDimension), Tensor(name: "b1", shape: [hidden], repeating: 0),
            glorot("w2", candidateHidden, x), Tensor(name: "b2", shape: [candidateHidden], repeating: 0),
            glorot("v", 1, candidateHidden, gain: 0.1), Tensor(name: "bv", shape: [1], repeating: 0),
            glorot("u", 1, hidden, gain: 0.1), Tensor(name: "bu", shape: [1], repeating: 0),
            glorot("wv", valueHidden, globalDimension), Tensor(name: "bvv", shape: [valueHidden], repeating: 0),
            glorot("wo", 1, valueHidden, gain: 0.1), Tensor(name: "bo", shape: [1], repeating: 0),
        ]
    }

    /// Activations of one forward pass, kept for the backward pass.
    public struct Activations: Sendable {
        public var h: [Float]
        public var z: [Float]        // models × candidateHidden
        public var logits: [Float]   // models + 1 (last = answer)
        public var hv: [Float]
        public var value: Float
    }

    /// y = tanh(W x + b) for a row-major W of `rows × cols`.
    @inline(__always)
    static func denseTanh(_ w: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>, rows: Int, cols: Int, into y: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<rows {
            var s = b[i]
            let row = i * cols
            for j in 0..<cols { s += w[row + j] * x[j] }
            y[i] = Scalar.tanh(s)
        }
    }

    public func forward(_ o: Observation, models: Int) -> Activations {
        precondition(o.global.count == globalDimension && o.candidates.count == models * candidateDimension, "observation does not fit the network")
        let p = parameters
        let (H, C, Z, V, G) = (hidden, candidateDimension, candidateHidden, valueHidden, globalDimension)
        var h = [Float](repeating: 0, count: H)
        var hv = [Float](repeating: 0, count: V)
        var z = [Float](repeating: 0, count: models * Z)
        var logits = [Float](repeating: 0, count: models + 1)
        var value: Float = 0
        o.global.withUnsafeBufferPointer { g in
            p[Self.w1].values.withUnsafeBufferPointer { w in p[Self.b1].values.withUnsafeBufferPointer { b in
                h.withUnsafeMutableBufferPointer { Self.denseTanh(w, b, g, rows: H, cols: G, into: $0) }
            } }
            p[Self.wv].values.withUnsafeBufferPointer { w in p[Self.bvv].values.withUnsafeBufferPointer { b in
                hv.withUnsafeMutableBufferPointer { Self.denseTanh(w, b, g, rows: V, cols: G, into: $0) }
            } }
        }
        // The h part of W₂[h; c_k] is the same for every model: compute it once.
        var shared = [Float](repeating: 0, count: Z)
        p[Self.w2].values.withUnsafeBufferPointer { w2 in
            p[Self.b2].values.withUnsafeBufferPointer { b2 in
                h.withUnsafeBufferPointer { hh in
                    o.candidates.withUnsafeBufferPointer { cand in
                        p[Self.v].values.withUnsafeBufferPointer { v in
                            shared.withUnsafeMutableBufferPointer { sh in
                                z.withUnsafeMutableBufferPointer { zz in
                                    let stride = H + C
                                    for i in 0..<Z {
                                        var s = b2[i]
                                        for j in 0..<H { s += w2[i * stride + j] * hh[j] }
                                        sh[i] = s
                                    }
                                    let bv = p[Self.bv].values[0]
                                    for k in 0..<models {
                                        var logit = bv
                                        for i in 0..<Z {
                                            var s = sh[i]
                                            let row = i * stride + H
                                            for j in 0..<C { s += w2[row + j] * cand[k * C + j] }
                                            let t = Scalar.tanh(s)
                                            zz[k * Z + i] = t
                                            logit += v[i] * t
                                        }
                                        logits[k] = logit
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        var a = p[Self.bu].values[0]
        p[Self.u].values.withUnsafeBufferPointer { u in for i in 0..<H { a += u[i] * h[i] } }
        logits[models] = a
        value = p[Self.bo].values[0]
        p[Self.wo].values.withUnsafeBufferPointer { wo in for i in 0..<V { value += wo[i] * hv[i] } }
        return Activations(h: h, z: z, logits: logits, hv: hv, value: value)
    }

    /// Zero gradients shaped like the parameters.
    public func zeroGradients() -> [[Float]] { parameters.map { [Float](repeating: 0, count: $0.count) } }

    /// Adds the gradient of a loss with ∂loss/∂logits = `dLogits` and ∂loss/∂value = `dValue` to `grads`.
    public func accumulateGradients(_ o: Observation, _ a: Activations, dLogits: [Float], dValue: Float, into grads: inout [[Float]]) {
        let models = dLogits.count - 1
        let p = parameters
        let (H, C, Z, V, G) = (hidden, candidateDimension, candidateHidden, valueHidden, globalDimension)
        let stride = H + C
        var dh = [Float](repeating: 0, count: H)
        var dpre = [Float](repeating: 0, count: Z)
        // Answer head.
        let dA = dLogits[models]
        grads[Self.bu][0] += dA
        grads[Self.u].withUnsafeMutableBufferPointer { gu in
            p[Self.u].values.withUnsafeBufferPointer { u in
                for i in 0..<H {
                    gu[i] += dA * a.h[i]
                    dh[i] = dA * u[i]
                }
            }
        }
        // Candidate scorer: per model, back through v and tanh into W₂, b₂ and h.
        var dbv: Float = 0
        var gv = [Float](repeating: 0, count: Z), gb2 = [Float](repeating: 0, count: Z)
        swap(&gv, &grads[Self.v])
        swap(&gb2, &grads[Self.b2])
        var gw2 = [Float]()
        swap(&gw2, &grads[Self.w2])
        gw2.withUnsafeMutableBufferPointer { gw2 in
            p[Self.w2].values.withUnsafeBufferPointer { w2 in
                p[Self.v].values.withUnsafeBufferPointer { v in
                    a.h.withUnsafeBufferPointer { h in
                        a.z.withUnsafeBufferPointer { z in
                            o.candidates.withUnsafeBufferPointer { cand in
                                dh.withUnsafeMutableBufferPointer { dh in
                                    dpre.withUnsafeMutableBufferPointer { dpre in
                                        gv.withUnsafeMutableBufferPointer { gv in
                                            gb2.withUnsafeMutableBufferPointer { gb2 in
                                                for k in 0..<models {
                                                    let dl = dLogits[k]
                                                    if dl == 0 { continue }
                                                    dbv += dl
                                                    for i in 0..<Z {
                                                        let zi = z[k * Z + i]
                                                        gv[i] += dl * zi
                                                        dpre[i] = dl * v[i] * (1 - zi * zi)
                                                        gb2[i] += dpre[i]
                                                    }
                                                    for i in 0..<Z {
                                                        let d = dpre[i]
                                                        let row = i * stride
                                                        for j in 0..<H {
                                                            gw2[row + j] += d * h[j]
                                                            dh[j] += d * w2[row + j]
                                                        }
                                                        for j in 0..<C { gw2[row + H + j] += d * cand[k * C + j] }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        swap(&gw2, &grads[Self.w2])
        swap(&gv, &grads[Self.v])
        swap(&gb2, &grads[Self.b2])
        grads[Self.bv][0] += dbv
        // Trunk and value head: rank-one updates of the first layers.
        func firstLayer(_ weight: Int, _ bias: Int, _ delta: [Float], into grads: inout [[Float]]) {
            var gw = [Float](), gb = [Float]()
            swap(&gw, &grads[weight])
            swap(&gb, &grads[bias])
            gw.withUnsafeMutableBufferPointer { gw in
                o.global.withUnsafeBufferPointer { x in
                    for i in delta.indices where delta[i] != 0 {
                        gb[i] += delta[i]
                        let row = i * G
                        let d = delta[i]
                        for j in 0..<G { gw[row + j] += d * x[j] }
                    }
                }
            }
            swap(&gw, &grads[weight])
            swap(&gb, &grads[bias])
        }
        firstLayer(Self.w1, Self.b1, (0..<H).map { dh[$0] * (1 - a.h[$0] * a.h[$0]) }, into: &grads)
        grads[Self.bo][0] += dValue
        for i in 0..<V { grads[Self.wo][i] += dValue * a.hv[i] }
        let wo = p[Self.wo].values
        firstLayer(Self.wv, Self.bvv, (0..<V).map { dValue * wo[$0] * (1 - a.hv[$0] * a.hv[$0]) }, into: &grads)
    }

    /// Softmax of `logits` (stable).
    public static func softmax(_ logits: [Float]) -> [Float] {
        let top = logits.max() ?? 0
        let e = logits.map { Scalar.exp($0 - top) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}
