import Foundation

/// Where each member of a JSON object's top level sits in the original bytes, so that the gateway can
/// forward a request byte-exact and change only the members it must (`model`, `stream_options`):
/// numbers beyond Int64 or Double, key order, escapes and spacing of everything else reach the upstream
/// as the client wrote them.
///
/// Run it on text a JSON parser has already accepted: it checks the structure it walks (and throws on
/// what does not fit), but it does not validate what it skips.
struct JSONMembers: Sendable, Equatable {
    /// The original bytes.
    let bytes: [UInt8]
    /// Decoded key → byte range of its value.
    let values: [String: Range<Int>]
    /// Index of the object's closing brace.
    let closingBrace: Int
    /// Whether the object has at least one member.
    var isEmpty: Bool { values.isEmpty }

    enum ScanError: Error, CustomStringConvertible {
        case malformed(Int)
        case duplicateKey(String)
        var description: String {
            switch self {
            case .malformed(let at): "malformed JSON at byte \(at)"
            case .duplicateKey(let key): "the member '\(key)' appears more than once"
            }
        }
    }

    init(_ data: Data) throws {
        let b = [UInt8](data)
        bytes = b
        var i = 0
        func skipSpace() { while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }
        /// Index just past the string starting at `i` (which holds the quote).
        func endOfString(_ start: Int) throws -> Int {
            var j = start + 1
            while j < b.count {
                switch b[j] {
                case 0x5C: j += 2
                case 0x22: return j + 1
                default: j += 1
                }
            }
            throw ScanError.malformed(start)
        }
        /// Index just past the value starting at `i`.
        func endOfValue(_ start: Int) throws -> Int {
            var j = start
            var depth = 0
            while j < b.count {
                switch b[j] {
                case 0x22: j = try endOfString(j); if depth == 0 { return j }; continue
                case 0x7B, 0x5B: depth += 1
                case 0x7D, 0x5D:
                    if depth == 0 { return j }
                    depth -= 1
                    if depth == 0 { return j + 1 }
                case 0x2C: if depth == 0 { return j }
                default: break
                }
                j += 1
            }
            if depth == 0 { return j }
            throw ScanError.malformed(start)
        }
        skipSpace()
        guard i < b.count, b[i] == 0x7B else { throw ScanError.malformed(i) }
        i += 1
        var values: [String: Range<Int>] = [:]
        skipSpace()
        if i < b.count, b[i] == 0x7D {
            self.values = [:]
            closingBrace = i
            return
        }
        while true {
            skipSpace()
            guard i < b.count, b[i] == 0x22 else { throw ScanError.malformed(i) }
            let keyEnd = try endOfString(i)
            let raw = Array(b[i..<keyEnd])
            let key: String
            if raw.contains(0x5C) {
                guard let decoded = try? JSONDecoder().decode(String.self, from: Data(raw)) else { throw ScanError.malformed(i) }
                key = decoded
            } else {
                key = String(decoding: raw.dropFirst().dropLast(), as: UTF8.self)
            }
            i = keyEnd
            skipSpace()
            guard i < b.count, b[i] == 0x3A else { throw ScanError.malformed(i) }
            i += 1
            skipSpace()
            let start = i
            var end = try endOfValue(i)
            i = end
            while end > start, [0x20, 0x0A, 0x0D, 0x09].contains(b[end - 1]) { end -= 1 }
            guard end > start else { throw ScanError.malformed(start) }
            guard values.updateValue(start..<end, forKey: key) == nil else { throw ScanError.duplicateKey(key) }
            skipSpace()
            guard i < b.count else { throw ScanError.malformed(i) }
            if b[i] == 0x2C { i += 1; continue }
            guard b[i] == 0x7D else { throw ScanError.malformed(i) }
            closingBrace = i
            break
        }
        self.values = values
    }

    /// The original bytes with `replacements` (key → new value's JSON text) put in place: an existing
    /// member's value is replaced where it stands; a new member is appended before the closing brace.
    func replacing(_ replacements: [(key: String, value: Data)]) -> Data {
        var edits: [(range: Range<Int>, text: [UInt8])] = []
        var appended: [UInt8] = []
        for (key, value) in replacements {
            if let range = values[key] {
                edits.append((range, [UInt8](value)))
            } else {
                appended += (values.isEmpty && appended.isEmpty ? [] : Array(",".utf8)) + [UInt8](JSONValue.string(key).encoded()) + [0x3A] + [UInt8](value)
            }
        }
        if !appended.isEmpty { edits.append((closingBrace..<closingBrace, appended)) }
        edits.sort { $0.range.lowerBound < $1.range.lowerBound }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + appended.count + 64)
        var at = 0
        for e in edits {
            out += bytes[at..<e.range.lowerBound]
            out += e.text
            at = e.range.upperBound
        }
        out += bytes[at...]
        return Data(out)
    }
}
