#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FjordClient
import FjordRecords
import NIOConcurrencyHelpers
import NIOCore

/// `fjord console-producer`: Kafka's `kafka-console-producer` (one record per stdin line).
struct ConsoleProducerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console-producer",
        abstract: "Read lines from standard input and publish them to a topic.",
        discussion: """
            Examples:
              seq 1 100 | fjord console-producer --bootstrap-server localhost:9092 --topic orders
              fjord console-producer --bootstrap-server localhost:9092 --topic orders --property parse.key=true --property key.separator=:
              fjord console-producer --bootstrap-server localhost:9092 --topic orders --compression-codec zstd --request-required-acks 1
              fjord console-producer --bootstrap-server localhost:9092 --topic orders --producer-property linger.ms=50

            Line properties (--property): parse.key, key.separator (default tab), parse.headers,
            headers.delimiter, headers.separator, headers.key.separator, null.marker, ignore.error.
            Type lines and end with Ctrl-D; every record is acknowledged before the tool exits.
            """
    )

    @Option(name: .customLong("bootstrap-server"), help: ArgumentHelp("The broker(s) to connect to: host:port[,host:port...].", valueName: "host:port"))
    var bootstrapServer: String?

    @Option(name: .customLong("topic"), help: "The topic to produce messages to.")
    var topic: String

    @Option(name: .customLong("property"), help: ArgumentHelp("A line-reader property: parse.key=true, key.separator=:, ... (repeatable).", valueName: "key=value"))
    var properties: [String] = []

    @Option(name: .customLong("producer-property"), help: ArgumentHelp("A producer property: acks=all, linger.ms=5, ... (repeatable).", valueName: "key=value"))
    var producerProperties: [String] = []

    @Option(name: .customLong("producer.config"), help: "A producer properties file.")
    var producerConfig: String?

    @Option(name: .customLong("compression-codec"), help: "none, gzip, snappy, lz4 or zstd.")
    var compressionCodec: String?

    @Option(name: .customLong("request-required-acks"), parsing: .unconditional, help: "The acks the producer requires: 0, 1, -1 or all (default -1).")
    var requestRequiredAcks: String?

    @Option(name: .customLong("batch-size"), help: "Records sent in one batch when not sending synchronously (bytes, default 16384).")
    var batchSize: Int?

    @Option(name: .customLong("timeout"), help: "linger.ms: how long a batch waits for more records (default 1000 as in Kafka's tool when given).")
    var lingerMs: Int?

    @Option(name: .customLong("message-send-max-retries"), help: "retries.")
    var retries: Int?

    @Option(name: .customLong("request-timeout-ms"), help: "request.timeout.ms.")
    var requestTimeoutMs: Int?

    @Flag(name: .customLong("sync"), help: "Send each line synchronously (wait for its acknowledgement).")
    var sync = false

    func run() throws {
        try ToolRun.run {
            guard let bs = bootstrapServer else {
                throw ToolFailure("Missing required option --bootstrap-server: give a broker to connect to, e.g. --bootstrap-server localhost:9092")
            }
            var props: [String: String] = [:]
            if let f = producerConfig { for (k, v) in try ToolSupport.loadProperties(path: f) { props[k] = v } }
            for (k, v) in try ToolSupport.keyValues(producerProperties, option: "--producer-property") { props[k] = v }
            try ToolRun.checkSecurity(props)
            if let c = compressionCodec { props["compression.type"] = c.isEmpty ? "gzip" : c }
            props["acks"] = requestRequiredAcks ?? props["acks"] ?? "-1"
            if let b = batchSize { props["batch.size"] = "\(b)" }
            if let l = lingerMs { props["linger.ms"] = "\(l)" }
            if let r = retries { props["retries"] = "\(r)" }
            if let r = requestTimeoutMs { props["request.timeout.ms"] = "\(r)" }
            if props["client.id"] == nil { props["client.id"] = "console-producer" }
            for k in props.keys where !ProducerConfig.knownKeys.contains(k) && !k.hasPrefix("ssl.") && !k.hasPrefix("sasl.") && k != "security.protocol" {
                stderr("WARN The configuration '\(k)' was supplied but isn't a known config.")
            }
            let cfg = try ProducerConfig(properties: props)
            let lineProps = try ToolSupport.keyValues(properties, option: "--property")
            let reader = try LineReaderConfig(properties: lineProps)

            let failures = NIOLockedValueBox(0)
            let topicName = topic
            let clientId = cfg.clientId
            // Kafka's producer warns on every retried attempt; without it a producer that
            // cannot write (too few in-sync replicas, no leader) is silent until it gives up.
            let warnRetry: @Sendable (TopicPartition, Int, KafkaClientError) -> Void = { tp, left, e in
                let code = e.errorCode.map { "\($0.name)" } ?? "\(e)"
                stderr("WARN [Producer clientId=\(clientId)] Got error produce response on topic-partition \(tp), retrying (\(left) attempts left). Error: \(code)")
            }
            let producer = try KafkaProducer(bootstrap: try BootstrapAddress.parseList(bs), config: cfg, onDelivery: { report in
                if let e = report.error {
                    failures.withLockedValue { $0 += report.recordCount }
                    stderr("ERROR Error when sending message to topic \(topicName) (\(report.recordCount) record(s), partition \(report.partition)) with error: \(e)")
                }
            }, onRetry: warnRetry)
            defer { producer.close() }
            let prompt = ToolRun.stdinIsTerminal
            var lineNumber = 0
            if prompt { writePrompt() }
            while let line = readLine(strippingNewline: true) {
                lineNumber += 1
                let msg: LineReaderConfig.Message
                do {
                    msg = try reader.parse(line, lineNumber: lineNumber)
                } catch {
                    throw ToolFailure("\(error)")
                }
                try producer.send(topic: topic, key: msg.key, value: msg.value, headers: msg.headers)
                if sync { try producer.flush() }
                if prompt { try producer.flush(); writePrompt() }
            }
            try producer.flush()
            let failed = failures.withLockedValue { $0 }
            if failed > 0 {
                throw ToolFailure("\(failed) of \(lineNumber) records were not delivered")
            }
        }
    }

    func writePrompt() {
        var s = ">"
        s.withUTF8 { p in _ = write(1, p.baseAddress, p.count) }
    }
}
