@testable import FedRouteData
import Foundation
import Testing

func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func write(_ text: String, _ dir: String, _ name: String) throws -> String {
    let path = (dir as NSString).appendingPathComponent(name)
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

let routerBenchHeader = ",sample_id,prompt,eval_name,a,b,a|model_response,b|model_response,a|total_cost,b|total_cost,oracle_model_to_route_to\n"

@Suite struct PythonLiteralTests {
    @Test func parsesEscapesAndQuotes() throws {
        #expect(try PythonLiteral.parseStringList(#"['a\nb', "it's", 'x\'y', '\\\u00e9\x41']"#) == ["a\nb", "it's", "x'y", "\\éA"])
        #expect(try PythonLiteral.parseStringList("[]") == [])
        #expect(throws: PythonLiteral.ParseError.self) { try PythonLiteral.parseStringList("['open") }
        #expect(throws: PythonLiteral.ParseError.self) { try PythonLiteral.parseStringList("'no list'") }
    }
}

@Suite struct RouterBenchLoaderTests {
    @Test func loadsSparseRowsAndDuplicates() throws {
        let dir = try temporaryDirectory()
        _ = try write(routerBenchHeader + """
        0,q1,"['Hello\\n', 'world']",t1,1.0,0.0,x,y,0.01,0.001,a
        1,q2,"['Second']",t1,nan,1.0,x,y,0.02,0.002,b
        2,q1,"['Other prompt']",t2,0.5,,x,y,0.03,0.003,a

        """, dir, "t_train.csv")
        var report = LoadReport()
        let t = try RouterBenchLoader.load(path: dir, options: LoadOptions(), report: &report)
        #expect(t.models == ["a", "b"])
        #expect(t.queries.map(\.id) == ["q1", "q2", "q1#2"])
        #expect(t.queries[0].text == "Hello\n\n\nworld" && t.queries[0].split == .train)
        #expect(t.score(0, 0) == 1 && t.cost(0, 1) == 0.001)
        #expect(!t.isObserved(1, 0) && t.isObserved(1, 1))
        #expect(!t.isObserved(2, 1) && t.score(2, 0) == 0.5)
        #expect(report.notes.contains { $0.contains("1 repeated query ids were made unique") && $0.contains("1 with a different prompt") })
    }

    @Test(arguments: [
        ("0,q1,\"['x']\",t,1.7,0,r,r,0.1,0.1,a\n", "row 2: score", DataError.Kind.invalidValue),
        ("0,q1,\"['x']\",t,1,0,r,r,-1,0.1,a\n", "cost", .invalidValue),
        ("0,q1,\"['x']\",t,1,0,r,r,0.1\n", "fields", .malformed),
        ("0,q1,\"not a list\",t,1,0,r,r,0.1,0.1,a\n", "prompt", .malformed),
        ("0,q1,\"['x']\",t,abc,0,r,r,0.1,0.1,a\n", "score", .invalidValue),
    ])
    func malformedRowsNameFileAndLine(_ c: (String, String, DataError.Kind)) throws {
        let dir = try temporaryDirectory()
        let path = try write(routerBenchHeader + "0,ok,\"['fine']\",t,1,0,r,r,0.1,0.1,a\n" + c.0, dir, "bad_test.csv")
        var report = LoadReport()
        do {
            _ = try RouterBenchLoader.load(path: path, options: LoadOptions(), report: &report)
            Issue.record("expected an error")
        } catch let e as DataError {
            #expect(e.kind == c.2)
            #expect(e.file == path && e.line == 3)
            #expect(e.description.contains("bad_test.csv:3"))
        }
        // With --skip-invalid the good row loads and the bad one is reported, not lost silently.
        let t = try RouterBenchLoader.load(path: path, options: LoadOptions(invalidRows: .skip), report: &report)
        #expect(t.queryCount == 1 && report.skipped.count == 1)
    }

    @Test func missingFileAndColumns() throws {
        #expect(throws: DataError.self) { try DatasetLoader.load(path: "/nonexistent/fedroute") }
        let dir = try temporaryDirectory()
        let path = try write("sample_id,prompt\nq,x\n", dir, "x.csv")
        do { _ = try DatasetLoader.load(path: path); Issue.record("expected error") } catch let e as DataError { #expect(e.kind == .missingColumn) }
    }
}

@Suite struct NativeFormatTests {
    @Test func roundTripAndErrors() throws {
        let dir = try temporaryDirectory()
        let path = try write("""
        {"id":"1","query":"hi","task":"t","split":"train","models":{"m1":{"score":1,"cost":0.5},"m2":{"score":null}}}
        {"id":"2","query":"yo","task":"u","models":{"m2":{"score":0.25,"cost":0.1}}}

        """, dir, "d.jsonl")
        let loaded = try DatasetLoader.load(path: path)
        #expect(loaded.format == .native && loaded.table.models == ["m1", "m2"])
        #expect(loaded.table.score(0, 0) == 1 && !loaded.table.isObserved(0, 1) && loaded.table.cost(1, 1) == 0.1)
        let out = (dir as NSString).appendingPathComponent("out.jsonl")
        try NativeFormat.write(loaded.table, to: out)
        #expect(try DatasetLoader.load(path: out).table == loaded.table)

        for (line, kind) in [
            (#"{"id":"1","query":"q","task":"t","models":{"m":{"score":0.5}}}"#, DataError.Kind.invalidValue),
            (#"{"id":"1","query":"q","task":"t","models":{"m":{"score":2,"cost":1}}}"#, .invalidValue),
            (#"{"id":"1","query":"q","models":{}}"#, .malformed),
            (#"{"id":"1","query":"q","task":"t","models":{}}"# + "\n" + #"{"id":"1","query":"q","task":"t","models":{}}"#, .duplicate),
        ] {
            let p = try write(line + "\n", dir, "bad.jsonl")
            do { _ = try DatasetLoader.load(path: p); Issue.record("expected \(kind)") } catch let e as DataError {
                #expect(e.kind == kind)
                #expect(e.line != nil && e.file == p)
            }
        }
    }
}

@Suite struct OtherFormatTests {
    @Test func llmRouterJoinsTasksPricesAndDeduplicates() throws {
        let dir = try temporaryDirectory()
        _ = try write(#"{"m1":{"input_price":1,"output_price":2},"m2":{"input_price":0.1,"output_price":0.1}}"#, dir, "default_llm.json")
        _ = try write(#"[{"question":"aaaa","scores":{"m1":1,"m2":0}},{"question":"shared","scores":{"m1":0,"m2":1}}]"#, dir, "dc_train.json")
        _ = try write(#"[{"question":"shared","scores":{"m1":1,"m2":1}}]"#, dir, "dc_test.json")
        _ = try write(#"{"task_name":"tA","query":"aaaa"}"# + "\n" + #"{"task_name":"tB","query":"shared"}"# + "\n", dir, "q_train.jsonl")
        _ = try write(#"{"task_name":"tB","query":"shared"}"# + "\n", dir, "q_test.jsonl")
        let loaded = try DatasetLoader.load(path: dir, options: LoadOptions(assumedOutputTokens: 10))
        #expect(loaded.format == .llmrouter)
        let t = loaded.table
        #expect(t.queryCount == 2 && t.queries.map(\.task) == ["tA", "tB"] && t.queries.map(\.split) == [.train, .test])
        #expect(abs(t.cost(0, 0)! - (1 * 1 + 2 * 10) / 1e6) < 1e-15)  // "aaaa" ≈ 1 token
        #expect(loaded.report.notes.contains { $0.contains("1 train questions") })
    }

    @Test func routerDCProxyCostsAndSplits() throws {
        let dir = try temporaryDirectory()
        _ = try write(#"[{"question":"q","scores":{"org/Model-7B":0.3,"x-8b-chat":1}}]"#, dir, "gsm8k-train.json")
        _ = try write(#"[{"question":"q2","scores":{"org/Model-7B":0.5,"x-8b-chat":0}}]"#, dir, "mmlu.json")
        let t = try DatasetLoader.load(path: dir).table
        #expect(t.queries.map(\.task) == ["gsm8k", "mmlu"] && t.queries[0].split == .train && t.queries[1].split == nil)
        #expect(RouterDCLoader.parameterCount("meta-llama/Meta-Llama-3-8B") == 8)
        #expect(RouterDCLoader.parameterCount("cognitivecomputations/dolphin-2.6-mistral-7b") == 7)
        #expect(t.cost(0, 0)! < t.cost(0, 1)!)
    }

    @Test func routeLLMBooleans() throws {
        let dir = try temporaryDirectory()
        _ = try write("prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\n\"Q1\nA. x\",True,False\n", dir, "mmlu/mmlu_x.csv")
        _ = try write("prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\nQ2,maybe,True\n", dir, "gsm8k_responses.csv")
        do { _ = try DatasetLoader.load(path: dir); Issue.record("expected error") } catch let e as DataError {
            #expect(e.kind == .invalidValue && e.line == 2 && e.file!.hasSuffix("gsm8k_responses.csv"))
        }
    }

    @Test func splitIsSeededAndRespectsSourceSplit() throws {
        var t = EvaluationTable(models: ["m"])
        for i in 0..<100 { try t.append(Query(id: "\(i)", text: "t\(i)", task: "x"), cells: [0: (1, 0.1)]) }
        let a = t.trainTestSplit(testFraction: 0.25, seed: 3), b = t.trainTestSplit(testFraction: 0.25, seed: 3)
        #expect(a.test.queryCount == 25 && a.test == b.test && a.train.queryCount == 75)
        #expect(a.test != t.trainTestSplit(testFraction: 0.25, seed: 4).test)
    }
}

@Suite struct SharedDataTests {
    static let shared = "../shared/data"

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "../shared/data/routerbench-3task")))
    func bundledDataSetsLoad() throws {
        let rb = try DatasetLoader.load(path: "\(Self.shared)/routerbench-3task")
        // 3,178 rows, of which 2 mbpp training prompts repeat test prompts and are dropped.
        #expect(rb.table.queryCount == 3176 && rb.table.modelCount == 11)
        #expect(rb.report.notes.contains { $0.contains("2 training rows whose prompt is also a test query were dropped") })
        #expect(rb.table.queries.filter { $0.split == .test }.count == 953)
        let llm = try DatasetLoader.load(path: "\(Self.shared)/llmrouter-9model")
        #expect(llm.table.modelCount == 9 && llm.table.queries.filter { $0.split == .test }.count == 500)
        let dc = try DatasetLoader.load(path: "\(Self.shared)/routerdc-7model")
        #expect(dc.table.modelCount == 7 && dc.table.queryCount > 20_000)
        let rl = try DatasetLoader.load(path: "\(Self.shared)/routellm-pair")
        #expect(rl.table.modelCount == 2 && rl.table.queryCount == 14_042 + 1_319)
    }
}

/// Silent loss and leakage in the loaders (issue 15, items 7, 8 and 11).
@Suite struct LoaderHardeningTests {
    @Test func duplicatedModelColumnsAreAnErrorAndCostlessModelsANote() throws {
        let dir = try temporaryDirectory()
        let duplicated = ",sample_id,prompt,eval_name,a,a,a|total_cost\n0,q1,\"['x']\",t,1,0,0.1\n"
        let file = try write(duplicated, dir, "d_train.csv")
        var report = LoadReport()
        #expect { _ = try RouterBenchLoader.load(path: file, options: LoadOptions(), report: &report) } throws: { error in
            (error as? DataError)?.kind == .duplicate && "\(error)".contains("'a' appears twice") && "\(error)".contains(file)
        }
        let costless = ",sample_id,prompt,eval_name,a,b,a|total_cost,c|total_cost\n0,q1,\"['x']\",t,1,0,0.1,0.2\n"
        let other = try write(costless, try temporaryDirectory(), "c_train.csv")
        let t = try RouterBenchLoader.load(path: other, options: LoadOptions(), report: &report)
        #expect(t.models == ["a"])
        #expect(report.notes.contains { $0.contains("'b' (no '|total_cost' column)") && $0.contains("'c|total_cost' (no score column)") })
    }

    @Test func exactDuplicatesAreDroppedAndTestPromptsNeverLeakIntoTraining() throws {
        let dir = try temporaryDirectory()
        _ = try write(routerBenchHeader + """
        0,q1,"['Same row']",t,1.0,0.0,x,y,0.01,0.001,a
        1,q1,"['Same row']",t,1.0,0.0,x,y,0.01,0.001,a
        2,q1,"['Same row']",t,0.0,0.0,x,y,0.01,0.001,a
        3,q2,"['Also in test']",t,1.0,1.0,x,y,0.01,0.001,a
        4,q3,"['Only train']",t,1.0,1.0,x,y,0.01,0.001,a

        """, dir, "t_train.csv")
        _ = try write(routerBenchHeader + """
        0,q9,"['Also in test']",t,0.0,1.0,x,y,0.01,0.001,b

        """, dir, "t_test.csv")
        var report = LoadReport()
        let t = try RouterBenchLoader.load(path: dir, options: LoadOptions(), report: &report)
        // q1 once (its exact repeat dropped), its re-scored copy renamed, q2's train copy dropped.
        #expect(t.queries.map(\.id) == ["q9", "q1", "q1#2", "q3"])
        #expect(report.notes.contains { $0.contains("1 rows repeating an earlier row exactly") })
        #expect(report.notes.contains { $0.contains("1 with the same prompt but different scores") })
        #expect(report.notes.contains { $0.contains("1 training rows whose prompt is also a test query were dropped") })
        let split = t.trainTestSplit(testFraction: 0.2, seed: 0)
        let testTexts = Set(split.test.queries.map(\.text))
        #expect(!split.train.queries.contains { testTexts.contains($0.text) })
    }

    @Test func overlongQueriesAreInvalidRowsWithTheirLine() throws {
        let dir = try temporaryDirectory()
        let long = String(repeating: "word ", count: 300)
        _ = try write(routerBenchHeader + """
        0,q1,"['short']",t,1.0,0.0,x,y,0.01,0.001,a
        1,q2,"['\(long)']",t,1.0,0.0,x,y,0.01,0.001,a

        """, dir, "t_train.csv")
        var report = LoadReport()
        #expect { _ = try RouterBenchLoader.load(path: dir, options: LoadOptions(maxQueryBytes: 1_000), report: &report) } throws: { error in
            "\(error)".contains("t_train.csv:3") && "\(error)".contains("the limit is 1000 bytes")
        }
        let t = try RouterBenchLoader.load(path: dir, options: LoadOptions(invalidRows: .skip, maxQueryBytes: 1_000), report: &report)
        #expect(t.queryCount == 1 && report.skipped.count == 1 && report.skipped[0].line == 3)
    }

    /// Issue 15, item 11: invalid UTF-8 named the file only.
    @Test func invalidUTF8NamesItsLine() throws {
        let dir = try temporaryDirectory()
        var bytes = Data((routerBenchHeader + "0,q1,\"['fine']\",t,1.0,0.0,x,y,0.01,0.001,a\n1,q2,\"['bad ").utf8)
        bytes.append(contentsOf: [0xC3, 0x28])
        bytes.append(contentsOf: Data("']\",t,1.0,0.0,x,y,0.01,0.001,a\n".utf8))
        let path = (dir as NSString).appendingPathComponent("u_train.csv")
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect { _ = try DatasetLoader.load(path: path) } throws: { error in
            (error as? DataError)?.line == 3 && "\(error)".contains("not valid UTF-8 (byte 13 of the line")
        }
    }
}
