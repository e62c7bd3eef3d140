import FedRouteNumerics
import Foundation

/// MiniLM's four linear products (`x · Wᵀ` for QKV 384→1152, attention-out 384→384, intermediate 384→1536 and
/// output 1536→384) at `rows` token rows, as `BertEncoder` runs them: `GEMM.multiply` (OpenBLAS where loaded, which
/// packs W on every call) against `PackedMatrix` (W packed once for the portable micro-kernel), both on all cores,
/// alternating. Best and median GFLOP/s of `runs`, and the packed / GEMM ratio run by run.
func linearShapesBench(rows m: Int, runs: Int) {
    print("MiniLM's linear products at \(m) rows (GEMM: \(GEMM.backendDescription); packed: \(PackedMatrix.InstructionSet.native); \(runs) alternating runs)")
    // One layer's four products, run by run.
    var layerGEMM = [Double](repeating: 0, count: runs), layerPacked = [Double](repeating: 0, count: runs)
    for (name, outputs, inputs) in [("qkv", 1152, 384), ("attention-out", 384, 384), ("intermediate", 1536, 384), ("output", 384, 1536)] {
        var rng = SeededRandom(seed: UInt64(outputs * inputs))
        let x = (0..<(m * inputs)).map { _ in rng.nextFloat() - 0.5 }
        let w = (0..<(outputs * inputs)).map { _ in rng.nextFloat() - 0.5 }
        let packed = PackedMatrix(linearWeights: w, outputs: outputs, inputs: inputs)
        var c = [Float](repeating: 0, count: m * outputs)
        let flops = 2.0 * Double(m) * Double(outputs) * Double(inputs)
        var tGEMM: [Double] = [], tPacked: [Double] = []
        for _ in 0..<runs {
            tGEMM.append(seconds {
                GEMM.multiply(transA: false, transB: true, m: m, n: outputs, k: inputs, alpha: 1, a: x, lda: inputs, b: w, ldb: inputs, beta: 0, c: &c, ldc: outputs)
            })
            tPacked.append(seconds {
                x.withUnsafeBufferPointer { xp in c.withUnsafeMutableBufferPointer { cp in
                    packed.multiply(m: m, a: xp.baseAddress!, lda: inputs, c: cp.baseAddress!, ldc: outputs, overwrite: true)
                } }
            })
        }
        layerGEMM = zip(layerGEMM, tGEMM).map(+)
        layerPacked = zip(layerPacked, tPacked).map(+)
        let ratios = zip(tGEMM, tPacked).map { $0 / $1 }
        print(String(format: "  %-14@ %4d→%4d  gemm %6.1f / %6.1f GFLOP/s   packed %6.1f / %6.1f GFLOP/s   packed / gemm best %.2f, median %.2f",
                     name, inputs, outputs, flops / tGEMM.min()! / 1e9, flops / median(tGEMM) / 1e9, flops / tPacked.min()! / 1e9,
                     flops / median(tPacked) / 1e9, ratios.max()!, median(ratios)))
    }
    let ratios = zip(layerGEMM, layerPacked).map { $0 / $1 }
    print(String(format: "  one layer's four products: gemm %.2f / %.2f ms, packed %.2f / %.2f ms, packed / gemm best %.2f, median %.2f",
                 layerGEMM.min()! * 1e3, median(layerGEMM) * 1e3, layerPacked.min()! * 1e3, median(layerPacked) * 1e3,
                 ratios.max()!, median(ratios)))
}
