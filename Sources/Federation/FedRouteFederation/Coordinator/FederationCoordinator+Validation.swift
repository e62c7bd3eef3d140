import FedRouteData
import FedRouteNumerics
import FedRouteRouters

extension FederationCoordinator {
    // MARK: Validation on the clients' held-out rows

    /// The candidate's validation statistics summed over every client that answered with valid
    /// sums; the others are named with their reason in `rejected` (they do not stop the job: a
    /// selection over fewer clients' rows is still a selection on rows nothing trained on).
    public func validate(_ candidate: ValidationCandidate, bands: ValidationBands? = nil,
                         descriptions: [ClientDescription]) async -> (statistics: ValidationStatistics, rejected: [String: String]) {
        let task = ValidationTask(candidate: candidate, bands: bands)
        let replies = await ask(Array(clients.indices)) { _ in .validate(task) }
        var total = ValidationStatistics(bands: bands?.lambdas.count ?? 0)
        var rejected: [String: String] = [:]
        for (i, result) in replies {
            let id = clients[i].id
            do {
                guard case .validation(let s) = try result.get() else { rejected[id] = "unexpected reply"; continue }
                let limit = Double(descriptions.indices.contains(i) ? descriptions[i].validationQueries ?? 0 : 0)
                if let why = s.problem(bands: bands?.lambdas.count ?? 0, maxQueries: limit) { rejected[id] = why; continue }
                total = total + s
            } catch { rejected[id] = "\(error)" }
        }
        return (total, rejected)
    }

    /// A safety gate calibrated on the clients' held-out rows over `lambdas`, with best-single@λ
    /// from the pooled per-model means in `normalizer`; nil when the federation has no validation
    /// rows or no score and cost means (clients built before they were pooled). The router keeps a
    /// band when its estimate is `standardErrors` standard errors above 0 (nil: 1 when every
    /// held-out query was fully graded, else 2; `SafetyGate.automaticStandardErrors`).
    public func calibrateSafetyGate(_ router: AnyRouter, normalizer: CostNormalizer, lambdas: [Double],
                                    standardErrors: Double? = nil,
                                    descriptions: [ClientDescription]) async throws -> SafetyGate? {
        if let z = standardErrors, let problem = SafetyGate.marginProblem(z) { throw FederationError.invalidConfiguration(problem) }
        let grid = Array(Set(lambdas.filter { $0.isFinite && $0 > 0 })).sorted()
        guard !grid.isEmpty, let fallback = normalizer.bestSingle(models: router.models, lambdas: grid),
              descriptions.contains(where: { ($0.validationQueries ?? 0) > 0 }) else { return nil }
        let bands = ValidationBands(lambdas: grid, fallback: fallback)
        let (statistics, _) = await validate(try ValidationCandidate(router), bands: bands, descriptions: descriptions)
        guard statistics.queries > 0 else { return nil }
        return try SafetyGate(bands: bands, statistics: statistics, standardErrors: standardErrors)
    }
}
