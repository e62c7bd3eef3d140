import FedRouteNumerics
import Foundation
import Testing

/// The documented error bounds of `VectorMath`, against Foundation's Double functions on dense grids.
@Suite struct VectorMathTests {
    /// 200,001 points on [lo, hi] plus the grid's ends.
    func grid(_ lo: Double, _ hi: Double) -> [Float] {
        (0...200_000).map { Float(lo + (hi - lo) * Double($0) / 200_000) }
    }

    @Test func expRelativeErrorIsAtMostTwoTenthsOfAMillionth() {
        var worst = 0.0
        for x in grid(-87, 88.5) {
            let exact = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(VectorMath.exp(x)) - exact) / exact)
        }
        #expect(worst <= 2e-7, Comment(rawValue: "worst relative error \(worst)"))
        #expect(VectorMath.exp(-90) == 0)
        #expect(VectorMath.exp(89) == .infinity)
        #expect(VectorMath.exp(0) == 1)
    }

    @Test func erfAbsoluteErrorIsAtMostThreeTenthsOfAMillionth() {
        var worst = 0.0
        for x in grid(-6, 6) { worst = max(worst, abs(Double(VectorMath.erf(x)) - Foundation.erf(Double(x)))) }
        #expect(worst <= 3e-7, Comment(rawValue: "worst absolute error \(worst)"))
        #expect(VectorMath.erf(-x0) == -VectorMath.erf(x0))
    }
    let x0: Float = 0.37

    @Test func geluAndItsDerivativeMatchTheExactForms() {
        var worstValue = 0.0, worstSlope = 0.0
        for x in grid(-12, 12) {
            let d = Double(x)
            let cdf = 0.5 * (1 + Foundation.erf(d / 2.0.squareRoot()))
            let pdf = Foundation.exp(-0.5 * d * d) / (2 * Double.pi).squareRoot()
            // Φ is within 1.5e-7 (plus rounding), so x·Φ(x) within |x|·that.
            worstValue = max(worstValue, abs(Double(VectorMath.gelu(x)) - d * cdf) / max(1, abs(d)))
            worstSlope = max(worstSlope, abs(Double(VectorMath.geluDerivative(x)) - (cdf + d * pdf)) / max(1, abs(d)))
        }
        #expect(worstValue <= 3e-7, Comment(rawValue: "GELU: worst error / max(1, |x|) \(worstValue)"))
        #expect(worstSlope <= 5e-7, Comment(rawValue: "GELU′: worst error / max(1, |x|) \(worstSlope)"))
    }

    @Test func sigmoidIsStableAndAccurate() {
        var worst = 0.0
        for x in grid(-100, 100) {
            let exact = 1 / (1 + Foundation.exp(-Double(x)))
            worst = max(worst, abs(Double(VectorMath.sigmoid(x)) - exact))
        }
        #expect(worst <= 2e-7, Comment(rawValue: "worst absolute error \(worst)"))
        #expect(VectorMath.sigmoid(-200) == 0)
        #expect(VectorMath.sigmoid(200) == 1)
    }

    /// A tail element gets the same value as inside a full vector, so results do not depend on where a
    /// row's length cuts the vectors.
    @Test func tailsMatchVectorLanes() {
        let x = (0..<13).map { Float($0) * 0.61 - 4 }
        var out = [Float](repeating: .nan, count: 13)
        x.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { o in
            VectorMath.map(p.baseAddress!, o.baseAddress!, count: 13) { VectorMath.gelu($0) }
        } }
        #expect(out == x.map { VectorMath.gelu($0) })
        // The 8-lane sum adds in another order than a sequential one: equal up to float rounding.
        let laneSum = x.withUnsafeBufferPointer { VectorMath.sum($0.baseAddress!, count: 13) }
        #expect(abs(laneSum - x.reduce(0, +)) <= 1e-5)
    }
}
