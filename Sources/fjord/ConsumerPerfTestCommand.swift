import ArgumentParser
import FjordClient

/// `fjord consumer-perf-test`: Kafka's `kafka-consumer-perf-test` (CSV summary).
struct ConsumerPerfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer-perf-test",
        abstract: "Measure consumer throughput.",
        discussion: """
            Examples:
              fjord consumer-perf-test --bootstrap-server localhost:9092 --topic perf --messages 1000000
              fjord consumer-perf-test --bootstrap-server localhost:9092 --topic perf --messages 100000 --show-detailed-stats --reporting-interval 1000

            Prints Kafka's CSV: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
            nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec.
            Reads every partition from the beginning (--from-latest: from the end); with --group it joins
            the group, starts at its committed offsets and reports the join as rebalance.time.ms.
            """
    )

    @Option(name: .customLong("bootstrap-server"), help: ArgumentHelp("The broker(s) to connect to: host:port[,host:port...].", valueName: "host:port"))
    var bootstrapServer: String?

    @Option(name: .customLong("topic"), help: "The topic to consume from.")
    var topic: String

    @Option(name: .customLong("messages"), help: "The number of messages to consume.")
    var messages: Int

    @Option(name: .customLong("group"), help: "Join this consumer group (start at its committed offsets, commit at the end); without it every partition is read directly.")
    var group: String?

    @Option(name: .customLong("fetch-size"), help: "Bytes to fetch per partition per request.")
    var fetchSize: Int32 = 1_048_576

    @Flag(name: .customLong("from-latest"), help: "Start from the end of each partition.")
    var fromLatest = false

    @Option(name: .customLong("timeout"), help: "Give up when no message arrives for this many ms.")
    var timeout: Int64 = 10_000

    @Flag(name: .customLong("hide-header"), help: "Do not print the CSV header.")
    var hideHeader = false

    @Flag(name: .customLong("show-detailed-stats"), help: "Print a line every --reporting-interval ms.")
    var showDetailedStats = false

    @Option(name: .customLong("reporting-interval"), help: "Interval of --show-detailed-stats lines in ms.")
    var reportingInterval: Int64 = 5_000

    @Option(name: .customLong("consumer.config"), help: "A consumer properties file.")
    var consumerConfig: String?

    @Flag(name: .customLong("print-metrics"), help: "Accepted for compatibility.")
    var printMetrics = false

    func validate() throws {
        if messages <= 0 { throw ValidationError("--messages must be positive") }
    }

    func run() throws {
        try ToolRun.run {
            guard let bs = bootstrapServer else {
                throw ToolFailure("Missing required option --bootstrap-server: give a broker to connect to, e.g. --bootstrap-server localhost:9092")
            }
            var props: [String: String] = [:]
            if let f = consumerConfig { for (k, v) in try ToolSupport.loadProperties(path: f) { props[k] = v } }
            try ToolRun.checkSecurity(props)
            props["max.partition.fetch.bytes"] = "\(fetchSize)"
            props["auto.offset.reset"] = fromLatest ? "latest" : "earliest"
            if props["client.id"] == nil { props["client.id"] = "perf-consumer-client" }
            let cfg = try ConsumerConfig(properties: props)
            let consumer = KafkaConsumer(bootstrap: try BootstrapAddress.parseList(bs), config: cfg)
            defer { consumer.close() }
            let startMs = Clock.wallMs()
            var rebalanceMs: Int64 = 0
            var membership: ConsumerGroup? = nil
            if let g = group {
                // Join the group: the join is the rebalance time; committed offsets are the start.
                _ = try consumer.partitions(of: topic)
                let m = ConsumerGroup(client: consumer.client, groupId: g, topics: [topic])
                let joinStart = Clock.wallMs()
                let committed = try m.join()
                rebalanceMs = Clock.wallMs() - joinStart
                var a: [TopicPartition: StartOffset] = [:]
                for (tp, off) in committed { a[tp] = off.map { .offset($0) } ?? (fromLatest ? .latest : .earliest) }
                consumer.assign(a)
                membership = m
            } else {
                var assignment: [TopicPartition: StartOffset] = [:]
                for p in try consumer.partitions(of: topic) { assignment[TopicPartition(topic, p)] = fromLatest ? .latest : .earliest }
                consumer.assign(assignment)
            }
            defer {
                if let m = membership {
                    try? m.commit(consumer.positions())
                    m.leave()
                }
            }
            if !hideHeader {
                print(showDetailedStats
                      ? "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
                      : ConsumerPerfFormat.header)
            }
            var count = 0
            var bytes: Int64 = 0
            var lastRecordMs = Clock.wallMs()
            var lastReportMs = startMs
            var lastReportCount = 0
            var lastReportBytes: Int64 = 0
            var endMs = startMs
            while count < messages {
                let records = try consumer.poll(timeoutMs: 100, maxRecords: messages - count)
                if let m = membership, try m.poll(positions: { consumer.positions() }) == .rebalance {
                    try? m.commit(consumer.positions())
                    let committed = try m.join()
                    var a: [TopicPartition: StartOffset] = [:]
                    for (tp, off) in committed { a[tp] = off.map { .offset($0) } ?? (fromLatest ? .latest : .earliest) }
                    consumer.assign(a)
                }
                let now = Clock.wallMs()
                if records.isEmpty {
                    if now - lastRecordMs > timeout {
                        stderr("WARNING: Exiting before consuming the expected number of messages: timeout (\(timeout) ms) exceeded. You can use the --timeout option to increase the timeout.")
                        break
                    }
                    continue
                }
                lastRecordMs = now
                for r in records.prefix(messages - count) {
                    count += 1
                    bytes += Int64(r.key?.readableBytes ?? 0) + Int64(r.value?.readableBytes ?? 0)
                }
                endMs = now
                if showDetailedStats && now - lastReportMs >= reportingInterval {
                    let elapsed = Double(now - lastReportMs) / 1000.0
                    let mb = Double(bytes - lastReportBytes) / 1_048_576.0
                    let totalMb = Double(bytes) / 1_048_576.0
                    print("\(ToolSupport.localTimestamp(ms: now)), 0, \(ToolSupport.fixed(totalMb, 4)), \(ToolSupport.fixed(mb / elapsed, 4)), \(count), \(ToolSupport.fixed(Double(count - lastReportCount) / elapsed, 4)), 0, \(now - lastReportMs), \(ToolSupport.fixed(mb / elapsed, 4)), \(ToolSupport.fixed(Double(count - lastReportCount) / elapsed, 4))")
                    lastReportMs = now
                    lastReportCount = count
                    lastReportBytes = bytes
                }
            }
            if !showDetailedStats {
                print(ConsumerPerfFormat.line(startMs: startMs, endMs: max(endMs, startMs + 1), bytes: bytes, messages: count, rebalanceMs: rebalanceMs))
            }
        }
    }
}
