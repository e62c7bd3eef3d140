@testable import FedRouteData
import Testing

/// `EvaluationTable`'s reshaping helpers.
@Suite struct EvaluationTableTests {
    @Test func reorderingModelsMovesEveryCellWithItsColumnAndRefusesOtherModels() throws {
        var t = EvaluationTable(models: ["a", "b", "c"])
        try t.append(Query(id: "q0", text: "x", task: "t"), cells: [0: (1, 0.1), 2: (0.5, 0.3)])
        try t.append(Query(id: "q1", text: "y", task: "t"), cells: [1: (0.25, 0.2)])
        let r = try #require(t.reorderingModels(["c", "a", "b"]))
        #expect(r.models == ["c", "a", "b"] && r.queries == t.queries)
        for row in 0..<2 {
            for (to, name) in r.models.enumerated() {
                let from = try #require(t.modelIndex(name))
                #expect(r.isObserved(row, to) == t.isObserved(row, from))
                #expect(r.scores[r.index(row, to)] == t.scores[t.index(row, from)] && r.costs[r.index(row, to)] == t.costs[t.index(row, from)])
            }
        }
        #expect(t.reorderingModels(["a", "b", "c"]) == t)
        #expect(t.reorderingModels(["a", "b"]) == nil && t.reorderingModels(["a", "b", "d"]) == nil && t.reorderingModels(["a", "a", "b"]) == nil)
    }
}
