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

    /// The array kernels (C, at the CPU's widest vectors) give exactly the bits of the 8-lane Swift
    /// code, for every length's tail and for the special values: NaN, ±∞, ±0, the clamps of exp and
    /// inputs whose exp underflows.
    @Test func arrayKernelsAreBitIdenticalToTheSwiftVectorCode() {
        var rng = SeededRandom(seed: 11)
        var x: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 88.72, 88.73, -87.33, -87.34, -200, 200, 1e-30, -1e-30,
                          .leastNonzeroMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 0.8, -0.8]
        x += (0..<4_000).map { _ in Float(rng.nextGaussian() * (rng.nextDouble() < 0.5 ? 3 : 40)) }
        func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }
        for width: Int32? in [nil, 0, 1, 2] {
        for count in Array(0...40) + [x.count] {
            let input = Array(x.prefix(count))
            var out = [Float](repeating: 7, count: count)
            input.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { o in
                if count > 0 { VectorMath.gelu(p.baseAddress!, o.baseAddress!, count: count, width: width) }
            } }
            #expect(bits(out) == bits(input.map { VectorMath.gelu($0) }), "gelu, \(count) elements, width \(String(describing: width))")
            for (scale, shift): (Float, Float) in [(1, 0), (0.1767767, 3.5), (-2, -1)] {
                var e = input
                e.withUnsafeMutableBufferPointer { p in
                    if count > 0 { VectorMath.expAffine(p.baseAddress!, count: count, scale: scale, shift: shift, width: width) }
                }
                #expect(bits(e) == bits(input.map { VectorMath.exp($0 * scale - shift) }), "exp(x·\(scale) − \(shift)), \(count) elements, width \(String(describing: width))")
            }
        }
        }
    }

    /// The four running sums give the one-chain sum to rounding, for every tail length, and a NaN or an
    /// infinity anywhere (in the four-wide part or the tail) makes the sum non-finite.
    @Test func sumOfSquaresIsTheSumToRoundingAndSeesNaN() {
        var rng = SeededRandom(seed: 5)
        for count in [0, 1, 3, 4, 7, 8, 1_001] {
            let values = (0..<count).map { _ in rng.nextFloat() * 8 - 4 }
            let chain = values.reduce(0.0) { $0 + Double($1) * Double($1) }
            let sum = values.withUnsafeBufferPointer(VectorMath.sumOfSquares)
            #expect(abs(sum - chain) <= 1e-12 * max(1, chain), "\(count) values")
            for position in count > 0 ? [0, count - 1] : [] {
                for bad in [Float.nan, .infinity] {
                    var poisoned = values
                    poisoned[position] = bad
                    #expect(!poisoned.withUnsafeBufferPointer(VectorMath.sumOfSquares).isFinite, "\(bad) at \(position) of \(count)")
                }
            }
        }
    }
}
