import Foundation

/// The JSON Flower writes for object bodies (`json.dumps` with its default separators and
/// `ensure_ascii`), written and read with key order kept: the order is part of every object id.
enum PythonJSON: Equatable {
    case string(String)
    case int(Int)
    case array([PythonJSON])
    case object([(String, PythonJSON)])

    static func == (a: PythonJSON, b: PythonJSON) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// Bytes as `json.dumps(value).encode()` gives them.
    var encoded: Data { Data(text.utf8) }

    var text: String {
        switch self {
        case .string(let s): Self.quote(s)
        case .int(let n): String(n)
        case .array(let items): "[" + items.map(\.text).joined(separator: ", ") + "]"
        case .object(let items): "{" + items.map { Self.quote($0.0) + ": " + $0.1.text }.joined(separator: ", ") + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for unit in s.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
            default: out += String(format: "\\u%04x", unit)
            }
        }
        return out + "\""
    }

    /// Parses an object body; nesting and size are bounded by the input (objects are size-checked).
    static func parse(_ data: Data) throws(FlowerError) -> PythonJSON {
        var p = Parser(bytes: [UInt8](data))
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == p.bytes.count else { throw .message("trailing bytes after JSON at offset \(p.i)") }
        return v
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() { while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 } }

        mutating func expect(_ c: UInt8) throws(FlowerError) {
            skipSpace()
            guard i < bytes.count, bytes[i] == c else { throw .message("JSON: expected '\(Character(Unicode.Scalar(c)))' at offset \(i)") }
            i += 1
        }

        mutating func value(depth: Int) throws(FlowerError) -> PythonJSON {
            guard depth < 16 else { throw .message("JSON nested too deeply") }
            skipSpace()
            guard i < bytes.count else { throw .message("JSON ends early") }
            switch bytes[i] {
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "["):
                i += 1
                var items: [PythonJSON] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw .message("JSON array not closed") }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    try expect(UInt8(ascii: ","))
                }
            case UInt8(ascii: "{"):
                i += 1
                var items: [(String, PythonJSON)] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(items) }
                while true {
                    skipSpace()
                    let key = try string()
                    try expect(UInt8(ascii: ":"))
                    items.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < bytes.count else { throw .message("JSON object not closed") }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(items) }
                    try expect(UInt8(ascii: ","))
                }
            default:
                let start = i
                if bytes[i] == UInt8(ascii: "-") { i += 1 }
                while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }
                guard let s = String(bytes: bytes[start..<i], encoding: .ascii), let n = Int(s) else {
                    throw .message("JSON: unexpected value at offset \(start)")
                }
                return .int(n)
            }
        }

        mutating func string() throws(FlowerError) -> String {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw .message("JSON: expected a string at offset \(i)") }
            i += 1
            var units: [UInt16] = []
            var raw: [UInt8] = []
            func flush() { units += String(decoding: raw, as: UTF8.self).utf16; raw.removeAll() }
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                switch c {
                case UInt8(ascii: "\""):
                    flush()
                    return String(decoding: units, as: UTF16.self)
                case UInt8(ascii: "\\"):
                    flush()
                    guard i < bytes.count else { throw .message("JSON string ends in an escape") }
                    let e = bytes[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "n"): units.append(0x0A)
                    case UInt8(ascii: "r"): units.append(0x0D)
                    case UInt8(ascii: "t"): units.append(0x09)
                    case UInt8(ascii: "b"): units.append(0x08)
                    case UInt8(ascii: "f"): units.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard i + 4 <= bytes.count, let s = String(bytes: bytes[i..<(i + 4)], encoding: .ascii), let u = UInt16(s, radix: 16) else {
                            throw .message("JSON: bad \\u escape at offset \(i)")
                        }
                        units.append(u)
                        i += 4
                    default: units.append(UInt16(e))
                    }
                default: raw.append(c)
                }
            }
            throw .message("JSON string not closed")
        }
    }
}
