import FjordClient
import FjordProtocol
import FjordRecords
import FjordTestSupport
import NIOCore
import XCTest

/// The client's pure parts: partitioning, version negotiation, address parsing, tool formats.
final class ClientUnitTests: XCTestCase {
    func testMurmur2MatchesKafkaPython() throws {
        let keys = ["", "a", "ab", "abc", "21", "foobar", "a-little-bit-long-string", "a-little-bit-longer-string",
                    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", "key-17", "\u{00e9}t\u{00e9}"]
        let script = #"""
            import sys
            from kafka.partitioner.default import murmur2
            for k in sys.argv[1:]:
                h = murmur2(k.encode("utf-8"))
                print(h - (1 << 32) if h >= (1 << 31) else h)
            """#
        let out = String(decoding: try TestPython.run(script, args: keys), as: UTF8.self)
        let expected = out.split(separator: "\n").map { Int32($0)! }
        XCTAssertEqual(expected.count, keys.count)
        for (k, e) in zip(keys, expected) {
            XCTAssertEqual(Murmur2.hash(Array(k.utf8)), e, "murmur2(\(k))")
        }
        // Partitions as Kafka's default partitioner picks them.
        XCTAssertEqual(Murmur2.partition(forKey: ByteBuffer(string: "foobar"), partitions: 3),
                       Murmur2.toPositive(Murmur2.hash(Array("foobar".utf8))) % 3)
    }

    func testStickyPartitionerMovesOnAfterBatchSize() {
        var p = Partitioner(strategy: .default, stickyBytes: 100)
        let first = p.partition(topic: "t", key: nil, size: 40, count: 3)
        XCTAssertEqual(p.partition(topic: "t", key: nil, size: 40, count: 3), first)
        XCTAssertEqual(p.partition(topic: "t", key: nil, size: 40, count: 3), first)
        // Another topic in between has its own sticky partition and leaves this one's alone.
        let other = p.partition(topic: "u", key: nil, size: 40, count: 50)
        XCTAssertEqual(p.partition(topic: "u", key: nil, size: 40, count: 50), other)
        let next = p.partition(topic: "t", key: nil, size: 40, count: 3)
        XCTAssertNotEqual(next, first)
        XCTAssertEqual(p.partition(topic: "u", key: nil, size: 40, count: 50), other)
        // Keyed records ignore stickiness.
        let k = ByteBuffer(string: "k1")
        XCTAssertEqual(p.partition(topic: "t", key: k, size: 10, count: 3), p.partition(topic: "t", key: k, size: 10, count: 3))
        var rr = Partitioner(strategy: .roundRobin)
        let seq = (0..<6).map { _ in rr.partition(topic: "t", key: nil, size: 1, count: 3) }
        XCTAssertEqual(Set(seq), [0, 1, 2])
        XCTAssertEqual(seq[0], seq[3])
    }

    func testVersionNegotiationPicksHighestCommonVersion() {
        XCTAssertEqual(ApiVersionTable.negotiate(client: 3...11, broker: 0...9), 9)
        XCTAssertEqual(ApiVersionTable.negotiate(client: 3...11, broker: 0...13), 11)
        XCTAssertEqual(ApiVersionTable.negotiate(client: 4...16, broker: 4...4), 4)
        XCTAssertNil(ApiVersionTable.negotiate(client: 4...16, broker: 0...3))
        var r = ApiVersionsResponse()
        var v = ApiVersionsResponse.ApiVersion()
        v.apiKey = ApiKey.fetch.rawValue
        v.minVersion = 4
        v.maxVersion = 17
        r.apiKeys = [v]
        let t = ApiVersionTable(r)
        XCTAssertEqual(t.version(for: .fetch), ClientApiVersions.supported[.fetch]!.upperBound)
        XCTAssertNil(t.version(for: .produce))
    }

    func testBootstrapParsing() throws {
        let a = try BootstrapAddress.parseList("localhost:9092, 127.0.0.1:9093,PLAINTEXT://h:1,[::1]:9094")
        XCTAssertEqual(a.map(\.description), ["localhost:9092", "127.0.0.1:9093", "h:1", "[::1]:9094"])
        XCTAssertThrowsError(try BootstrapAddress.parseList("localhost"))
        XCTAssertThrowsError(try BootstrapAddress.parseList("localhost:http"))
        XCTAssertThrowsError(try BootstrapAddress.parseList(""))
    }

    func testProducerConfigFromProperties() throws {
        let c = try ProducerConfig(properties: ["acks": "all", "linger.ms": "20", "compression.type": "zstd", "batch.size": "65536"])
        XCTAssertEqual(c.acks, -1)
        XCTAssertTrue(c.isIdempotent)
        XCTAssertEqual(c.compression, .zstd)
        XCTAssertEqual(c.lingerMs, 20)
        XCTAssertFalse(try ProducerConfig(properties: ["acks": "1"]).isIdempotent)
        XCTAssertThrowsError(try ProducerConfig(properties: ["acks": "2"]))
        XCTAssertThrowsError(try ProducerConfig(properties: ["compression.type": "brotli"]))
        XCTAssertThrowsError(try ProducerConfig(properties: ["acks": "1", "enable.idempotence": "true"]))
    }

    func testTopicDescribeFormat() {
        let t = TopicInfo(name: "orders", id: .one, partitions: [
            PartitionInfo(partition: 1, leader: -1, replicas: [2, 3], isr: []),
            PartitionInfo(partition: 0, leader: 1, replicas: [1, 2], isr: [1, 2]),
        ])
        let configs = [ConfigEntry(name: "retention.ms", value: "1000", source: .dynamicTopicConfig),
                       ConfigEntry(name: "segment.bytes", value: "1073741824", source: .defaultConfig),
                       ConfigEntry(name: "min.insync.replicas", value: "2", source: .staticBrokerConfig)]
        let lines = TopicsFormat.describe(t, configs: configs, filter: .init(), liveBrokers: [1, 2, 3])
        XCTAssertEqual(lines, [
            "Topic: orders\tTopicId: AAAAAAAAAAAAAAAAAAAAAQ\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: retention.ms=1000,min.insync.replicas=2",
            "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2",
            "\tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 2,3\tIsr: ",
        ])
        var f = TopicsFormat.Filter()
        f.unavailable = true
        XCTAssertEqual(TopicsFormat.describe(t, configs: configs, filter: f, liveBrokers: [1, 2, 3]),
                       ["\tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 2,3\tIsr: "])
        f = TopicsFormat.Filter()
        f.underReplicated = true
        XCTAssertEqual(TopicsFormat.describe(t, configs: configs, filter: f, liveBrokers: [1, 2, 3]).count, 1)
    }

    func testConfigsFormat() {
        let e = ConfigEntry(name: "retention.ms", value: "3600000", source: .dynamicTopicConfig,
                            synonyms: [ConfigSynonym(name: "retention.ms", value: "3600000", source: .dynamicTopicConfig),
                                       ConfigSynonym(name: "log.retention.hours", value: "168", source: .defaultConfig)])
        XCTAssertEqual(ConfigsFormat.entryLine(e),
                       "  retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000, DEFAULT_CONFIG:log.retention.hours=168}")
        XCTAssertEqual(ConfigsFormat.heading(entityType: .topic, name: "t", all: false), "Dynamic configs for topic t are:")
        XCTAssertEqual(ConfigsFormat.heading(entityType: .broker, name: "", all: false), "Default configs for brokers in the cluster are:")
        XCTAssertEqual(ConfigsFormat.heading(entityType: .broker, name: "1", all: true), "All configs for broker 1 are:")
        XCTAssertEqual(try ToolSupport.configList("a=1,b=[x,y],c = 3").map { "\($0.0)=\($0.1)" }, ["a=1", "b=x,y", "c=3"])
    }

    func testConsoleFormatter() throws {
        let f = try ConsoleFormatter(properties: [("print.key", "true"), ("print.timestamp", "true"), ("print.partition", "true"),
                                                  ("print.offset", "true"), ("print.headers", "true")])
        let r = ConsumerRecord(topic: "t", partition: 2, offset: 7, timestamp: 123, timestampType: .createTime, key: nil,
                               value: ByteBuffer(string: "v"), headers: [RecordHeader(key: "h", value: "1")], leaderEpoch: 0)
        var out: [UInt8] = []
        f.format(r, into: &out)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "CreateTime:123\tPartition:2\tOffset:7\th:1\tnull\tv\n")
        var plain: [UInt8] = []
        ConsoleFormatter().format(r, into: &plain)
        XCTAssertEqual(String(decoding: plain, as: UTF8.self), "v\n")
        let reader = try LineReaderConfig(properties: [("parse.key", "true"), ("key.separator", ":")])
        let m = try reader.parse("k1:hello:world", lineNumber: 1)
        XCTAssertEqual(m.key.map { String(buffer: $0) }, "k1")
        XCTAssertEqual(m.value.map { String(buffer: $0) }, "hello:world")
        XCTAssertThrowsError(try reader.parse("nokey", lineNumber: 3)) { e in
            XCTAssertEqual("\(e)", "No key separator found on line number 3: 'nokey'")
        }
    }

    func testPerfStatsLines() {
        var s = ProducerPerfStats(numRecords: 4, startMs: 0)
        XCTAssertNil(s.record(latencyMs: 2, bytes: 100, nowMs: 1000))
        XCTAssertNil(s.record(latencyMs: 4, bytes: 100, nowMs: 2000))
        XCTAssertNil(s.record(latencyMs: 6, bytes: 100, nowMs: 3000))
        let w = s.record(latencyMs: 8, bytes: 100, nowMs: 5000)
        XCTAssertEqual(w, "4 records sent, 0.8 records/sec (0.00 MB/sec), 5.0 ms avg latency, 8.0 ms max latency.")
        XCTAssertEqual(s.totalLine(nowMs: 4000),
                       "4 records sent, 1.000000 records/sec (0.00 MB/sec), 5.00 ms avg latency, 8.00 ms max latency, 6 ms 50th, 8 ms 95th, 8 ms 99th, 8 ms 99.9th.")
        XCTAssertEqual(ToolSupport.fixed(2.25, 1), "2.3")
        XCTAssertEqual(ToolSupport.fixed(0.004, 2), "0.00")
        XCTAssertEqual(ToolSupport.fixed(12345.6789, 6), "12345.678900")
        XCTAssertTrue(ConsumerPerfFormat.header.hasPrefix("start.time, end.time, data.consumed.in.MB"))
    }

    func testLeaderElectionFormat() {
        let rs = [ElectionResult(partition: TopicPartition("t", 0), error: nil, errorCode: 0, message: nil),
                  ElectionResult(partition: TopicPartition("t", 1), error: .electionNotNeeded, errorCode: 84, message: nil),
                  ElectionResult(partition: TopicPartition("t", 2), error: nil, errorCode: 0, message: nil)]
        let (lines, failures) = LeaderElectionFormat.lines(rs, unclean: false)
        XCTAssertEqual(failures, 0)
        XCTAssertEqual(lines, ["Successfully completed leader election (PREFERRED) for partitions t-0, t-2",
                               "Valid replica already elected for partitions t-1"])
    }
}
