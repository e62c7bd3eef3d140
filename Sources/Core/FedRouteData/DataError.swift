/// An error in evaluation data, naming the file and line (or row) where it was found.
public struct DataError: Error, CustomStringConvertible, Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        case fileNotFound = "file not found"
        case unreadable = "unreadable"
        case malformed = "malformed"
        case missingColumn = "missing column"
        case invalidValue = "invalid value"
        case unknownModel = "unknown model"
        case duplicate = "duplicate"
        case unknownFormat = "unknown format"
        case empty = "no data"
    }

    public var kind: Kind
    public var message: String
    public var file: String?
    /// 1-based line (JSONL) or data row (CSV, counting the header as row 1).
    public var line: Int?

    public init(_ kind: Kind, _ message: String, file: String? = nil, line: Int? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String {
        var location = ""
        if let file { location = file + (line.map { ":\($0)" } ?? "") + ": " }
        return "\(location)\(kind.rawValue): \(message)"
    }
}

/// What a loader did besides returning data: rows skipped (with `--skip-invalid`), duplicates
/// resolved, assumptions made. Loaders never drop data without a line here.
public struct LoadReport: Sendable, Equatable, Codable {
    public var notes: [String] = []
    /// Invalid rows skipped, with their error.
    public var skipped: [DataError] = []

    public init() {}

    public mutating func note(_ s: String) { notes.append(s) }
}

/// What to do with a row that fails validation.
public enum InvalidRowPolicy: Sendable {
    /// Stop at the first invalid row with its error.
    case fail
    /// Skip it and record the error in the `LoadReport`.
    case skip
}
