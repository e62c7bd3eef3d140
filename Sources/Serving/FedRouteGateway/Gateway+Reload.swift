import Foundation
import Logging
import NIOPosix
import Synchronization

/// The routing new requests start with; swapped whole by a reload.
final class RoutingSlot: Sendable {
    private let value: Mutex<GatewayRouting>

    init(_ routing: GatewayRouting) { value = Mutex(routing) }

    var current: GatewayRouting { value.withLock { $0 } }

    /// Puts `routing` in place and returns the one it replaces.
    func swap(_ routing: GatewayRouting) -> GatewayRouting {
        value.withLock { old in
            let previous = old
            old = routing
            return previous
        }
    }
}

extension Gateway {
    /// Re-reads the router file and models.yaml and, when both load and fit together, swaps them in
    /// atomically: requests already in flight finish on the routing they started with, new ones get the
    /// new one. A file that does not load is refused with the reason, and the current routing keeps
    /// serving. Loading runs off the event loops.
    @discardableResult
    public func reload() async throws -> GatewayRouting.Provenance {
        guard let loader else {
            throw APIError(status: 409, message: "this gateway was built in memory; there are no files to reload", type: "invalid_request_error", code: "reload_unavailable")
        }
        let next: GatewayRouting
        do { next = try await NIOThreadPool.singleton.runIfActive { try loader() } } catch {
            metrics.reloadFailed()
            logger.error("reload refused; the current router keeps serving", metadata: ["error": "\(error)"])
            throw APIError(status: 422, message: "reload refused, the current router keeps serving: \(error)", type: "invalid_request_error", code: "reload_refused")
        }
        let previous = slot.swap(next)
        metrics.loaded(next.provenance, previous: previous.provenance)
        logger.notice("reloaded", metadata: [
            "router": "\(next.provenance.routerFingerprint)", "models": "\(next.provenance.modelsFingerprint)",
            "previous_router": "\(previous.provenance.routerFingerprint)", "routable_models": "\(next.routableModels.count)",
        ])
        return next.provenance
    }
}
