import FjordClient
import FjordProtocol
import FjordRecords
import FjordTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import XCTest

/// The client against real `fjord` processes: admin operations, producing with every codec
/// and reading it back (also with confluent-kafka on the other side), and an idempotent
/// producer that loses and duplicates nothing while a partition leader is killed.
final class ClientClusterTests: XCTestCase {
    func bootstrap(_ c: LocalCluster) throws -> [BootstrapAddress] { try BootstrapAddress.parseList(c.bootstrap) }

    func testAdminTopicLifecycle() throws {
        let c = try LocalCluster(count: 3, extra: ["auto.create.topics.enable=false"])
        defer { c.stopAll() }
        try c.startAll()
        let client = KafkaClient(config: ClientConfig(bootstrap: try bootstrap(c)))
        defer { client.close() }
        let admin = KafkaAdmin(client: client)
        let md = try client.awaitMetadata(topics: [], timeoutMs: 30_000) { $0.brokers.count == 3 }.wait()
        XCTAssertEqual(md.brokerIds, [1, 2, 3])
        let created = try admin.createTopic(NewTopic(name: "orders", partitions: 4, replicationFactor: 3, configs: [("retention.ms", "3600000")])).wait()
        XCTAssertNotEqual(created.topicId, .zero)
        XCTAssertThrowsError(try admin.createTopic(NewTopic(name: "orders", partitions: 1, replicationFactor: 1)).wait()) { e in
            XCTAssertEqual((e as? KafkaClientError)?.errorCode, .topicAlreadyExists)
        }
        let t = try client.awaitMetadata(topics: ["orders"], timeoutMs: 15_000) { md in
            md.topics["orders"]?.partitions.count == 4 && md.topics["orders"]!.partitions.allSatisfy { $0.leader >= 0 }
        }.wait().topics["orders"]!
        XCTAssertEqual(t.replicationFactor, 3)
        XCTAssertEqual(t.id, created.topicId)
        let configs = try admin.describeConfigs(type: .topic, name: "orders").wait()
        XCTAssertEqual(configs.first { $0.name == "retention.ms" }?.value, "3600000")
        XCTAssertEqual(configs.first { $0.name == "retention.ms" }?.source, .dynamicTopicConfig)
        try admin.incrementalAlterConfigs(type: .topic, name: "orders", ops: [.set("retention.ms", "60000"), .set("cleanup.policy", "compact")]).wait()
        // Brokers serve DescribeConfigs from their replayed image: eventually consistent.
        var after: [ConfigEntry] = []
        _ = try LocalCluster.eventually(10) { () throws -> Bool? in
            after = try admin.describeConfigs(type: .topic, name: "orders").wait()
            return after.first { $0.name == "cleanup.policy" }?.value == "compact" ? true : nil
        }
        XCTAssertEqual(after.first { $0.name == "retention.ms" }?.value, "60000")
        XCTAssertEqual(after.first { $0.name == "cleanup.policy" }?.value, "compact")
        try admin.createPartitions(topic: "orders", count: 6).wait()
        XCTAssertThrowsError(try admin.createPartitions(topic: "orders", count: 2).wait()) { e in
            XCTAssertEqual((e as? KafkaClientError)?.errorCode, .invalidPartitions)
        }
        let cluster = try admin.describeCluster().wait()
        XCTAssertEqual(cluster.clusterId, c.clusterId)
        XCTAssertEqual(cluster.brokers.map(\.id), [1, 2, 3])
        let elections = try admin.electLeaders(unclean: false, partitions: [TopicPartition("orders", 0)]).wait()
        XCTAssertEqual(elections.map(\.partition), [TopicPartition("orders", 0)])
        let deleted = try admin.deleteTopics(["orders", "nope"]).wait()
        XCTAssertNil(deleted["orders"]!)
        XCTAssertEqual(deleted["nope"]!?.errorCode, .unknownTopicOrPartition)
        XCTAssertNotNil(try LocalCluster.eventually(10) { try admin.listTopics().wait().contains("orders") ? nil : true })
    }

