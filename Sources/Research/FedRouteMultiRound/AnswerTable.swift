import Foundation
import FedRouteData

/// Errors from building multi-round tables, descriptors, policies or experiments.
public struct MultiRoundError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An offline evaluation table with every model's stored answer, for multi-round routing.
///
/// Each row is a query on which every model was evaluated and answered. A model's answer is reduced
/// to an *answer class*: for a multiple-choice prompt (one that ends with "Print only a single choice
/// from "A" or "B" …") the first standalone choice letter in the response, so that two models agree
/// exactly when they picked the same option; for open-ended prompts (code) and responses with no
/// choice letter, a class of its own (`-1`), which agrees with nothing. Agreement is all a policy may
/// see of an answer; the score is only read to grade the final answer.
public struct AnswerTable: Sendable {
    public let models: [String]
    /// Task names, sorted; `taskOf` indexes into this.
    public let tasks: [String]
    public let queries: [Query]
    public let taskOf: [Int]
    /// Options of a multiple-choice query; 0 for open-ended.
    public let choices: [Int]
    /// Row-major `rows × models` quality in [0, 1].
    public let scores: [Double]
    /// Row-major `rows × models` USD.
    public let costs: [Double]
    /// Row-major `rows × models` answer class: the option index (0 = "A"), or -1 (no option; agrees with nothing).
    public let answers: [Int]

    public var rowCount: Int { queries.count }
    public var modelCount: Int { models.count }

    @inlinable public func index(_ row: Int, _ model: Int) -> Int { row * models.count + model }
    public func score(_ row: Int, _ model: Int) -> Double { scores[index(row, model)] }
    public func cost(_ row: Int, _ model: Int) -> Double { costs[index(row, model)] }
    public func answer(_ row: Int, _ model: Int) -> Int { answers[index(row, model)] }

    /// True when both models gave the same option (never for open-ended or unparseable answers).
    public func agree(_ row: Int, _ a: Int, _ b: Int) -> Bool {
        let x = answer(row, a)
        return x >= 0 && x == answer(row, b)
    }

    init(models: [String], tasks: [String], queries: [Query], taskOf: [Int], choices: [Int], scores: [Double], costs: [Double], answers: [Int]) {
        self.models = models
        self.tasks = tasks
        self.queries = queries
        self.taskOf = taskOf
        self.choices = choices
        self.scores = scores
        self.costs = costs
        self.answers = answers
    }

    /// Rows of `table` where every model has a score and a stored answer; `responses` is row-aligned
    /// with `table` (as `RouterBenchLoader.loadWithResponses` returns it). `dropped` counts the rest.
    public init(table: EvaluationTable, responses: [[String?]]) throws {
        guard responses.count == table.queryCount else {
            throw MultiRoundError("responses have \(responses.count) rows, the table \(table.queryCount)")
        }
        let m = table.modelCount
        var queries: [Query] = [], choices: [Int] = [], scores: [Double] = [], costs: [Double] = [], answers: [Int] = []
        for r in 0..<table.queryCount {
            guard responses[r].count == m else {
                throw MultiRoundError("row \(r) (\(table.queries[r].id)) has \(responses[r].count) responses for \(m) models")
            }
            guard table.isFullyObserved(row: r), responses[r].allSatisfy({ $0 != nil }) else { continue }
            let query = table.queries[r]
            let options = AnswerExtraction.options(inPrompt: query.text)
            queries.append(query)
            choices.append(options.count)
            for j in 0..<m {
                scores.append(table.score(r, j)!)
                costs.append(table.cost(r, j)!)
                answers.append(AnswerExtraction.choice(in: responses[r][j]!, options: options) ?? -1)
            }
        }
        guard !queries.isEmpty else { throw MultiRoundError("no query has a score and a stored answer for every model") }
        let tasks = Array(Set(queries.map(\.task))).sorted()
        let taskIndex = Dictionary(uniqueKeysWithValues: tasks.enumerated().map { ($1, $0) })
        self.init(models: table.models, tasks: tasks, queries: queries, taskOf: queries.map { taskIndex[$0.task]! },
                  choices: choices, scores: scores, costs: costs, answers: answers)
        dropped = table.queryCount - queries.count
    }

    /// Source rows left out because a score or an answer was missing.
    public private(set) var dropped = 0

    /// The same rows over the named models only, in the given order.
    public func selecting(models names: [String]) throws -> AnswerTable {
        let columns = try names.map { name in
            guard let j = models.firstIndex(of: name) else { throw MultiRoundError("unknown model '\(name)'; the table has \(models.joined(separator: ", "))") }
            return j
        }
        guard Set(columns).count == columns.count else { throw MultiRoundError("a model is named twice in \(names)") }
        func gather<T>(_ a: [T]) -> [T] { (0..<rowCount).flatMap { r in columns.map { a[r * modelCount + $0] } } }
        return AnswerTable(models: names, tasks: tasks, queries: queries, taskOf: taskOf, choices: choices,
                           scores: gather(scores), costs: gather(costs), answers: gather(answers))
    }

    /// Row indices whose source file marked them as `split`.
    public func rowIndices(split: Split) -> [Int] { (0..<rowCount).filter { queries[$0].split == split } }
}

/// Reduces stored responses to comparable answers.
public enum AnswerExtraction {
    /// The option letters a multiple-choice prompt asks for: the quoted single capital letters of its
    /// last "single choice" instruction (e.g. `Print only a single choice from "A" or "B" or "C"`);
    /// empty for an open-ended prompt.
    public static func options(inPrompt text: String) -> [Character] {
        guard let range = text.range(of: "single choice", options: [.backwards, .caseInsensitive]) else { return [] }
        let tail = Array(text[range.upperBound...].prefix(200))
        var letters: [Character] = []
        var i = 0
        while i + 2 < tail.count {
            if tail[i] == "\"", tail[i + 1].isUppercase, tail[i + 1].isASCII, tail[i + 2] == "\"" {
                if !letters.contains(tail[i + 1]) { letters.append(tail[i + 1]) }
                i += 3
            } else {
                i += 1
            }
        }
        return letters.count >= 2 ? letters : []
    }

    /// The index in `options` of the first option letter standing alone in `response` (not part of a
    /// word: `"C"`, `"B\n"`, `"A) Jeffrey"`, `"(D)"`); nil when there is none or the prompt is open-ended.
    public static func choice(in response: String, options: [Character]) -> Int? {
        guard !options.isEmpty else { return nil }
        let s = Array(response)
        for (i, c) in s.enumerated() {
            guard let k = options.firstIndex(of: c) else { continue }
            let before = i == 0 ? nil : s[i - 1]
            let after = i + 1 < s.count ? s[i + 1] : nil
            if before?.isLetter == true || after?.isLetter == true { continue }
            return k
        }
        return nil
    }
}
