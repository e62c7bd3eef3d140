import Foundation

extension GatewayConfiguration {
    /// `yaml` (a models.yaml) with `gateway.lambda` set to `lambda`, every other line, comment and
    /// spacing kept: the value of an existing `lambda:` key under `gateway:` is replaced (its comment
    /// stays), otherwise the key is added as the block's first line (and the block, if there is none).
    /// The result is parsed and checked before it is returned.
    public static func settingLambda(_ lambda: Double, inYAML yaml: String, source: String = "models.yaml") throws -> String {
        guard lambda.isFinite, lambda >= 0 else { throw GatewayConfigurationError(source: source, message: "λ must be a finite number ≥ 0, not \(lambda)") }
        var lines = yaml.components(separatedBy: "\n")
        let value = String(lambda)
        func indentation(_ line: String) -> Int { line.prefix { $0 == " " }.count }
        func isContent(_ line: String) -> Bool {
            let t = line.trimmingCharacters(in: .whitespaces)
            return !t.isEmpty && !t.hasPrefix("#")
        }
        if let g = lines.firstIndex(where: { $0.hasPrefix("gateway:") }) {
            guard lines[g].trimmingCharacters(in: .whitespaces) == "gateway:" || lines[g].dropFirst("gateway:".count).trimmingCharacters(in: .whitespaces).hasPrefix("#") else {
                throw GatewayConfigurationError(source: source, message: "the 'gateway:' block is written inline; write its keys one per line to set λ")
            }
            var blockIndent: Int?
            var i = g + 1
            while i < lines.count {
                let line = lines[i]
                if isContent(line) {
                    let ind = indentation(line)
                    if ind == 0 { break }
                    if blockIndent == nil { blockIndent = ind }
                    if ind == blockIndent, line.dropFirst(ind).hasPrefix("lambda:") {
                        let rest = line.dropFirst(ind + "lambda:".count)
                        let comment = rest.range(of: " #").map { String(rest[$0.lowerBound...]) } ?? ""
                        lines[i] = String(repeating: " ", count: ind) + "lambda: " + value + comment
                        return try checked(lines.joined(separator: "\n"), source: source)
                    }
                }
                i += 1
            }
            lines.insert(String(repeating: " ", count: blockIndent ?? 2) + "lambda: " + value, at: g + 1)
        } else {
            lines.insert(contentsOf: ["gateway:", "  lambda: " + value], at: 0)
        }
        return try checked(lines.joined(separator: "\n"), source: source)
    }

    static func checked(_ yaml: String, source: String) throws -> String {
        _ = try parse(yaml: yaml, source: source)
        return yaml
    }
}
