/// Gradient clipping by global L2 norm.
public enum GradientClipping {
    /// Scales `gradients` in place so their joint L2 norm is at most `maxNorm`; returns the norm before clipping.
    ///
    /// One read pass (squares summed in 8 float lanes per tensor, the tensors' sums added in Double) and,
    /// only when clipping, one scaling pass.
    @discardableResult
    public static func clipGlobalNorm(_ gradients: inout [[Float]], maxNorm: Float) -> Float {
        var total: Double = 0
        for g in gradients {
            total += g.withUnsafeBufferPointer { p -> Double in
                guard let base = p.baseAddress else { return 0 }
                var acc = VectorMath.Vector()
                var i = 0
                while i + 8 <= p.count {
                    let x = VectorMath.load(base + i)
                    acc += x * x
                    i += 8
                }
                var tail: Float = 0
                while i < p.count {
                    tail += base[i] * base[i]
                    i += 1
                }
                return Double(acc.sum()) + Double(tail)
            }
        }
        let norm = Float(total.squareRoot())
        if maxNorm > 0, norm > maxNorm {
            let scale = maxNorm / (norm + 1e-6)
            for t in gradients.indices {
                gradients[t].withUnsafeMutableBufferPointer { p in
                    guard let base = p.baseAddress else { return }
                    VectorMath.map(base, base, count: p.count) { $0 * scale }
                }
            }
        }
        return norm
    }
}
