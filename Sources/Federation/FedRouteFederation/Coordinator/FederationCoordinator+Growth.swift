import FedRouteData
import FedRouteNumerics
import FedRouteRouters

// Growing a trained federation without retraining from scratch.
extension FederationCoordinator {
    /// Adds models to a federated MLP-Router: the clients' data now covers `router.models + newModels`;
    /// new head columns are trained federatedly while the trunk and the existing heads stay frozen.
    public func addModels(_ newModels: [String], to router: MLPRouter, configuration: FederatedMLPConfiguration,
                          progress: ProgressHandler? = nil) async throws -> (router: MLPRouter, rounds: [RoundReport]) {
        let descriptions = try await describe()
        let all = router.models + newModels
        guard descriptions[0].models == all else { throw RouterError.modelMismatch(expected: all, got: descriptions[0].models) }
        let pooled = try await costNormalizer(models: all.count)
        let old = router.models.count
        let normalizer = CostNormalizer(mean: router.costNormalizer.mean + pooled.mean[old...], std: router.costNormalizer.std + pooled.std[old...])
        let grown = try router.addingModels(newModels, costNormalizer: normalizer, seed: configuration.seed)
        var c = configuration
        c.local.trainModelsFrom = old
        return try await continueMLP(grown, c, descriptions: descriptions, progress: progress)
    }

    /// Adds clients (these coordinator's clients, typically new ones) to a federated MLP-Router:
    /// continued FedAvg from `router` with a distillation term towards the frozen `router`, weighted
    /// by `configuration.local.distillationWeight`, so what it learned from earlier clients is kept.
    public func addClients(to router: MLPRouter, configuration: FederatedMLPConfiguration,
                           progress: ProgressHandler? = nil) async throws -> (router: MLPRouter, rounds: [RoundReport]) {
        try await continueMLP(router, configuration, teacher: router.network, progress: progress)
    }

    /// Adds these clients' cell statistics to a federated K-Means-Router (centres unchanged; one
    /// pass 2 per clustering).
    public func addClients(to router: KMeansRouter) async throws -> KMeansRouter {
        var more: [ClusterStatistics] = []
        for resolution in router.resolutions {
            more.append(try await pooledStatistics(centroids: resolution.centroids, models: router.models.count).0)
        }
        return try router.adding(more)
    }

    /// Adds models to a federated K-Means-Router: the clients' statistics for the new models only
    /// (their data covers `router.models + newModels`) join the existing ones.
    public func addModels(_ newModels: [String], to router: KMeansRouter) async throws -> KMeansRouter {
        let grown = try router.addingModels(newModels)
        let m = grown.models.count, old = router.models.count
        var more: [ClusterStatistics] = []
        for resolution in router.resolutions {
            var onlyNew = try await pooledStatistics(centroids: resolution.centroids, models: m).0
            for i in onlyNew.count.indices where i % m < old { onlyNew.count[i] = 0; onlyNew.scoreSum[i] = 0; onlyNew.costSum[i] = 0 }
            more.append(onlyNew)
        }
        return try grown.adding(more)
    }
}
