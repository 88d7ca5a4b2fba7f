import ArgumentParser
import FjordServer
import FjordWire

/// `fjord storage`: Kafka's `kafka-storage` (random-uuid, format, info).
struct StorageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "Format and describe the storage directories of a Fjord node.",
        discussion: """
            Examples:
              id=$(fjord storage random-uuid)
              fjord storage format -t $id -c config/server.properties
              fjord storage format -t $id -c controller.properties --standalone
              fjord storage info -c config/server.properties
            Every node of a cluster is formatted with the same cluster id before its first start.
            """,
        subcommands: [RandomUUID.self, Format.self, Info.self]
    )

    struct RandomUUID: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "random-uuid", abstract: "Print a random UUID (a new cluster id).",
                                                        discussion: """
                                                            Example:
                                                              fjord storage random-uuid
                                                            """)
        func run() throws {
            print(KafkaUUID.random())
        }
    }

    struct Format: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "format", abstract: "Format the log and metadata directories of a node.",
            discussion: """
                Examples:
                  fjord storage format -t MkU3OEVBNTcwNTJENDM2Qk -c config/server.properties
                  fjord storage format -t $id -c controller1.properties --initial-controllers 1@127.0.0.1:9093:<dir-id>,...
                  fjord storage format -t $id -c broker.properties --no-initial-controllers
                With controller.quorum.voters in the file no quorum flag is needed; with
                controller.quorum.bootstrap.servers a controller needs --standalone,
                --initial-controllers or --no-initial-controllers.
                """)

        @Option(name: [.customShort("c"), .customLong("config")], help: "The server configuration file to use.")
        var config: String

        @Option(name: [.customShort("t"), .customLong("cluster-id")], help: "The cluster ID to use.")
        var clusterId: String

        @Flag(name: [.customShort("g"), .customLong("ignore-formatted")],
              help: "When this option is passed, the format command will skip over already formatted directories rather than failing.")
        var ignoreFormatted = false

        @Option(name: [.customShort("r"), .customLong("release-version")],
                help: "The release version to use for the initial metadata.version, e.g. 3.9-IV0.")
        var releaseVersion: String?

        @Flag(name: [.customShort("s"), .customLong("standalone")],
              help: "Used to initialize a controller as a single-node dynamic quorum (with controller.quorum.bootstrap.servers instead of controller.quorum.voters).")
        var standalone = false

        @Option(name: [.customShort("I"), .customLong("initial-controllers")],
                help: "The initial voters of a dynamic quorum: id@host:port:directoryId,... (with controller.quorum.bootstrap.servers).")
        var initialControllers: String?

        @Flag(name: [.customShort("N"), .customLong("no-initial-controllers")],
              help: "Format a controller of a dynamic quorum without initial voters (it joins as an observer).")
        var noInitialControllers = false

        func run() throws {
            let cfg = try loadConfig(config)
            if [standalone, initialControllers != nil, noInitialControllers].filter({ $0 }).count > 1 {
                stderr("Only one of --standalone, --initial-controllers and --no-initial-controllers may be given.")
                throw ExitCode.failure
            }
            var initialVoters: [QuorumBootstrap.Voter]? = nil
            var metadataDirectoryId: KafkaUUID? = nil
            if !cfg.isDynamicQuorum {
                if standalone || initialControllers != nil {
                    stderr("controller.quorum.voters is set: the quorum is static, so --standalone/--initial-controllers are not used.")
                }
            } else if cfg.isController {
                let listener = cfg.controllerListenerNames.first ?? "CONTROLLER"
                if standalone {
                    guard let l = cfg.listeners.first(where: { $0.listenerName == listener }) else {
                        stderr("The controller listener \(listener) is not in listeners.")
                        throw ExitCode.failure
                    }
                    let dirId = KafkaUUID.random()
                    metadataDirectoryId = dirId
                    initialVoters = [QuorumBootstrap.Voter(id: cfg.nodeId, directoryId: dirId, host: l.host.isEmpty ? "localhost" : l.host,
                                                           port: l.port, listenerName: listener)]
                } else if let text = initialControllers {
                    do {
                        let vs = try QuorumBootstrap.parseInitialControllers(text, listenerName: listener)
                        guard let me = vs.first(where: { $0.id == cfg.nodeId }) else {
                            stderr("--initial-controllers does not name this node (node.id \(cfg.nodeId)).")
                            throw ExitCode.failure
                        }
                        metadataDirectoryId = me.directoryId
                        initialVoters = vs
                    } catch let e as QuorumBootstrap.Failure {
                        stderr(e.description)
                        throw ExitCode.failure
                    }
                } else if !noInitialControllers {
                    stderr("Because controller.quorum.voters is not set on this controller, you must specify one of the following: --standalone, --initial-controllers, or --no-initial-controllers.")
                    throw ExitCode.failure
                }
            }
            var mv = StorageTool.defaultMetadataVersion
            if let rv = releaseVersion {
                guard let v = MetadataVersion(name: rv) else {
                    stderr("Unknown release version '\(rv)'. Supported versions are: 3.3-IV3 .. \(MetadataVersion.latest.name)")
                    throw ExitCode.failure
                }
                mv = v
            }
            do {
                for line in try StorageTool.format(config: cfg, clusterId: clusterId, ignoreFormatted: ignoreFormatted, releaseVersion: mv,
                                                   initialVoters: initialVoters, metadataDirectoryId: metadataDirectoryId) {
                    print(line)
                }
            } catch {
                stderr("\(error)")
                throw ExitCode.failure
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe the storage directories of a node.",
                                                        discussion: """
                                                            Example:
                                                              fjord storage info -c config/server.properties
                                                            """)

        @Option(name: [.customShort("c"), .customLong("config")], help: "The server configuration file to use.")
        var config: String

        func run() throws {
            let cfg = try loadConfig(config)
            let (lines, ok) = StorageTool.info(config: cfg)
            for l in lines { print(l) }
            if !ok { throw ExitCode.failure }
        }
    }
}

/// Reads and validates a server properties file; a problem is printed and exits 1.
func loadConfig(_ path: String) throws -> ServerConfig {
    do {
        return try ServerConfig(properties: try JavaProperties.load(path: path))
    } catch {
        stderr("\(error)")
        throw ExitCode.failure
    }
}

func stderr(_ s: String) {
    let t = Terminal()
    var e = t.standardError
    print(s, to: &e)
}
