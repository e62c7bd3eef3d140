import ArgumentParser
import FedRouteData
import FedRouteEmbedding
import FedRouteFeatures
import FedRouteNumerics
import Foundation

/// `fedroute embed`: embeds queries with the native MiniLM (or the hashed encoder) and caches them.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed the queries of a data set (or a text file, one query per line) and cache the features; optionally write them as safetensors.")

    @Option(name: .long, help: "Evaluation data in any supported format (all its queries are embedded).") var data: String?
    @Option(name: .long, help: "Data format; detected when omitted.") var format: DataFormat?
    @Option(name: .long, help: "Plain text file with one query per line (instead of --data).") var text: String?
    @Option(name: .long, help: "Write the embeddings (tensor 'embeddings', rows in input order) to this .safetensors file.") var out: String?
    @OptionGroup var encoderOptions: EncoderOptions

    func validate() throws {
        guard (data == nil) != (text == nil) else { throw ValidationError("give exactly one of --data or --text") }
    }

    func run() throws {
        let texts: [String]
        if let data {
            texts = try DataOptions.load(path: data, format: format, skipInvalid: false).table.queries.map(\.text)
        } else {
            guard let raw = FileManager.default.contents(atPath: text!) else { throw ValidationError("\(text!): no such file") }
            texts = String(decoding: raw, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        }
        guard !texts.isEmpty else { throw ValidationError("no queries to embed") }
        let encoder = try encoderOptions.fittedEncoder(on: texts)
        let start = Date()
        let m = encoderOptions.features(texts, encoder: encoder)
        let seconds = Date().timeIntervalSince(start)
        Console.info(String(format: "%d queries → %d dims with %@ in %.1fs (%.1f queries/s)", m.rows, m.cols, encoder.kind, seconds, Double(m.rows) / max(seconds, 1e-9)))
        if let out {
            try SafeTensors.write(tensors: [Tensor(name: "embeddings", shape: [m.rows, m.cols], values: m.data)],
                                  metadata: ["encoder": encoder.kind, "fingerprint": encoder.fingerprint, "source": data ?? text!], to: out)
            print("wrote \(out)")
        }
    }
}
