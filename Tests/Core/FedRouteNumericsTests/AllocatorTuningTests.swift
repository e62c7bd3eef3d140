import FedRouteNumerics
import Testing

/// `AllocatorTuning`: glibc accepts the settings, and a user's own allocator settings are left alone.
@Suite struct AllocatorTuningTests {
    @Test func aUsersOwnAllocatorSettingsAreLeftAlone() {
        for name in AllocatorTuning.userSettings {
            #expect(!AllocatorTuning.applyForTraining(environment: [name: "1"]), "\(name)")
        }
    }

    #if os(Linux) && canImport(Glibc)
    /// glibc takes the three values (it refuses an mmap threshold above 32 MB on 64-bit, for one).
    @Test func glibcAcceptsTheSettings() {
        #expect(AllocatorTuning.applyForTraining(environment: ["PATH": "/usr/bin"]))
    }
    #endif
}
