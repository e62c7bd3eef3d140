import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation

extension FederationCoordinator {
    // MARK: K-Means-Router

    /// The two-pass federated K-Means-Router.
    ///
    /// `known` descriptions (from an earlier `describe`) spare a round trip to every client, so a
    /// client that is offline does not hold the job up; it just sends nothing. With validation rows
    /// the final statistics pool them too, unless `poolHeldOut` is false (for a router a safety
    /// gate is calibrated on first; `addingHeldOut` pools them afterwards).
    public func trainKMeans(_ configuration: FederatedKMeansConfiguration, descriptions known: [ClientDescription]? = nil,
                            poolHeldOut: Bool = true,
                            progress: ProgressHandler? = nil) async throws -> (router: KMeansRouter, report: KMeansFederationReport) {
        guard configuration.localClusters >= 1, configuration.globalClusters >= 1 else {
            throw FederationError.invalidConfiguration("local and global cluster counts must be ≥ 1")
        }
        let descriptions: [ClientDescription]
        if let known { descriptions = known } else { descriptions = try await describe() }
        guard let dim = descriptions[0].featureDimension, descriptions.allSatisfy({ $0.featureDimension == dim }) else {
            throw FederationError.invalidConfiguration("every client must have featurised its data with the same encoder (send useEncoder first)")
        }
        let models = descriptions[0].models
        progress?(TrainingProgress(stage: "federated k-means", step: 0, total: 2))
        var seeds = SeededRandom(seed: configuration.seed)
        let localSeeds = clients.indices.map { seeds.derivedSeed(UInt64($0) &+ 1) }
        let pass1 = await ask(Array(clients.indices)) { i in
            .localCentroids(LocalClusteringTask(configuration: configuration.kmeans(clusters: configuration.localClusters, seed: localSeeds[i])))
        }
        var rows: [Float] = []
        var weights: [Float] = []
        var counts: [String: Int] = [:]
        var rejected: [String: String] = [:]
        var withheld = 0
        for (i, result) in pass1 {
            let id = clients[i].id
            do {
                guard case .localCentroids(let c) = try result.get() else { rejected[id] = "unexpected reply"; continue }
                guard c.centroids.cols == dim || c.centroids.rows == 0, c.centroids.isFinite, c.sizes.count == c.centroids.rows,
                      c.sizes.allSatisfy({ $0 > 0 && $0.isFinite }), c.sizes.reduce(0, +) <= Double(descriptions[i].trainQueries) else {
                    rejected[id] = "\(c.centroids.rows)×\(c.centroids.cols) centres with sizes summing to \(c.sizes.reduce(0, +)) are not valid for dimension \(dim) and \(descriptions[i].trainQueries) local queries"
                    continue
                }
                rows += c.centroids.data
                weights += c.sizes.map(Float.init)
                counts[id] = c.centroids.rows
                withheld += c.withheldClusters
            } catch { rejected[id] = "\(error)" }
        }
        let pooled = Matrix(rows: weights.count, cols: dim, data: rows)
        guard pooled.rows >= 1 else { throw FederationError.notEnoughClients("no client sent any local centre") }
        let globalSeed = seeds.next()
        let validating = descriptions.contains { ($0.validationQueries ?? 0) > 0 }
        let policy = configuration.clusterPolicy ?? .average
        // Averaging and nesting need no validation rows; selecting does (without them: `globalClusters` only).
        let requested = policy != .select || validating ? (configuration.clusterCandidates ?? []) : []
        let candidates = Array(Set((requested.isEmpty ? [configuration.globalClusters] : requested).map { min($0, pooled.rows) }.filter { $0 >= 1 })).sorted()
        guard !candidates.isEmpty else { throw FederationError.invalidConfiguration("cluster candidates must be ≥ 1") }
        var built: [(resolution: KMeansResolution, inertia: Double, brier: Double)] = []
        var briers: [String: Double] = [:]
        for (step, k) in candidates.enumerated() {
            let global = try KMeans.fit(points: pooled, weights: weights, configuration: configuration.kmeans(clusters: k, seed: globalSeed))
            progress?(TrainingProgress(stage: "federated k-means, k = \(k)", step: 1 + step, total: candidates.count + 1, loss: global.inertia))
            let (statistics, rejected2) = try await pooledStatistics(centroids: global.centroids, models: models.count)
            rejected.merge(rejected2) { a, _ in a }
            let resolution = KMeansResolution(centroids: global.centroids, statistics: statistics)
            var brier = 0.0
            if candidates.count > 1, validating {
                let router = try KMeansRouter(models: models, resolutions: [resolution])
                let (v, _) = await validate(try ValidationCandidate(AnyRouter(router)), descriptions: descriptions)
                brier = v.brier ?? .infinity
                briers[String(k)] = brier
            }
            built.append((resolution, global.inertia, brier))
        }
        // `.select` keeps the lowest Brier score (the first on ties); `.average` and `.nested` keep every count.
        let kept = policy == .select ? [built.min { $0.brier < $1.brier }!] : built
        var router = try KMeansRouter(models: models, resolutions: kept.map(\.resolution), combination: policy.combination)
        if validating, poolHeldOut {
            // The counts are settled: the final statistics pool the held-out rows too.
            let (pooled, rejected3) = try await addingHeldOut(router)
            rejected.merge(rejected3) { a, _ in a }
            router = pooled
        }
        progress?(TrainingProgress(stage: "federated k-means", step: candidates.count + 1, total: candidates.count + 1))
        return (router, KMeansFederationReport(localCentroids: counts, withheldClusters: withheld, globalClusters: router.clusterCounts[0],
                                               clusterCounts: router.clusterCounts, inertia: kept[0].inertia, rejected: rejected,
                                               validationBrier: briers.isEmpty ? nil : briers))
    }

