#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Dispatch
import FjordServer
import Logging

/// `fjord server-start server.properties` (Kafka's `kafka-server-start.sh`): runs a node in
/// the roles of `process.roles` until SIGTERM or SIGINT, then shuts down gracefully.
struct ServerStartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server-start",
        abstract: "Start a Fjord node (broker, controller or both) from a server.properties file.",
        discussion: """
            Examples:
              fjord server-start config/server.properties
              fjord server-start config/cluster/node1.properties --override log.dirs=/tmp/n1
            The directories must be formatted first (fjord storage format). Stop with SIGTERM
            (a controlled shutdown) or Ctrl-C.
            """
    )

    @Argument(help: "The server.properties file.")
    var config: String

    @Option(name: .customLong("override"), help: "Override a property: --override key=value (may be repeated).")
    var overrides: [String] = []

    func run() throws {
        try ServerRunner.run(configPath: config, overrides: overrides)
    }
}

/// `fjord server start server.properties`: the same as `server-start`.
struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "server", abstract: "Server commands.", subcommands: [Start.self])

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a Fjord node (same as server-start).",
                                                        discussion: """
                                                            Example:
                                                              fjord server start config/server.properties
                                                            """)
        @Argument(help: "The server.properties file.")
        var config: String
        @Option(name: .customLong("override"), help: "Override a property: --override key=value (may be repeated).")
        var overrides: [String] = []
        func run() throws {
            try ServerRunner.run(configPath: config, overrides: overrides)
        }
    }
}

enum ServerRunner {
    static func run(configPath: String, overrides: [String]) throws {
        // FJORD_LOG_LEVEL (trace, debug, info, notice, warning, error, critical) sets how much
        // the node logs; info by default.
        let level = getenv("FJORD_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0).lowercased()) } ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardOutput(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "fjord")
        var props: JavaProperties
        do {
            props = try JavaProperties.load(path: configPath)
        } catch {
            stderr("\(error)")
            throw ExitCode.failure
        }
        for o in overrides {
            guard let eq = o.firstIndex(of: "=") else {
                stderr("--override \(o): expected key=value")
                throw ExitCode.failure
            }
            props[String(o[..<eq])] = String(o[o.index(after: eq)...])
        }
        let config: ServerConfig
        do {
            config = try ServerConfig(properties: props)
        } catch {
            stderr("\(configPath): \(error)")
            throw ExitCode.failure
        }
        for k in config.unknownKeys {
            logger.warning("The configuration '\(k)' was supplied but isn't a known config.")
        }
        let node: FjordNode
        do {
            node = try FjordNode(config: config, logger: logger)
            try node.start()
        } catch {
            stderr("\(error)")
            logger.error("startup failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let done = DispatchSemaphore(value: 0)
        let queue = DispatchQueue(label: "fjord.signals")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            s.setEventHandler { done.signal() }
            s.resume()
            sources.append(s)
        }
        done.wait()
        node.shutdown()
        withExtendedLifetime(sources) {}
    }
}
