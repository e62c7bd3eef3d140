import CFedRouteKernels

/// Which of OpenBLAS's per-CPU kernel sets ("cores") a process runs, and the correction fedroute makes when
/// OpenBLAS does not recognise the CPU.
///
/// A DYNAMIC_ARCH OpenBLAS picks its kernels from the CPU's family and model numbers. A model newer than the
/// library (Debian 12's OpenBLAS 0.3.21 on an Emerald Rapids Xeon, model 207, for instance) falls back to
/// the SSE3 "Prescott" kernels, without FMA: 34–54 GFLOP/s where its SkylakeX kernels give 145–237 on the same
/// cores, and 2–3× slower than fedroute's portable GEMM. When OpenBLAS chose a core without FMA on a CPU
/// that has AVX2 and FMA (or AVX-512 F/BW/DQ/VL), fedroute re-initialises it with the kernels the CPU
/// can run (`Haswell`, `SkylakeX`), the same selection `OPENBLAS_CORETYPE` makes; where that is not
/// possible it uses the portable GEMM instead. Setting `OPENBLAS_CORETYPE` yourself turns the
/// correction off.
public struct OpenBLASCore: Sendable, Equatable {
    /// The kernels in use (OpenBLAS's `openblas_get_corename()`).
    public var name: String
    /// What OpenBLAS chose by itself at load.
    public var detected: String

    public init(name: String, detected: String) {
        self.name = name
        self.detected = detected
    }

    /// True when fedroute replaced OpenBLAS's own choice.
    public var corrected: Bool { name.lowercased() != detected.lowercased() }

    /// What this CPU runs in OpenBLAS's terms: 2 for AVX-512 F/BW/DQ/VL (its SkylakeX kernels), 1 for AVX2 with
    /// FMA (Haswell), 0 otherwise (and on other architectures).
    public static var cpuLevel: Int { Int(fr_cpu_blas_level()) }

    /// x86 cores of OpenBLAS 0.3.x whose single-precision kernels use no FMA (SSE or plain AVX).
    static let withoutFMA: Set<String> = [
        "unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
        "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "sandybridge", "bobcat",
    ]

    /// True when `core` is one of OpenBLAS's x86 kernel sets without FMA.
    public static func lacksFMA(_ core: String) -> Bool { withoutFMA.contains(core.lowercased()) }

    /// The core to re-initialise OpenBLAS with, or nil to keep `detected`.
    ///
    /// `cpuLevel` is what the CPU runs (`fr_cpu_blas_level()`): 2 for AVX-512 F/BW/DQ/VL, 1 for AVX2 with
    /// FMA, 0 otherwise. Only a choice without FMA is replaced; a recognised core is never second-guessed.
    public static func replacement(for detected: String, cpuLevel: Int) -> String? {
        guard lacksFMA(detected) else { return nil }
        switch cpuLevel {
        case 2...: return "SkylakeX"
        case 1: return "Haswell"
        default: return nil
        }
    }

    /// True when the portable GEMM should be used instead of OpenBLAS running `core`: the kernels lack
    /// FMA while the portable micro-kernel (`portableLevel`: 1 AVX2+FMA, 2 AVX-512) has it.
    public static func portableIsFaster(than core: String, portableLevel: Int) -> Bool {
        lacksFMA(core) && portableLevel >= 1
    }
}
