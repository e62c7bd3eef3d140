import ArgumentParser
import FedRouteData
import FedRouteGateway
import FedRouteGatewayStore
import Foundation
import Logging

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Convert and summarise evaluation data.",
        subcommands: [Import.self, Inspect.self, Synthesize.self, ExportFeedback.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Convert any supported format to fedroute's native JSONL.")

        @Argument(help: "Input file or folder.") var input: String
        @Option(name: .long, help: "Input format; detected when omitted.") var format: DataFormat?
        @Option(name: .long, help: "Output .jsonl file.") var out: String
        @Flag(name: .long, help: "Skip (and count) invalid rows instead of stopping.") var skipInvalid = false
        @Option(name: .long, help: "Longest query accepted, in UTF-8 bytes (a longer one is an invalid row).") var maxQueryBytes = LoadOptions.defaultMaxQueryBytes

        func run() throws {
            try OutputPath.checkWritable(file: out)
            let loaded = try DatasetLoader.load(path: input, format: format, options: LoadOptions(invalidRows: skipInvalid ? .skip : .fail, maxQueryBytes: maxQueryBytes))
            try NativeFormat.write(loaded.table, to: out)
            for note in loaded.report.notes { print("note: \(note)") }
            for e in loaded.report.skipped { print("skipped: \(e)") }
            print("wrote \(loaded.table.queryCount) queries × \(loaded.table.modelCount) models (\(loaded.table.observed.filter { $0 }.count) observed cells) to \(out)")
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Summarise a data set: queries, models, tasks, coverage and means per model.")

        @Argument(help: "Input file or folder.") var input: String
        @Option(name: .long, help: "Input format; detected when omitted.") var format: DataFormat?
        @Flag(name: .long, help: "Skip (and count) invalid rows instead of stopping.") var skipInvalid = false
        @Option(name: .long, help: "Longest query accepted, in UTF-8 bytes (a longer one is an invalid row).") var maxQueryBytes = LoadOptions.defaultMaxQueryBytes
        @Flag(name: .long, help: "Print JSON instead of a table (with the loader's notes and skipped rows).") var json = false

        func run() throws {
            let loaded = try DatasetLoader.load(path: input, format: format, options: LoadOptions(invalidRows: skipInvalid ? .skip : .fail, maxQueryBytes: maxQueryBytes))
            let s = DatasetSummary(loaded.table)
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try e.encode(InspectReport(summary: s, report: loaded.report)), as: UTF8.self))
                return
            }
            print("\(input) (\(loaded.format.rawValue))")
            print("queries: \(s.queries)   models: \(s.models)   fully labelled queries: \(s.fullyObserved)")
            print("splits: " + s.splits.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            print("tasks (\(s.tasks.count)): " + s.tasks.sorted { $0.value > $1.value }.prefix(20).map { "\($0.key) \($0.value)" }.joined(separator: ", ") + (s.tasks.count > 20 ? ", …" : ""))
            let w = max(5, s.perModel.map(\.model.count).max() ?? 5)
            print("\n" + "model".padding(toLength: w, withPad: " ", startingAt: 0) + "  observed  coverage  mean score   mean cost $")
            for m in s.perModel {
                print(m.model.padding(toLength: w, withPad: " ", startingAt: 0)
                      + String(format: "  %8d  %7.1f%%  %10@  %12@", m.observed, m.coverage * 100,
                               m.meanScore.map { String(format: "%.4f", $0) } ?? "—", m.meanCost.map { String(format: "%.4e", $0) } ?? "—"))
            }
            for note in loaded.report.notes { print("note: \(note)") }
            if !loaded.report.skipped.isEmpty {
                print("skipped \(loaded.report.skipped.count) invalid rows:")
                for e in loaded.report.skipped.prefix(20) { print("  \(e)") }
            }
        }
    }

    /// `data inspect --json`: the summary's fields, plus `notes` and `skipped` from the loader.
    struct InspectReport: Encodable {
        var summary: DatasetSummary
        var report: LoadReport

        enum CodingKeys: String, CodingKey { case notes, skipped }

        func encode(to encoder: any Encoder) throws {
            try summary.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(report.notes, forKey: .notes)
            try c.encode(report.skipped, forKey: .skipped)
        }
    }

    struct Synthesize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a synthetic evaluation table with known structure (native JSONL), e.g. for simulations at scale.",
            discussion: """
                Each query belongs to one of T topics; model t (a specialist) answers its own topic with probability 0.9 and \
                others with 0.2, and a last, expensive generalist answers everything with 0.7. Costs grow geometrically with \
                the model index (±10 % noise). Every cell is observed; the same seed writes the same file.
                """)

        /// The most queries one file may hold (about 0.5 KB each).
        static let maximumQueries = 10_000_000

        @Option(name: .long, help: "Number of queries.") var queries = 100_000
        @Option(name: .long, help: "Number of topics (and specialist models; one generalist is added).") var topics = 10
        @Option(name: .long, help: "Random seed.") var seed: UInt64 = 0
        @Option(name: .long, help: "Output .jsonl file.") var out: String

        func validate() throws {
            guard (1...Self.maximumQueries).contains(queries) else { throw ValidationError("--queries must be in 1…\(Self.maximumQueries)") }
            guard (1...100).contains(topics) else { throw ValidationError("--topics must be in 1…100") }
        }

        func run() throws {
            try OutputPath.checkWritable(file: out)
            let table = try SyntheticData.table(queries: queries, topics: topics, seed: seed)
            try NativeFormat.write(table, to: out)
            print("wrote \(table.queryCount) synthetic queries × \(table.modelCount) models (\(topics) topics, seed \(seed)) to \(out)")
        }
    }

    struct ExportFeedback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-feedback",
            abstract: "Turn the gateway's rated requests into native JSONL evaluation data for the next federated round.",
            discussion: """
                Each answered request with a feedback score becomes one observed cell (query text, answering model) → \
                (score, price-table cost). Requests with the same text share one query row; repeated (text, model) \
                pairs are averaged. Unrated, failed and interrupted requests are counted and left out.
                """)

        @Option(name: .long, help: "The gateway's database (its --db): an SQLite file or a postgres:// URL.") var db: String
        @Option(name: .long, help: "Output .jsonl file.") var out: String
        @Option(name: .long, help: "Task name given to every exported query.") var task = "live"
        @Option(name: .long, help: "Split written on every row (train or test); none when omitted.") var split: String?
        @Option(name: .long, help: "Only requests at or after this time (ISO 8601, e.g. 2026-11-01T00:00:00Z).") var since: String?

        func run() async throws {
            var sinceDate: Date?
            if let since {
                guard let d = ISO8601DateFormatter().date(from: since) else { throw ValidationError("--since '\(since)' is not an ISO 8601 time such as 2026-11-01T00:00:00Z") }
                sinceDate = d
            }
            var rowSplit: Split?
            if let split {
                guard let s = Split(rawValue: split) else { throw ValidationError("--split must be train or test") }
                rowSplit = s
            }
            let logger = Logger(label: "fedroute.export", factory: { _ in SwiftLogNoOpLogHandler() })
            let requests = try await GatewayStores.withStore(db, create: false, logger: logger) { try await $0.requests(since: sinceDate) }
            let (table, report) = try FeedbackExport.table(from: requests, task: task, split: rowSplit)
            try NativeFormat.write(table, to: out)
            print("\(report.requests) requests: \(report.exportedCells) rated answers exported as \(report.queries) queries × \(table.modelCount) models to \(out)")
            print("left out: \(report.unrated) unrated, \(report.notAnswered) not answered, \(report.interrupted) interrupted; \(report.averaged) repeated ratings averaged")
        }
    }
}
