#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The CPU time this process has used so far, over all its threads (user and system), from
/// `CLOCK_PROCESS_CPUTIME_ID`. A round's share is the difference of two readings: the coordinator's own work,
/// and in a loopback federation its clients' as well. On a machine whose speed changes from second to second,
/// CPU time moves much less than wall time, so it shows what a change to the work itself did.
public enum ProcessCPUTime {
    /// Seconds of CPU used so far (nil where the clock cannot be read).
    public static func now() -> Double? {
        var t = timespec()
        guard clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) == 0 else { return nil }
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
