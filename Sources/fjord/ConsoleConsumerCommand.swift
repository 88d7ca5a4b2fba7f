import ArgumentParser
import FjordClient
import FjordProtocol

/// `fjord console-consumer`: Kafka's `kafka-console-consumer`.
struct ConsoleConsumerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console-consumer",
        abstract: "Read records from a topic and print them to standard output.",
        discussion: """
            Examples:
              fjord console-consumer --bootstrap-server localhost:9092 --topic orders --from-beginning
              fjord console-consumer --bootstrap-server localhost:9092 --topic orders --from-beginning --max-messages 10 \\
                  --property print.key=true --property print.timestamp=true --property print.partition=true --property print.offset=true
              fjord console-consumer --bootstrap-server localhost:9092 --topic orders --partition 0 --offset 42
              fjord console-consumer --bootstrap-server localhost:9092 --topic orders --from-beginning --timeout-ms 5000

            Formatter properties (--property): print.timestamp, print.partition, print.offset,
            print.headers, print.key, print.value, key.separator, line.separator,
            headers.separator, headers.key.separator, null.literal.
            With --group the consumer joins the group (partitions assigned by the range assignor,
            offsets committed every 5 s and at exit); without it every partition is read directly.
            Stops after --max-messages, after --timeout-ms without a record, or at Ctrl-C,
            then prints "Processed a total of N messages" on standard error.
            """
    )

    @Option(name: .customLong("bootstrap-server"), help: ArgumentHelp("The broker(s) to connect to: host:port[,host:port...].", valueName: "host:port"))
    var bootstrapServer: String?

    @Option(name: .customLong("topic"), help: "The topic to consume from.")
    var topic: String

    @Flag(name: .customLong("from-beginning"), help: "Start with the earliest record present rather than the latest.")
    var fromBeginning = false

    @Option(name: .customLong("group"), help: "The consumer group id: join the group, start from its committed offsets, commit as records are printed.")
    var group: String?

    @Option(name: .customLong("partition"), help: "Consume only this partition (starts at the end unless --from-beginning or --offset).")
    var partition: Int32?

    @Option(name: .customLong("offset"), parsing: .unconditional, help: "With --partition: earliest, latest, or an offset (default latest).")
    var offset: String?

    @Option(name: .customLong("max-messages"), help: "Exit after this many records.")
    var maxMessages: Int?

    @Option(name: .customLong("timeout-ms"), help: "Exit when no record arrives for this many milliseconds.")
    var timeoutMs: Int64?

    @Option(name: .customLong("property"), help: ArgumentHelp("A formatter property: print.key=true, ... (repeatable).", valueName: "key=value"))
    var properties: [String] = []

    @Option(name: .customLong("consumer-property"), help: ArgumentHelp("A consumer property: fetch.max.wait.ms=100, ... (repeatable).", valueName: "key=value"))
    var consumerProperties: [String] = []

    @Option(name: .customLong("consumer.config"), help: "A consumer properties file.")
    var consumerConfig: String?

    @Option(name: .customLong("isolation-level"), help: "read_uncommitted (default) or read_committed.")
    var isolationLevel: String?

    @Flag(name: .customLong("skip-message-on-error"), help: "Accepted for compatibility (corrupt data stops the tool).")
    var skipMessageOnError = false

    func validate() throws {
        if group != nil && partition != nil {
            throw ValidationError("Options group and partition cannot be specified together: a group assigns the partitions")
        }
        if offset != nil && partition == nil {
            throw ValidationError("--offset needs --partition: the offset of which partition?")
        }
        if offset != nil && fromBeginning {
            throw ValidationError("--offset and --from-beginning cannot be used together")
        }
        if let o = offset, !["earliest", "latest"].contains(o), Int64(o) == nil {
            throw ValidationError("--offset must be earliest, latest or a number, not \(o)")
        }
    }

    func run() throws {
        var processed = 0
        defer { stderr("Processed a total of \(processed) messages") }
        try ToolRun.run {
            guard let bs = bootstrapServer else {
                throw ToolFailure("Missing required option --bootstrap-server: give a broker to connect to, e.g. --bootstrap-server localhost:9092")
            }
            InterruptFlag.install()
            var props: [String: String] = [:]
            if let f = consumerConfig { for (k, v) in try ToolSupport.loadProperties(path: f) { props[k] = v } }
            for (k, v) in try ToolSupport.keyValues(consumerProperties, option: "--consumer-property") { props[k] = v }
            try ToolRun.checkSecurity(props)
            if let i = isolationLevel { props["isolation.level"] = i }
            props["auto.offset.reset"] = props["auto.offset.reset"] ?? (fromBeginning ? "earliest" : "latest")
            if props["client.id"] == nil { props["client.id"] = "console-consumer" }
            let cfg = try ConsumerConfig(properties: props)
            let formatter = try ConsoleFormatter(properties: try ToolSupport.keyValues(properties, option: "--property"))
            let consumer = KafkaConsumer(bootstrap: try BootstrapAddress.parseList(bs), config: cfg)
            defer { consumer.close() }

            var membership: ConsumerGroup? = nil
            if let g = group ?? props["group.id"] {
                let served = (try? consumer.client.anyConnection().wait())?.versions.broker[.findCoordinator] != nil
                if served {
                    membership = ConsumerGroup(client: consumer.client, groupId: g, topics: [topic])
                } else {
                    stderr("WARN --group \(g): the cluster has no group coordinator (FindCoordinator is not served); reading every partition directly without committing offsets.")
                }
            }
            let reset: StartOffset = fromBeginning ? .earliest : .latest
            func joinGroup(_ m: ConsumerGroup) throws {
                let committed = try m.join()
                var a: [TopicPartition: StartOffset] = [:]
                for (tp, off) in committed { a[tp] = off.map { .offset($0) } ?? reset }
                consumer.assign(a)
            }
            defer {
                if let m = membership {
                    try? m.commit(consumer.positions())
                    m.leave()
                }
            }

            let start: StartOffset
            if let o = offset {
                start = o == "earliest" ? .earliest : (o == "latest" ? .latest : .offset(Int64(o)!))
            } else {
                start = fromBeginning ? .earliest : .latest
            }
            var assignment: [TopicPartition: StartOffset] = [:]
            if let m = membership {
                _ = try consumer.partitions(of: topic, timeoutMs: 5_000)
                try joinGroup(m)
            } else if let p = partition {
                let all = try consumer.partitions(of: topic, timeoutMs: 5_000)
                guard all.contains(p) else {
                    throw ToolFailure("partition \(p) does not exist in topic \(topic) (it has partitions 0-\(all.count - 1))")
                }
                assignment[TopicPartition(topic, p)] = start
            } else {
                for p in try consumer.partitions(of: topic, timeoutMs: 5_000) { assignment[TopicPartition(topic, p)] = start }
            }
            if membership == nil { consumer.assign(assignment) }

            let out = ByteOutput()
            var line: [UInt8] = []
            line.reserveCapacity(4096)
            var lastRecordNs = Clock.monotonicNs()
            while !InterruptFlag.interrupted {
                if let m = maxMessages, processed >= m { break }
                var wait: Int64 = 200
                if let t = timeoutMs {
                    let idle = Int64((Clock.monotonicNs() - lastRecordNs) / 1_000_000)
                    if idle >= t { break }
                    wait = min(wait, t - idle)
                }
                let records = try consumer.poll(timeoutMs: wait, maxRecords: maxMessages.map { $0 - processed } ?? 100_000)
                if let m = membership, try m.poll(positions: { consumer.positions() }) == .rebalance {
                    // Records already fetched still go out; positions are committed before the new assignment.
                    try? m.commit(consumer.positions())
                    try joinGroup(m)
                }
                if records.isEmpty { continue }
                lastRecordNs = Clock.monotonicNs()
                for r in records {
                    if let m = maxMessages, processed >= m { break }
                    line.removeAll(keepingCapacity: true)
                    formatter.format(r, into: &line)
                    out.write(bytes: line)
                    processed += 1
                }
                if !out.flush() { break }
            }
            out.flush()
        }
    }
}
