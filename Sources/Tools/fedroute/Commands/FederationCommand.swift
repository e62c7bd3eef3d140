import ArgumentParser
import FedRouteFederationHTTP

/// `fedroute federation`: keys and certificates.
struct FederationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "federation",
        abstract: "Keys and certificates for a federation over the network.",
        subcommands: [KeygenCommand.self, CertsCommand.self])

    struct KeygenCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "keygen", abstract: "Make a client's Ed25519 key file; prints the public key for the server configuration.")
        @Option(name: .long, help: "Client id.") var id: String
        @Option(name: .long, help: "Key file to write (mode 0600).") var out: String

        func run() throws {
            let identity = ClientIdentity(id: id)
            try identity.write(to: out)
            print("- id: \(id)\n  publicKey: \(identity.publicKeyBase64)")
        }
    }

    struct CertsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "certs", abstract: "Make a private CA and a server certificate (ca.pem, server.pem and their keys).")
        @Option(name: .long, help: "Output folder.") var out: String
        @Option(name: .long, help: "Host names or IPv4 addresses the server is reached at.") var host: [String] = ["127.0.0.1", "localhost"]
        @Option(name: .long, help: "Validity in days.") var days = 365

        func run() throws {
            try FederationCertificates.generate(directory: out, hosts: host, validDays: days)
            print("wrote \(out)/ca.pem, ca-key.pem, server.pem, server-key.pem for \(host.joined(separator: ", "))")
        }
    }
}
