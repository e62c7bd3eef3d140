import ArgumentParser
import FedRouteGateway
import FedRouteGatewayStore
import Foundation
import Logging

/// `fedroute keys`: virtual API keys of the gateway, in its database.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make, list, show and revoke the gateway's virtual API keys.",
        discussion: """
            A key is printed once, when it is made; the database keeps only its HMAC-SHA256 under the key \
            secret ($FEDROUTE_KEY_SECRET or --key-secret-file), which the gateway must be given too. See \
            docs/GATEWAY.md.
            """,
        subcommands: [Create.self, List.self, Show.self, Revoke.self])

    struct Database: ParsableArguments {
        @Option(name: .long, help: "The gateway's database (its --db): an SQLite file or a postgres:// URL.") var db = "fedroute-requests.sqlite"

        /// Calls `body` with the store open; `create` makes a missing SQLite file.
        func withStore<T: Sendable>(create: Bool, _ body: (any GatewayStore) async throws -> T) async throws -> T {
            try await GatewayStores.withStore(db, create: create, logger: Logger(label: "fedroute.keys", factory: { _ in SwiftLogNoOpLogHandler() }), body)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a key and print it (once).")
        @OptionGroup var database: Database
        @Option(name: .long, help: "Who the key is for (e.g. team-a).") var name: String
        @Option(name: .long, help: "Spend ceiling in USD (price-table cost of answered requests).") var budgetUsd: Double?
        @Option(name: .long, help: "Requests per minute (per gateway replica).") var rpm: Int?
        @Option(name: .long, help: "Tokens per minute, prompt + completion (per gateway replica).") var tpm: Int?
        @Option(name: .long, help: "Comma-separated models the key may be answered by (default: all).") var models: String?
        @Option(name: .long, help: "Lowest λ the key may route with.") var lambdaMin: Double?
        @Option(name: .long, help: "Highest λ the key may route with.") var lambdaMax: Double?
        @Option(name: .customLong("lambda"), help: "λ for model \"auto\" with this key (default: the gateway's, clamped into the key's range).") var defaultLambda: Double?
        @Option(name: .long, help: "Expiry: an ISO 8601 time (2027-01-01T00:00:00Z) or a duration (90d, 12h, 30m).") var expires: String?
        @Flag(name: .long, help: "May call the admin routes (POST /admin/reload).") var admin = false
        @Option(name: .long, help: "File holding the key secret (default: $FEDROUTE_KEY_SECRET).") var keySecretFile: String?

        func run() async throws {
            let secret = try KeySecret.load(file: keySecretFile, environment: ProcessInfo.processInfo.environment)
            let modelList = models.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            let policy = VirtualKey.Policy(
                budgetUSD: budgetUsd, rpm: rpm, tpm: tpm, models: modelList, lambdaMin: lambdaMin, lambdaMax: lambdaMax, defaultLambda: defaultLambda, admin: admin)
            let expiry = try expires.map(Self.parseExpiry)
            let (record, apiKey) = try await database.withStore(create: true) { store in
                try await store.createKey(name: name, policy: policy, expiresAt: expiry, secret: secret)
            }
            print(apiKey)
            Console.info("made key \(record.id) '\(record.name)' — the line above is the key; it is not stored and cannot be shown again")
            Console.info(KeysCommand.describe(record))
        }

        static func parseExpiry(_ text: String) throws -> Date {
            if let d = ISO8601DateFormatter().date(from: text) { return d }
            let units: [Character: Double] = ["d": 86_400, "h": 3_600, "m": 60]
            guard let unit = text.last.flatMap({ units[$0] }), let n = Double(text.dropLast()), n.isFinite, n > 0, n <= 36_500 else {
                throw ValidationError("--expires '\(text)' is neither an ISO 8601 time nor a duration such as 90d, 12h or 30m")
            }
            return Date().addingTimeInterval(n * unit)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every key (never the keys themselves).")
        @OptionGroup var database: Database

        func run() async throws {
            let keys = try await database.withStore(create: false) { try await $0.keys() }
            if keys.isEmpty { Console.info("no keys in \(database.db) (make one with `fedroute keys create --name …`)") }
            for k in keys { print(KeysCommand.describe(k)) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one key by id or name.")
        @OptionGroup var database: Database
        @Argument(help: "Key id (key-…) or name.") var key: String

        func run() async throws {
            let key = self.key
            print(KeysCommand.describe(try await database.withStore(create: false) { try await $0.key(idOrName: key) }))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by id or name; requests with it then get 401.")
        @OptionGroup var database: Database
        @Argument(help: "Key id (key-…) or name.") var key: String

        func run() async throws {
            let key = self.key
            let revoked = try await database.withStore(create: false) { store in
                try await store.revoke(keyID: try await store.key(idOrName: key).id, at: Date())
            }
            print(KeysCommand.describe(revoked))
        }
    }

    /// One line per key: id, name, status, hint, spend and limits.
    static func describe(_ k: VirtualKey) -> String {
        let iso = ISO8601DateFormatter()
        let p = k.policy
        var parts = ["\(k.id)", "name=\(k.name)", "status=\(k.status().rawValue)", "key=\(k.hint)", String(format: "spend=%.6f", k.spendUSD)]
        if let b = p.budgetUSD { parts.append("budget=\(b)") }
        if let r = p.rpm { parts.append("rpm=\(r)") }
        if let t = p.tpm { parts.append("tpm=\(t)") }
        if let m = p.models { parts.append("models=\(m.joined(separator: ","))") }
        if p.lambdaMin != nil || p.lambdaMax != nil { parts.append("lambda=[\(p.lambdaMin ?? 0),\(p.lambdaMax.map { "\($0)" } ?? "inf")]") }
        if let d = p.defaultLambda { parts.append("lambda.auto=\(d)") }
        if p.admin { parts.append("admin") }
        parts.append("created=\(iso.string(from: k.createdAt))")
        if let e = k.expiresAt { parts.append("expires=\(iso.string(from: e))") }
        if let r = k.revokedAt { parts.append("revoked=\(iso.string(from: r))") }
        return parts.joined(separator: " ")
    }
}
