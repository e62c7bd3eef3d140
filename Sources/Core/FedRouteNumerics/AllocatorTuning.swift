import CFedRouteKernels

/// glibc's allocator, set up for training: many multi-megabyte arrays (parameters, Adam moments,
/// gradients, activations) allocated and freed over and over.
///
/// By default glibc serves a block above its mmap threshold (128 kB, rising with what is freed, at most
/// 32 MB) from a fresh mapping and returns it to the kernel when freed, and trims the top of a heap once
/// 128 kB are free there. Every such block is then paid again in page faults, the kernel zeroing each
/// 4 kB page: a 1,000-client simulation took 2.7 M page faults and 10 s of system time of its 74 s.
/// These settings keep freed blocks up to 32 MB in the heap for reuse, trim only past 256 MB free, and
/// grow a heap by 64 MB at a time. The cost is memory that stays mapped after a peak (that run's maximum
/// RSS went from 0.46 to 0.60 GB), so only commands that train call this, not the gateway.
public enum AllocatorTuning {
    /// Blocks up to this size come from the heap (glibc's largest allowed threshold on 64-bit).
    public static let mmapThreshold: Int32 = 32 << 20
    /// Free memory at the top of a heap kept before it is returned to the kernel.
    public static let trimThreshold: Int32 = 256 << 20
    /// Extra memory requested whenever a heap grows.
    public static let topPad: Int32 = 64 << 20

    /// Environment variables with which a user sets glibc's allocator; when one is set, it is left to them.
    public static let userSettings = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"]

    /// Applies the settings once at process start, before the work begins. Returns whether they were
    /// applied: false off glibc, when the environment already sets the allocator (`userSettings`), or when
    /// glibc refused a value.
    @discardableResult
    public static func applyForTraining(environment: [String: String]) -> Bool {
        guard !userSettings.contains(where: { environment[$0] != nil }) else { return false }
        return fr_malloc_tune(mmapThreshold, trimThreshold, topPad) == 1
    }
}
