/// Parses the Python `repr` of a list of strings, e.g. `['a\\n', "b's"]`, as RouterBench stores prompts.
public enum PythonLiteral {
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var offset: Int
        public var description: String { "\(message) at character \(offset)" }
    }

    public static func parseStringList(_ text: String) throws(ParseError) -> [String] {
        let s = Array(text.unicodeScalars)
        var i = 0
        func skipSpace() { while i < s.count, s[i].properties.isWhitespace { i += 1 } }
        func fail(_ m: String) -> ParseError { ParseError(message: m, offset: i) }
        skipSpace()
        guard i < s.count, s[i] == "[" else { throw fail("expected '['") }
        i += 1
        var items: [String] = []
        skipSpace()
        if i < s.count, s[i] == "]" { i += 1; skipSpace(); if i != s.count { throw fail("trailing text") }; return [] }
        while true {
            skipSpace()
            items.append(try parseString(s, &i))
            skipSpace()
            guard i < s.count else { throw fail("unterminated list") }
            if s[i] == "," { i += 1; skipSpace(); if i < s.count, s[i] == "]" { i += 1; break }; continue }
            if s[i] == "]" { i += 1; break }
            throw fail("expected ',' or ']'")
        }
        skipSpace()
        guard i == s.count else { throw fail("trailing text after list") }
        return items
    }

    static func parseString(_ s: [Unicode.Scalar], _ i: inout Int) throws(ParseError) -> String {
        guard i < s.count, s[i] == "'" || s[i] == "\"" else { throw ParseError(message: "expected a quoted string", offset: i) }
        let quote = s[i]
        i += 1
        var out = String.UnicodeScalarView()
        while i < s.count {
            let c = s[i]
            if c == quote { i += 1; return String(out) }
            if c == "\\" {
                i += 1
                guard i < s.count else { break }
                let e = s[i]
                i += 1
                switch e {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "0": out.append("\0")
                case "a": out.append("\u{07}")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "v": out.append("\u{0B}")
                case "\\", "'", "\"": out.append(e)
                case "\n": break
                case "x", "u", "U":
                    let width = e == "x" ? 2 : (e == "u" ? 4 : 8)
                    guard i + width <= s.count,
                          let v = UInt32(String(String.UnicodeScalarView(s[i..<(i + width)])), radix: 16),
                          let scalar = Unicode.Scalar(v)
                    else { throw ParseError(message: "bad \\\(e) escape", offset: i) }
                    out.append(scalar)
                    i += width
                default:
                    out.append("\\"); out.append(e)
                }
                continue
            }
            out.append(c)
            i += 1
        }
        throw ParseError(message: "unterminated string", offset: i)
    }
}
