import FedRouteRouters

extension SafetyGate {
    /// The λ bands a gate gets unless told otherwise (`train --safe`, `simulate`, a job's `safety`).
    public static let defaultBands = 40

    /// The centres of `bands` gate bands, log-spaced over 1e-2 … 1e7: the one grid every gate
    /// fedroute calibrates uses, so a band count alone (as in `server.json`) names it.
    public static func defaultLambdas(bands: Int = defaultBands) -> [Double] {
        FrontierMetrics.geomspace(1e-2, 1e7, count: bands)
    }
}
