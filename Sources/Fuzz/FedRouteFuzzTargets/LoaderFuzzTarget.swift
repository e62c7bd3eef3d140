import CSV
import FedRouteData
import Foundation

/// The file loaders, called as `fedroute data inspect` calls them: once stopping at the first invalid
/// row and once skipping and counting invalid rows (with a small query limit so that it is reached).
enum LoaderFuzzTarget {
    static func run(_ input: Data, in scratch: FuzzScratch, fileName: String, format: DataFormat) {
        guard let path = try? scratch.write(input, named: fileName) else { return }
        for options in [LoadOptions(), LoadOptions(invalidRows: .skip, maxQueryBytes: 64)] {
            guard let loaded = try? DatasetLoader.load(path: path, format: format, options: options) else { continue }
            // What every command does next with a loaded table.
            _ = loaded.table.trainTestSplit(testFraction: 0.2, seed: 1)
            _ = DatasetSummary(loaded.table)
        }
    }

    /// The first two queries of each bundled RouterBench file (without the long response columns) and a small
    /// hand-written file with a quoted, multi-line prompt (RouterBench prompts are Python list literals).
    static func csvSeeds(sharedData: String?) -> [FuzzSeed] {
        var seeds = [FuzzSeed(name: "tiny.csv", data: Data("""
        sample_id,prompt,eval_name,gpt-4,gpt-4|total_cost,mistral-7b,mistral-7b|total_cost
        a.1,"['What is ""2+2""?
        Answer briefly.']",arc_challenge,1.0,0.0031,0.0,0.0002
        a.2,['Name a prime'],arc_challenge,1,0.002,1,0.0001

        """.utf8))]
        guard let sharedData else { return seeds }
        let folder = sharedData + "/routerbench-3task"
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() where name.hasSuffix(".csv") {
            guard let data = FileManager.default.contents(atPath: folder + "/" + name),
                  let compact = firstRows(String(decoding: data, as: UTF8.self), rows: 2) else { continue }
            seeds.append(FuzzSeed(name: name, data: compact))
        }
        return seeds
    }

    /// A synthetic table written as native JSONL and the first queries of the bundled RouterBench
    /// data converted to it.
    static func jsonlSeeds(sharedData: String?) throws -> [FuzzSeed] {
        let scratch = try FuzzScratch()
        defer { scratch.remove() }
        var seeds: [FuzzSeed] = []
        let synthetic = scratch.directory + "/synthetic.jsonl"
        try NativeFormat.write(try SyntheticData.table(queries: 6, seed: 3), to: synthetic)
        seeds.append(FuzzSeed(name: "synthetic.jsonl", data: try Data(contentsOf: URL(fileURLWithPath: synthetic))))
        if let sharedData, let csv = csvSeeds(sharedData: sharedData).dropFirst().first {
            let source = try scratch.write(csv.data, named: csv.name)
            if let table = try? DatasetLoader.load(path: source, format: .routerbench, options: LoadOptions(invalidRows: .skip)).table {
                let converted = scratch.directory + "/routerbench.jsonl"
                try NativeFormat.write(table, to: converted)
                seeds.append(FuzzSeed(name: "routerbench.jsonl", data: head(try Data(contentsOf: URL(fileURLWithPath: converted)), lines: 3, bytes: 4096)))
            }
        }
        return seeds
    }

    /// The header and first `rows` records of a RouterBench CSV, without its `|model_response` columns, re-quoted.
    static func firstRows(_ text: String, rows: Int) -> Data? {
        guard let reader = try? CSVReader(string: text, hasHeaderRow: true), let header = reader.headerRow else { return nil }
        let keep = header.indices.filter { !header[$0].hasSuffix("|model_response") }
        func line(_ fields: [String]) -> String { fields.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ",") + "\n" }
        var out = [line(keep.map { header[$0] })]
        while out.count <= rows, let row = reader.next() { out.append(line(keep.map { $0 < row.count ? row[$0] : "" })) }
        return Data(out.joined().utf8)
    }

    /// The first `lines` lines of `data`, cut at a line end so that the total stays within `bytes` (at least one line).
    static func head(_ data: Data, lines: Int, bytes: Int) -> Data {
        var end = data.startIndex, taken = 0
        while taken < lines, let newline = data[end...].firstIndex(of: 0x0A) {
            if taken > 0, newline - data.startIndex >= bytes { break }
            end = newline + 1
            taken += 1
        }
        return data[data.startIndex..<(taken == 0 ? min(data.endIndex, data.startIndex + bytes) : end)]
    }
}
