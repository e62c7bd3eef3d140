import Foundation

/// A one-line progress bar with ETA on a terminal; silent when output is piped or in CI.
final class ProgressBar: @unchecked Sendable {
    let label: String
    let total: Int
    let start = Date()
    private let lock = NSLock()

    init(label: String, total: Int) {
        self.label = label
        self.total = max(1, total)
    }

    /// Draws `step` of `total` (the bar's own total unless given).
    func update(_ step: Int, of total: Int? = nil, detail: String = "") {
        guard Console.isInteractive else { return }
        lock.lock(); defer { lock.unlock() }
        let total = max(1, total ?? self.total)
        let frac = min(1, Double(step) / Double(total))
        let width = 30
        let filled = Int(frac * Double(width))
        let elapsed = Date().timeIntervalSince(start)
        let eta = step > 0 ? elapsed / Double(step) * Double(total - step) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        FileHandle.standardError.write(Data(String(format: "\r%@ [%@] %d/%d %@ ETA %.0fs   ", label, bar, step, total, detail, eta).utf8))
    }

    func finish() {
        guard Console.isInteractive else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