    /// The K-Means-Router a job saves and the one its safety gate is calibrated on: with `forGate`,
    /// trained without the clients' held-out rows, which join its statistics afterwards (the gate
    /// must not see a router that holds its own validation rows); without, both are the pooled one.
    public func trainKMeans(_ configuration: FederatedKMeansConfiguration, descriptions: [ClientDescription]? = nil, forGate: Bool,
                            progress: ProgressHandler? = nil) async throws -> (router: KMeansRouter, gateCandidate: KMeansRouter, report: KMeansFederationReport) {
        guard forGate else {
            let (router, report) = try await trainKMeans(configuration, descriptions: descriptions, progress: progress)
            return (router, router, report)
        }
        let (unpooled, report) = try await trainKMeans(configuration, descriptions: descriptions, poolHeldOut: false, progress: progress)
        return (try await addingHeldOut(unpooled).router, unpooled, report)
    }

    /// The router's statistics recomputed over every client's training and held-out rows (one
    /// pass 2 per clustering), with the clients whose sums were refused.
    public func addingHeldOut(_ router: KMeansRouter) async throws -> (router: KMeansRouter, rejected: [String: String]) {
        var statistics: [ClusterStatistics] = []
        var rejected: [String: String] = [:]
        for resolution in router.resolutions {
            let (s, r) = try await pooledStatistics(centroids: resolution.centroids, models: router.models.count, includeHeldOut: true)
            rejected.merge(r) { a, _ in a }
            statistics.append(s)
        }
        return (try router.replacingStatistics(statistics), rejected)
    }

    /// Pass 2: the sum of the clients' per-(cluster, model) statistics on `centroids`.
    public func pooledStatistics(centroids: Matrix, models: Int, includeHeldOut: Bool = false) async throws -> (ClusterStatistics, rejected: [String: String]) {
        let replies = await ask(Array(clients.indices)) { _ in
            .clusterStatistics(ClusterStatisticsTask(centroids: centroids, includeHeldOut: includeHeldOut ? true : nil))
        }
        var total = ClusterStatistics(clusters: centroids.rows, models: models)
        var rejected: [String: String] = [:]
        for (i, result) in replies {
            let id = clients[i].id
            do {
                guard case .clusterStatistics(let s) = try result.get() else { rejected[id] = "unexpected reply"; continue }
                guard s.statistics.clusters == centroids.rows, s.statistics.models == models, s.statistics.isValid else {
                    rejected[id] = "statistics \(s.statistics.clusters)×\(s.statistics.models) are not valid for \(centroids.rows)×\(models)"
                    continue
                }
                total = total + s.statistics
            } catch { rejected[id] = "\(error)" }
        }
        guard rejected.count < clients.count else { throw FederationError.notEnoughClients("no client sent valid cluster statistics: \(rejected)") }
        return (total, rejected)
    }
}
