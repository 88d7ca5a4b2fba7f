#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FjordClient

/// Options every client tool takes: where the cluster is and client properties.
struct ClientToolOptions: ParsableArguments {
    @Option(name: .customLong("bootstrap-server"), help: ArgumentHelp("The broker(s) to connect to: host:port[,host:port...].", valueName: "host:port"))
    var bootstrapServer: String?

    @Option(name: .customLong("command-config"), help: ArgumentHelp("A properties file with client settings (client.id, request.timeout.ms, ...).", valueName: "file"))
    var commandConfig: String?

    /// The client properties from `--command-config`.
    func properties() throws -> [String: String] {
        guard let path = commandConfig else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in try ToolSupport.loadProperties(path: path) { out[k] = v }
        try ToolRun.checkSecurity(out)
        return out
    }

    /// A client for `--bootstrap-server` (required).
    func makeClient(clientId: String) throws -> KafkaClient {
        guard let bs = bootstrapServer else {
            throw ToolFailure("Missing required option --bootstrap-server: give a broker to connect to, e.g. --bootstrap-server localhost:9092")
        }
        let props = try properties()
        var cfg = ClientConfig(bootstrap: try BootstrapAddress.parseList(bs), clientId: props["client.id"] ?? clientId)
        if let t = props["request.timeout.ms"], let ms = Int64(t) { cfg.requestTimeoutMs = ms }
        if let t = props["default.api.timeout.ms"], let ms = Int64(t) { cfg.requestTimeoutMs = min(cfg.requestTimeoutMs, ms) }
        return KafkaClient(config: cfg)
    }
}

/// A tool error: printed (without a stack) and the process exits 1.
struct ToolFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

enum ToolRun {
    /// Runs `body`, printing errors as `prefix<error>` on stderr and exiting 1.
    static func run(errorPrefix: String = "Error: ", _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as ExitCode {
            throw e
        } catch let e as ValidationError {
            throw e
        } catch let e as CleanExit {
            throw e
        } catch {
            stderr("\(errorPrefix)\(error)")
            throw ExitCode.failure
        }
    }

    static func checkSecurity(_ props: [String: String]) throws {
        if let p = props["security.protocol"], p.uppercased() != "PLAINTEXT" {
            throw ToolFailure("security.protocol=\(p) is not supported yet: Fjord listeners speak PLAINTEXT only")
        }
    }

    /// Whether standard input is a terminal.
    static var stdinIsTerminal: Bool { isatty(0) == 1 }

    /// Stops the process at SIGINT/SIGTERM after calling `handler` once (on a signal thread).
    nonisolated(unsafe) static var onInterrupt: (() -> Void)?
}

/// Watches SIGINT and SIGTERM; `interrupted` turns true after the first one.
final class InterruptFlag: @unchecked Sendable {
    nonisolated(unsafe) static var flag: Int32 = 0
    static func install() {
        signal(SIGINT) { _ in InterruptFlag.flag = 1 }
        signal(SIGTERM) { _ in InterruptFlag.flag = 1 }
        signal(SIGPIPE, SIG_IGN)
    }
    static var interrupted: Bool { flag != 0 }
}

extension String {
    /// `--topic` values are regular expressions for describe/alter/delete (as in Kafka) unless
    /// they are plain names.
    func matchesTopicPattern(_ pattern: String) -> Bool {
        if pattern == self { return true }
        let special = CharacterSet_special
        guard pattern.contains(where: { special.contains($0) }) else { return false }
        guard let re = try? Regex(pattern) else { return false }
        return (try? re.wholeMatch(in: self)) != nil
    }
}

private let CharacterSet_special: Set<Character> = ["*", "+", "?", "[", "]", "(", ")", "|", "^", "$", "\\", "{", "}"]
