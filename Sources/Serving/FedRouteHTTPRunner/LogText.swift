/// Caller-chosen text (a header, a model name, a client id) made safe to log or to keep: bounded in
/// length, with control characters, quotes and backslashes escaped so that it cannot forge a log
/// line or a field.
public enum LogText {
    /// Characters kept before the text is cut (and `…(N more)` appended).
    public static let defaultLimit = 200

    public static func escape(_ text: some StringProtocol, limit: Int = defaultLimit) -> String {
        var out = ""
        var kept = 0
        for scalar in text.unicodeScalars {
            guard kept < limit else { break }
            kept += 1
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029:
                out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        let total = text.unicodeScalars.count
        if total > kept { out += "…(\(total - kept) more)" }
        return out
    }
}
