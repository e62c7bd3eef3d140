import ArgumentParser

@main
struct FedRoute: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fedroute",
        abstract: "Learn LLM routers from decentralized evaluation data.",
        subcommands: [DataCommand.self, TrainCommand.self, EvalCommand.self, RouteCommand.self, DemoCommand.self, SimulateCommand.self, EmbedCommand.self, GatewayCommand.self, KeysCommand.self, CalibrateCommand.self, MetaRouterCommand.self, MultiRoundCommand.self, CoordinatorCommand.self, ClientCommand.self, FederationCommand.self, FlowerNodeCommand.self, FlowerBridgeCommand.self, FlowerKeyCommand.self])
}
