import ArgumentParser
import FedRouteData
import FedRouteEmbedding
import FedRouteGateway
import FedRouteTelemetry
import FedRouteMetaRouter
import FedRouteMultiRound
import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteRouters
import Logging

// Library enums taken as option values: help lists their cases and parsing validates them.
extension DataFormat: ExpressibleByArgument {}
extension RouterFamily: ExpressibleByArgument {}
extension FrameCompression: ExpressibleByArgument {}
extension ClientHTTPVersion: ExpressibleByArgument {}
extension MaskGenerator: ExpressibleByArgument {}
extension WordPieceTokenizer.Truncation: ExpressibleByArgument {}
extension KMeansConfiguration.Initialization: ExpressibleByArgument {}
extension ClusterCountPolicy: ExpressibleByArgument {}
extension ContextMode: ExpressibleByArgument {}
extension OTLPTracing.WireFormat: ExpressibleByArgument {}
extension MetaRouterExperiment.BiasBasis: ExpressibleByArgument {}
extension ScaleAlignment: ExpressibleByArgument {}
extension PropensityModel: ExpressibleByArgument {}
extension AggregationRule: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `--server`: the coordinator's optimiser.
enum AggregationChoice: String, ExpressibleByArgument, CaseIterable {
    case fedavg, fedadam
}

/// `--mixture-errors`: how the adaptive mixture measures the local router's error.
enum MixtureErrorsChoice: String, ExpressibleByArgument, CaseIterable {
    case inSample = "in-sample", crossFitted = "cross-fitted"
}
