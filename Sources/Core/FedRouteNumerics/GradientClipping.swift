/// Gradient clipping by global L2 norm.
public enum GradientClipping {
    /// Scales `gradients` in place so their joint L2 norm is at most `maxNorm`; returns the norm before clipping.
    @discardableResult
    public static func clipGlobalNorm(_ gradients: inout [[Float]], maxNorm: Float) -> Float {
        var total: Double = 0
        for g in gradients { for x in g { total += Double(x) * Double(x) } }
        let norm = Float(total.squareRoot())
        if maxNorm > 0, norm > maxNorm {
            let scale = maxNorm / (norm + 1e-6)
            for t in gradients.indices { for i in gradients[t].indices { gradients[t][i] *= scale } }
        }
        return norm
    }
}
