import ArgumentParser
import FjordRaftRuntime
import FjordServer

/// `fjord metadata-quorum`: Kafka's `kafka-metadata-quorum` (describe --status | --replication).
struct MetadataQuorumCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata-quorum",
        abstract: "Describe the KRaft metadata quorum.",
        discussion: """
            Examples:
              fjord metadata-quorum --bootstrap-server localhost:9092 describe --status
              fjord metadata-quorum --bootstrap-controller localhost:9093 describe --replication
            """,
        subcommands: [Describe.self]
    )

    @Option(name: .customLong("bootstrap-server"), help: "A broker to connect to (host:port).")
    var bootstrapServer: String?

    @Option(name: .customLong("bootstrap-controller"), help: "A controller to connect to (host:port).")
    var bootstrapController: String?

    @Option(name: .customLong("command-config"), help: "Client properties (accepted; only PLAINTEXT is supported).")
    var commandConfig: String?

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "describe", abstract: "Describe the metadata quorum.",
                                                        discussion: """
                                                            Examples:
                                                              fjord metadata-quorum --bootstrap-server localhost:9092 describe --status
                                                              fjord metadata-quorum --bootstrap-server localhost:9092 describe --replication --human-readable
                                                            """)

        @OptionGroup var parent: MetadataQuorumParentOptions

        @Flag(name: .customLong("status"), help: "A short summary of the quorum status and the other information.")
        var status = false

        @Flag(name: .customLong("replication"), help: "Detailed information about the status of replication.")
        var replication = false

        @Flag(name: .customLong("human-readable"), help: "Human-readable timestamps (with --replication).")
        var humanReadable = false

        func run() throws {
            guard status != replication else {
                stderr("One of --status or --replication must be specified with describe.")
                throw ExitCode.failure
            }
            let target = parent.target
            guard let (host, port, controller) = target else {
                stderr("Exactly one of --bootstrap-server or --bootstrap-controller must be specified.")
                throw ExitCode.failure
            }
            do {
                let r = try MetadataQuorumTool.query(host: host, port: port, controller: controller)
                let now = RaftRuntime.wallClockMs()
                let lines = status ? MetadataQuorumTool.status(r, nowMs: now) : MetadataQuorumTool.replication(r, nowMs: now, humanReadable: humanReadable)
                for l in lines { print(l) }
            } catch {
                stderr("\(error)")
                throw ExitCode.failure
            }
        }
    }
}

/// The parent command's options, visible to `describe` (Kafka puts them before the action).
struct MetadataQuorumParentOptions: ParsableArguments {
    init() {}
    var target: (String, Int, Bool)? {
        let args = CommandLine.arguments
        func value(_ flag: String) -> String? {
            for (i, a) in args.enumerated() {
                if a == flag, i + 1 < args.count { return args[i + 1] }
                if a.hasPrefix(flag + "=") { return String(a.dropFirst(flag.count + 1)) }
            }
            return nil
        }
        let s = value("--bootstrap-server")
        let c = value("--bootstrap-controller")
        guard (s == nil) != (c == nil), let hp = s ?? c, let colon = hp.lastIndex(of: ":"), let port = Int(hp[hp.index(after: colon)...]) else { return nil }
        return (String(hp[..<colon]), port, c != nil)
    }
}
