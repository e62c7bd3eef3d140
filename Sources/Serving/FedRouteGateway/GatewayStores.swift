import FedRouteGatewayPostgres
import FedRouteGatewayStore
import Logging

/// Opens the gateway's store named by a `--db` value: a `postgres://` URL (several replicas share it) or
/// the path of an SQLite file (one process).
public enum GatewayStores {
    /// Whether `location` names a PostgreSQL database.
    public static func isPostgres(_ location: String) -> Bool {
        location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")
    }

    /// Calls `body` with the store open (and, for PostgreSQL, its pool running and migrated).
    /// - Parameter create: create a missing SQLite file (the gateway, `keys create`); readers pass false.
    public static func withStore<T: Sendable>(
        _ location: String, create: Bool, logger: Logger, _ body: (any GatewayStore) async throws -> T
    ) async throws -> T {
        if isPostgres(location) {
            return try await PostgresGatewayStore.withStore(url: location, logger: logger) { try await body($0) }
        }
        return try await body(try SQLiteGatewayStore(path: location, create: create))
    }
}
