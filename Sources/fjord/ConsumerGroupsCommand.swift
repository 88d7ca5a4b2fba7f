import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import FjordServer

/// `fjord consumer-groups`: Kafka's `kafka-consumer-groups` tool.
struct ConsumerGroupsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer-groups",
        abstract: "List, describe, reset and delete consumer groups.",
        discussion: """
            Examples:
              fjord consumer-groups --bootstrap-server localhost:9092 --list
              fjord consumer-groups --bootstrap-server localhost:9092 --describe --group my-group
              fjord consumer-groups --bootstrap-server localhost:9092 --describe --group my-group --members --verbose
              fjord consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group my-group --topic t --to-earliest --execute
            """
    )

    @Option(name: .customLong("bootstrap-server"), help: "The server(s) to connect to (host:port[,host:port]).")
    var bootstrapServer: String

    @Flag(name: .customLong("list"), help: "List all consumer groups.") var list = false
    @Flag(name: .customLong("describe"), help: "Describe consumer group(s) and list offset lag.") var describe = false
    @Flag(name: .customLong("delete"), help: "Delete the group.") var delete = false
    @Flag(name: .customLong("reset-offsets"), help: "Reset the offsets of an inactive group.") var resetOffsets = false
    @Option(name: .customLong("group"), help: "The consumer group.") var group: String?
    @Flag(name: .customLong("members"), help: "With --describe: the members.") var members = false
    @Flag(name: .customLong("state"), help: "With --describe: the group state; with --list: each group's state.") var state = false
    @Flag(name: .customLong("offsets"), help: "With --describe: the offsets (the default).") var offsets = false
    @Flag(name: .customLong("verbose"), help: "With --describe --members: each member's assigned partitions.") var verbose = false
    @Option(name: .customLong("topic"), help: "With --reset-offsets: a topic, or T:P[,P...] for some of its partitions (may be repeated).") var topics: [String] = []
    @Flag(name: .customLong("all-topics"), help: "With --reset-offsets: every topic the group has offsets for.") var allTopics = false
    @Flag(name: .customLong("to-earliest")) var toEarliest = false
    @Flag(name: .customLong("to-latest")) var toLatest = false
    @Option(name: .customLong("to-offset")) var toOffset: Int64?
    @Option(name: .customLong("shift-by"), parsing: .unconditional, help: "Move each offset by N (negative: back).") var shiftBy: Int64?
    @Option(name: .customLong("to-datetime"), help: "YYYY-MM-DDTHH:mm:SS.sss, local time unless it ends in Z or +hh:mm/-hh:mm; or epoch milliseconds.") var toDatetime: String?
    @Flag(name: .customLong("dry-run")) var dryRun = false
    @Flag(name: .customLong("execute")) var execute = false

    func run() throws {
        do {
            let tool = try ConsumerGroupsTool(bootstrap: bootstrapServer)
            var lines: [String] = []
            if list {
                lines = try tool.list(withState: state)
            } else if describe {
                guard let g = group else { throw ConsumerGroupsTool.Failure("--describe needs --group G") }
                lines = members ? try tool.describeMembers(g, verbose: verbose) : state ? try tool.describeState(g) : try tool.describeOffsets(g)
            } else if delete {
                guard let g = group else { throw ConsumerGroupsTool.Failure("--delete needs --group G") }
                lines = try tool.delete(g)
            } else if resetOffsets {
                guard let g = group else { throw ConsumerGroupsTool.Failure("--reset-offsets needs --group G") }
                guard !topics.isEmpty || allTopics else { throw ConsumerGroupsTool.Failure("--reset-offsets needs --topic T[:P,...] or --all-topics") }
                let spec: ConsumerGroupsTool.ResetSpec
                if toEarliest { spec = .earliest } else if toLatest { spec = .latest } else if let o = toOffset { spec = .offset(o) }
                else if let s = shiftBy { spec = .shiftBy(s) } else if let d = toDatetime { spec = .datetime(try Self.parseDatetime(d)) }
                else { throw ConsumerGroupsTool.Failure("--reset-offsets needs one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime") }
                if !execute && !dryRun { lines.append("WARN: No action will be performed as the --execute option is missing. In a future major release, the default behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. You should add the --dry-run option explicitly if you are scripting this command and want to keep the current default behavior without prompting.") }
                lines += try tool.resetOffsets(g, topics: topics, allTopics: allTopics, spec: spec, execute: execute)
            } else {
                throw ConsumerGroupsTool.Failure("Command must include exactly one action: --list, --describe, --delete, --reset-offsets")
            }
            for l in lines { print(l) }
        } catch let e as ConsumerGroupsTool.Failure {
            stderr(e.description)
            throw ExitCode.failure
        } catch {
            stderr("\(error)")
            throw ExitCode.failure
        }
    }

    /// Kafka's `--to-datetime`: `YYYY-MM-DDTHH:mm:SS.sss` in the local time zone, or with a
    /// zone (`Z`, `+hh:mm`, `-hh:mm`, `+hhmm`); epoch milliseconds are taken too.
    static func parseDatetime(_ s: String) throws -> Int64 {
        if let ms = Int64(s) { return ms }
        let bad = ConsumerGroupsTool.Failure("--to-datetime: expected YYYY-MM-DDTHH:mm:SS.sss (optionally with Z or +hh:mm), got \(s)")
        var text = Substring(s)
        var offsetMinutes: Int64? = nil
        if text.hasSuffix("Z") {
            offsetMinutes = 0
            text = text.dropLast()
        } else if let signAt = text.lastIndex(where: { $0 == "+" || $0 == "-" }), let t = text.firstIndex(of: "T"), signAt > t {
            let zone = text[text.index(after: signAt)...].filter { $0 != ":" }
            guard zone.count == 4, let hh = Int64(zone.prefix(2)), let mm = Int64(zone.suffix(2)) else { throw bad }
            offsetMinutes = (text[signAt] == "-" ? -1 : 1) * (hh * 60 + mm)
            text = text[..<signAt]
        }
        let fields = text.split(whereSeparator: { "-T:.".contains($0) }).map { Int64($0) }
        guard fields.count == 6 || fields.count == 7, fields.allSatisfy({ $0 != nil }) else { throw bad }
        let f = fields.compactMap { $0 }
        var tmv = tm()
        tmv.tm_year = Int32(f[0] - 1900)
        tmv.tm_mon = Int32(f[1] - 1)
        tmv.tm_mday = Int32(f[2])
        tmv.tm_hour = Int32(f[3])
        tmv.tm_min = Int32(f[4])
        tmv.tm_sec = Int32(f[5])
        tmv.tm_isdst = -1
        let millis = f.count == 7 ? f[6] : 0
        if let offsetMinutes {
            return (Int64(timegm(&tmv)) - offsetMinutes * 60) * 1000 + millis
        }
        return Int64(mktime(&tmv)) * 1000 + millis
    }
}
