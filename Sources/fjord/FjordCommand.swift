import ArgumentParser

/// The `fjord` command line: one executable for the server and its operator tools.
///
/// Add a subcommand by writing a `ParsableCommand` in its own file under `Sources/fjord/`
/// and listing it in `subcommands` below.
@main
struct FjordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fjord",
        abstract: "Fjord: a Kafka-compatible broker.",
        subcommands: [
            StorageCommand.self,
            ServerStartCommand.self,
            ServerCommand.self,
            MetadataQuorumCommand.self,
            DumpLogCommand.self,
            MetadataShellCommand.self,
            TopicsCommand.self,
            ConsoleProducerCommand.self,
            ConsoleConsumerCommand.self,
            ProducerPerfTestCommand.self,
            ConsumerPerfTestCommand.self,
            ConfigsCommand.self,
            LeaderElectionCommand.self,
            ClusterIdCommand.self,
            BrokerApiVersionsCommand.self,
            DevClusterCommand.self,
            ConsumerGroupsCommand.self,
        ]
    )
}
