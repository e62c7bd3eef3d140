import FedRouteNumerics
import Foundation
import Testing

@Suite struct OpenBLASCoreTests {
    /// Kernels without FMA are replaced by the widest set the CPU runs; recognised cores are kept.
    @Test func replacementOnlyUpgradesCoresWithoutFMA() {
        #expect(OpenBLASCore.replacement(for: "Prescott", cpuLevel: 2) == "SkylakeX")
        #expect(OpenBLASCore.replacement(for: "prescott", cpuLevel: 1) == "Haswell")
        #expect(OpenBLASCore.replacement(for: "Sandybridge", cpuLevel: 1) == "Haswell")
        #expect(OpenBLASCore.replacement(for: "Nehalem", cpuLevel: 2) == "SkylakeX")
        #expect(OpenBLASCore.replacement(for: "Prescott", cpuLevel: 0) == nil)
        for recognised in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "Excavator"] {
            #expect(OpenBLASCore.replacement(for: recognised, cpuLevel: 2) == nil, "\(recognised)")
        }
    }

    @Test func portableKernelPreferredOnlyOverKernelsWithoutFMA() {
        #expect(OpenBLASCore.portableIsFaster(than: "Prescott", portableLevel: 2))
        #expect(OpenBLASCore.portableIsFaster(than: "Core2", portableLevel: 1))
        #expect(!OpenBLASCore.portableIsFaster(than: "Prescott", portableLevel: 0))
        #expect(!OpenBLASCore.portableIsFaster(than: "SkylakeX", portableLevel: 2))
        #expect(OpenBLASCore(name: "SkylakeX", detected: "Prescott").corrected)
        #expect(!OpenBLASCore(name: "Haswell", detected: "haswell").corrected)
    }

    /// On this machine: whatever OpenBLAS detected, the process never multiplies with kernels older than
    /// the CPU (unless OPENBLAS_CORETYPE or FEDROUTE_BLAS pins the choice).
    @Test func loadedKernelsMatchTheCPU() {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_CORETYPE"] == nil, environment["FEDROUTE_BLAS"] == nil else { return }
        if GEMM.backend == .openBLAS, let core = GEMM.openBLASCore, OpenBLASCore.cpuLevel >= 1 {
            #expect(!OpenBLASCore.lacksFMA(core.name), "OpenBLAS runs \(core.name) kernels (it chose \(core.detected)) on a CPU with FMA")
        }
        #expect(!GEMM.backendDescription.isEmpty)
    }
}
