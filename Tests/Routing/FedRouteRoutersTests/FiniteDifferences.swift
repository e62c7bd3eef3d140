import FedRouteNumerics
@testable import FedRouteRouters
import Testing

/// Checks `net`'s analytic gradients on one batch against central finite differences (step 10⁻²),
/// every `stride`-th element of each tensor, within `absolute + relative·max(|numeric|, |analytic|)`.
/// Returns the gradients and how many elements were checked.
@discardableResult
func expectGradientsMatchFiniteDifferences(_ net: MLPNetwork, _ x: Matrix, _ t: MLPBatchTargets, stride step: (Int) -> Int,
                                           absolute: Float, relative: Float) -> (gradients: [[Float]], checked: Int) {
    var rng = SeededRandom(seed: 0)
    let (_, grads) = net.lossAndGradients(x, t, training: true, rng: &rng)
    let eps: Float = 1e-2
    var checked = 0
    for (ti, tensor) in net.parameters.enumerated() {
        for i in stride(from: 0, to: tensor.count, by: max(1, step(tensor.count))) {
            var plus = net, minus = net
            plus.parameters[ti].values[i] += eps
            minus.parameters[ti].values[i] -= eps
            let fd = Float((plus.loss(x, t) - minus.loss(x, t)) / Double(2 * eps))
            let g = grads[ti][i]
            #expect(abs(fd - g) <= absolute + relative * max(abs(fd), abs(g)), "\(tensor.name)[\(i)]: analytic \(g) vs numeric \(fd)")
            checked += 1
        }
    }
    return (grads, checked)
}
