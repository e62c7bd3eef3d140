import Logging

extension LoggingSystem {
    /// Log lines to standard error at `level` and above (the long-running commands).
    static func bootstrapStandardError(level: Logger.Level) {
        bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
    }
}