    func testProduceAndConsumeEveryCodecWithConfluentInterop() throws {
        let c = try LocalCluster(count: 1)
        defer { c.stopAll() }
        try c.startAll()
        let client = KafkaClient(config: ClientConfig(bootstrap: try bootstrap(c)))
        defer { client.close() }
        let admin = KafkaAdmin(client: client)
        _ = try client.awaitMetadata(topics: [], timeoutMs: 30_000) { $0.brokers.count == 1 }.wait()
        for codec in CompressionCodec.allCases {
            let topic = "codec-\(codec.name)"
            _ = try admin.createTopic(NewTopic(name: topic, partitions: 3, replicationFactor: 1)).wait()
            var cfg = ProducerConfig()
            cfg.compression = codec
            cfg.lingerMs = 2
            let failures = NIOLockedValueBox(0)
            let offsets = NIOLockedValueBox([TopicPartition: [Int64]]())
            let producer = try KafkaProducer(bootstrap: try bootstrap(c), config: cfg) { r in
                if r.error != nil { failures.withLockedValue { $0 += r.recordCount } }
                offsets.withLockedValue { $0[TopicPartition(r.topic, r.partition), default: []].append(r.baseOffset) }
            }
            XCTAssertGreaterThanOrEqual(producer.currentProducerId, 0, "acks=all producers are idempotent by default")
            for i in 0..<1000 {
                try producer.send(topic: topic, key: ByteBuffer(string: "key-\(i % 50)"), value: ByteBuffer(string: "value-\(i)"),
                                  headers: [RecordHeader(key: "i", value: "\(i)")], timestamp: 1_700_000_000_000 + Int64(i))
            }
            try producer.flush()
            producer.close()
            XCTAssertEqual(failures.withLockedValue { $0 }, 0)

            // Our consumer: every record, in order per partition, keys on their murmur2 partition.
            let consumer = KafkaConsumer(bootstrap: try bootstrap(c))
            defer { consumer.close() }
            var assignment: [TopicPartition: StartOffset] = [:]
            for p in try consumer.partitions(of: topic) { assignment[TopicPartition(topic, p)] = .earliest }
            consumer.assign(assignment)
            var got: [ConsumerRecord] = []
            let deadline = Date().addingTimeInterval(30)
            while got.count < 1000 && Date() < deadline { got += try consumer.poll(timeoutMs: 500) }
            XCTAssertEqual(got.count, 1000, "codec \(codec)")
            for r in got {
                let key = String(buffer: r.key!)
                XCTAssertEqual(r.partition, Murmur2.partition(forKey: r.key!, partitions: 3), key)
                let i = Int(String(buffer: r.value!).dropFirst("value-".count))!
                XCTAssertEqual(key, "key-\(i % 50)")
                XCTAssertEqual(r.timestamp, 1_700_000_000_000 + Int64(i))
                XCTAssertEqual(r.headers.first.map { String(buffer: $0.value!) }, "\(i)")
            }
            for p in Int32(0)..<3 {
                let offs = got.filter { $0.partition == p }.map(\.offset)
                XCTAssertEqual(offs, Array(0..<Int64(offs.count)), "partition \(p) offsets are dense and ordered")
            }
        }
        // confluent-kafka reads what we wrote (partition by key as librdkafka's murmur2 partitioner
        // would) and writes zstd that we read.
        let script = #"""
            import sys
            from confluent_kafka import Consumer, Producer, TopicPartition
            bs = sys.argv[1]
            c = Consumer({"bootstrap.servers": bs, "group.id": "x", "enable.auto.commit": False})
            c.assign([TopicPartition("codec-zstd", p, 0) for p in range(3)])
            n = 0
            while n < 1000:
                m = c.poll(10)
                assert m is not None, n
                assert m.error() is None, m.error()
                i = int(m.value().decode()[len("value-"):])
                assert m.key().decode() == "key-%d" % (i % 50)
                assert dict(m.headers())["i"] == str(i).encode()
                n += 1
            c.close()
            p = Producer({"bootstrap.servers": bs, "compression.type": "zstd", "partitioner": "murmur2_random"})
            for i in range(500):
                p.produce("from-confluent", key=("k%d" % i).encode(), value=("v%d" % i).encode())
            assert p.flush(30) == 0
            print("ok")
            """#
        _ = try admin.createTopic(NewTopic(name: "from-confluent", partitions: 2, replicationFactor: 1)).wait()
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 90), as: UTF8.self)
        XCTAssertTrue(out.contains("ok"), out)
        let consumer = KafkaConsumer(bootstrap: try bootstrap(c))
        defer { consumer.close() }
        consumer.assign([TopicPartition("from-confluent", 0): .earliest, TopicPartition("from-confluent", 1): .earliest])
        var got: [ConsumerRecord] = []
        let deadline = Date().addingTimeInterval(30)
        while got.count < 500 && Date() < deadline { got += try consumer.poll(timeoutMs: 500) }
        XCTAssertEqual(got.count, 500)
        for r in got {
            // librdkafka's murmur2 partitioner agrees with ours.
            XCTAssertEqual(r.partition, Murmur2.partition(forKey: r.key!, partitions: 2))
        }
        let ends = try consumer.listOffsets([TopicPartition("from-confluent", 0), TopicPartition("from-confluent", 1)], at: .latest)
        XCTAssertEqual(ends.values.reduce(0, +), 500)
    }

    func testIdempotentProducerThroughLeaderKill() throws {
        let c = try LocalCluster(count: 3)
        defer { c.stopAll() }
        try c.startAll()
        let client = KafkaClient(config: ClientConfig(bootstrap: try bootstrap(c)))
        defer { client.close() }
        _ = try client.awaitMetadata(topics: [], timeoutMs: 30_000) { $0.brokers.count == 3 }.wait()
        _ = try KafkaAdmin(client: client).createTopic(NewTopic(name: "t", partitions: 3, replicationFactor: 3)).wait()
        let md = try client.awaitMetadata(topics: ["t"], timeoutMs: 15_000) { md in
            md.topics["t"]?.partitions.count == 3 && md.topics["t"]!.partitions.allSatisfy { $0.leader >= 0 }
        }.wait()
        let victim = md.leader(of: TopicPartition("t", 0))!
        var cfg = ProducerConfig()
        cfg.acks = -1
        cfg.lingerMs = 1
        cfg.retryBackoffMs = 50
        let failures = NIOLockedValueBox(0)
        let bootstrapOthers = c.nodes.filter { $0 != victim }.map { BootstrapAddress(host: "127.0.0.1", port: c.brokerPorts[$0]!) }
        let producer = try KafkaProducer(bootstrap: bootstrapOthers, config: cfg) { r in
            if r.error != nil { failures.withLockedValue { $0 += r.recordCount } }
        }
        let n = 20_000
        for i in 0..<n {
            if i == n / 2 { c.kill9(victim) }
            try producer.send(topic: "t", partition: Int32(i % 3), key: nil, value: ByteBuffer(string: "\(i)"))
            if i % 1000 == 0 { usleep(20_000) }
        }
        try producer.flush(timeoutMs: 60_000)
        producer.close()
        XCTAssertEqual(failures.withLockedValue { $0 }, 0)
        let consumer = KafkaConsumer(bootstrap: bootstrapOthers)
        defer { consumer.close() }
        consumer.assign([TopicPartition("t", 0): .earliest, TopicPartition("t", 1): .earliest, TopicPartition("t", 2): .earliest])
        var seen = [Int](repeating: 0, count: n)
        var count = 0
        let deadline = Date().addingTimeInterval(60)
        while count < n && Date() < deadline {
            for r in try consumer.poll(timeoutMs: 500) {
                seen[Int(String(buffer: r.value!))!] += 1
                count += 1
            }
        }
        usleep(500_000)
        count += try consumer.poll(timeoutMs: 200).count
        XCTAssertEqual(count, n, "no record lost or duplicated")
        XCTAssertTrue(seen.allSatisfy { $0 == 1 }, "missing: \(seen.indices.filter { seen[$0] == 0 }.prefix(10)), duplicated: \(seen.indices.filter { seen[$0] > 1 }.prefix(10))")
    }
}
