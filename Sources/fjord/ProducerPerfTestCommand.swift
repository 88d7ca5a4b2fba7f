#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FjordClient
import NIOConcurrencyHelpers
import NIOCore

/// `fjord producer-perf-test`: Kafka's `kafka-producer-perf-test`, same flags and output.
struct ProducerPerfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "producer-perf-test",
        abstract: "Measure producer throughput and latency.",
        discussion: """
            Examples:
              fjord producer-perf-test --topic perf --num-records 1000000 --record-size 100 --throughput -1 \\
                  --producer-props bootstrap.servers=localhost:9092 acks=1
              fjord producer-perf-test --topic perf --num-records 100000 --record-size 1024 --throughput 20000 \\
                  --producer-props bootstrap.servers=localhost:9092 acks=all compression.type=lz4 linger.ms=10

            Prints a line every 5 seconds and a final line with latency percentiles:
              N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th.
            Latency is from send() to the broker's acknowledgement.
            """
    )

    @Option(name: .customLong("topic"), help: "The topic to produce to.")
    var topic: String

    @Option(name: .customLong("num-records"), help: "The number of records to produce.")
    var numRecords: Int

    @Option(name: .customLong("record-size"), help: "The size of each record in bytes.")
    var recordSize: Int?

    @Option(name: .customLong("payload-file"), help: "Read record payloads from this file (split by --payload-delimiter).")
    var payloadFile: String?

    @Option(name: .customLong("payload-delimiter"), help: "The delimiter of payloads in --payload-file (a newline by default).")
    var payloadDelimiter: String = "\\n"

    @Option(name: .customLong("throughput"), parsing: .unconditional, help: "Throttle to about this many records/sec; -1 for no limit.")
    var throughput: Double

    @Option(name: .customLong("producer-props"), parsing: .upToNextOption,
            help: ArgumentHelp("Producer properties: bootstrap.servers=H:P acks=1 linger.ms=5 ... (several after one flag).", valueName: "key=value"))
    var producerProps: [String] = []

    @Option(name: .customLong("producer.config"), help: "A producer properties file.")
    var producerConfig: String?

    @Option(name: .customLong("bootstrap-server"), help: "The broker(s) to connect to (instead of bootstrap.servers in --producer-props).")
    var bootstrapServer: String?

    @Option(name: .customLong("transactional-id"), help: "Not supported yet (transactions).")
    var transactionalId: String?

    @Flag(name: .customLong("print-metrics"), help: "Accepted for compatibility; prints nothing extra.")
    var printMetrics = false

    func validate() throws {
        if recordSize == nil && payloadFile == nil { throw ValidationError("Either --record-size or --payload-file must be specified") }
        if recordSize != nil && payloadFile != nil { throw ValidationError("--record-size and --payload-file cannot be used together") }
        if numRecords <= 0 { throw ValidationError("--num-records must be positive") }
        if let s = recordSize, s < 0 { throw ValidationError("--record-size must not be negative") }
    }

    func run() throws {
        try ToolRun.run {
            if transactionalId != nil {
                throw ToolFailure("--transactional-id: transactions are not supported by Fjord yet; drop the option to measure non-transactional produce")
            }
            var props: [String: String] = [:]
            if let f = producerConfig { for (k, v) in try ToolSupport.loadProperties(path: f) { props[k] = v } }
            for (k, v) in try ToolSupport.keyValues(producerProps, option: "--producer-props") { props[k] = v }
            try ToolRun.checkSecurity(props)
            guard let bs = bootstrapServer ?? props["bootstrap.servers"] else {
                throw ToolFailure("no brokers given: add bootstrap.servers=host:port to --producer-props (or use --bootstrap-server)")
            }
            if props["client.id"] == nil { props["client.id"] = "perf-producer-client" }
            let cfg = try ProducerConfig(properties: props)

            // Payloads: random upper-case letters (as Kafka's tool), or the file's entries.
            var payloads: [ByteBuffer] = []
            if let size = recordSize {
                var g = SystemRandomNumberGenerator()
                payloads = [ByteBuffer(bytes: (0..<size).map { _ in UInt8(65 + g.next(upperBound: UInt8(26))) })]
            } else if let f = payloadFile {
                let text = try readFile(f)
                let delim = ConsoleFormatter.unescape(payloadDelimiter)
                payloads = splitText(text, by: delim).filter { !$0.isEmpty }.map { ByteBuffer(string: String($0)) }
                if payloads.isEmpty { throw ToolFailure("--payload-file \(f) has no payloads") }
                print("Reading payloads from: \(f)")
                print("Number of messages read: \(payloads.count)")
            }

            let startMs = Clock.wallMs()
            let stats = NIOLockedValueBox(ProducerPerfStats(numRecords: numRecords, startMs: startMs))
            let producer = try KafkaProducer(bootstrap: try BootstrapAddress.parseList(bs), config: cfg) { report in
                let nowNs = Clock.monotonicNs()
                let nowMs = Clock.wallMs()
                if let e = report.error {
                    stderr("org.apache.kafka.common.errors: \(e)")
                    return
                }
                let per = report.recordCount > 0 ? report.payloadBytes / report.recordCount : 0
                var line: String? = nil
                stats.withLockedValue { s in
                    for t in report.enqueuedNs {
                        let latency = Int((nowNs &- t) / 1_000_000)
                        if let l = s.record(latencyMs: latency, bytes: per, nowMs: nowMs) { line = l }
                    }
                }
                if let l = line { printLine(l) }
            }
            // The options are read once: an argument-parser property costs a generic metadata
            // lookup on every access, which showed in the profile of this loop.
            let topic = self.topic
            let throughput = self.throughput
            let numRecords = self.numRecords
            let throttler = Throttler(targetPerSec: throughput, startNs: Clock.monotonicNs())
            var g = SystemRandomNumberGenerator()
            for i in 0..<numRecords {
                let value = payloads.count == 1 ? payloads[0] : payloads[Int(g.next(upperBound: UInt64(payloads.count)))]
                try producer.send(topic: topic, key: nil, value: value)
                if throughput > 0 {
                    let now = Clock.monotonicNs()
                    if throttler.shouldThrottle(sent: i + 1, nowNs: now) {
                        let ns = throttler.sleepNs(sent: i + 1, nowNs: now)
                        if ns > 0 { usleep(UInt32(min(ns / 1000, 1_000_000))) }
                    }
                }
            }
            try producer.flush()
            let final = stats.withLockedValue { $0.totalLine(nowMs: Clock.wallMs()) }
            printLine(final)
            let errors = producer.errorCount
            producer.close()
            if errors > 0 { throw ToolFailure("\(errors) batch(es) failed") }
        }
    }

    func readFile(_ path: String) throws -> String {
        guard let f = fopen(path, "r") else { throw ToolFailure("cannot read --payload-file \(path)") }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Splits `text` at every occurrence of `sep`.
func splitText(_ text: String, by sep: String) -> [Substring] {
    guard !sep.isEmpty else { return [Substring(text)] }
    var out: [Substring] = []
    var start = text.startIndex
    var i = text.startIndex
    while i < text.endIndex {
        if text[i...].hasPrefix(sep) {
            out.append(text[start..<i])
            i = text.index(i, offsetBy: sep.count)
            start = i
        } else {
            i = text.index(after: i)
        }
    }
    out.append(text[start...])
    return out
}

/// Writes one line to standard output at once (callbacks print from the client's thread).
func printLine(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { p in
        var done = 0
        while done < p.count {
            let n = write(1, p.baseAddress! + done, p.count - done)
            if n <= 0 { break }
            done += n
        }
    }
}
