import FjordController
import FjordMetadata
import FjordProtocol
import FjordWire
import XCTest

final class TopicTests: XCTestCase {
    func testCreateTopicPlacesLeadersEvenly() throws {
        for seed: UInt64 in 1...20 {
            let h = ControllerHarness(seed: seed)
            h.startBrokers([1, 2, 3])
            let r = h.createTopic("t", partitions: 6, rf: 3)
            XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
            XCTAssertNil(r.errorMessage)
            var leaders: [Int32: Int] = [:]
            var firstFollowers: [Int32: Int] = [:]
            for pid in 0..<Int32(6) {
                let p = try XCTUnwrap(h.partition("t", pid))
                XCTAssertEqual(Set(p.replicas).count, 3)
                XCTAssertEqual(p.isr, p.replicas)
                XCTAssertEqual(p.leader, p.replicas[0])
                XCTAssertEqual(p.leaderEpoch, 0)
                XCTAssertEqual(p.partitionEpoch, 0)
                XCTAssertEqual(p.directories.count, 3)
                leaders[p.leader, default: 0] += 1
                firstFollowers[p.replicas[1], default: 0] += 1
            }
            XCTAssertEqual(leaders, [1: 2, 2: 2, 3: 2], "seed \(seed)")
            XCTAssertEqual(firstFollowers.values.sorted(), [2, 2, 2], "seed \(seed)")
        }
    }

    func testCreateTopicDefaultsAndResponseFields() throws {
        let h = ControllerHarness { $0.defaultNumPartitions = 3 }
        h.startBrokers([1, 2])
        let r = h.createTopic("t", configs: ["retention.ms": "1000"])
        XCTAssertEqual(r.numPartitions, 3)
        XCTAssertEqual(r.replicationFactor, 1)
        XCTAssertEqual(r.topicId, h.image.topics["t"]?.id)
        XCTAssertNotEqual(r.topicId, .zero)
        let configs = try XCTUnwrap(r.configs)
        XCTAssertEqual(configs.first { $0.name == "retention.ms" }?.value, "1000")
        XCTAssertEqual(configs.first { $0.name == "retention.ms" }?.configSource, ConfigSource.dynamicTopicConfig.rawValue)
        XCTAssertEqual(configs.first { $0.name == "segment.bytes" }?.configSource, ConfigSource.defaultConfig.rawValue)
        XCTAssertEqual(h.image.topicConfigs["t"], ["retention.ms": "1000"])
        // Version 4 has none of these fields.
        let old = h.createTopic("u", version: 4)
        XCTAssertEqual(old.numPartitions, -1)
        XCTAssertEqual(old.topicId, .zero)
        XCTAssertEqual(old.configs, [])
        // Records: topic, configs, partitions.
        let types = h.log.suffix(5 + 4).map(\.type)
        XCTAssertEqual(Array(types.prefix(5)), [.topic, .config, .partition, .partition, .partition])
    }

    func testCreateTopicErrors() {
        let h = ControllerHarness()
        h.startBrokers([1, 2])
        func check(_ r: CreateTopicsResponse.CreatableTopicResult, _ code: ErrorCode, _ message: String,
                   file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(ErrorCode(code: r.errorCode), code, file: file, line: line)
            XCTAssertEqual(r.errorMessage, message, file: file, line: line)
        }
        check(h.createTopic("t", partitions: 1, rf: 3), .invalidReplicationFactor,
              "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached "
                  + "because only 2 broker(s) are registered and unfenced.")
        check(h.createTopic("t", partitions: 0, rf: 1), .invalidPartitions,
              "Number of partitions was set to an invalid non-positive value.")
        check(h.createTopic("t", partitions: 1, rf: 0), .invalidReplicationFactor,
              "Replication factor must be larger than 0, or -1 to use the default value.")
        check(h.createTopic("t", partitions: 20_000, rf: 1), .invalidPartitions, "Excessively large number of partitions per request.")
        check(h.createTopic("a b"), .invalidTopicException,
              "Topic name \"a b\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'")
        check(h.createTopic(".."), .invalidTopicException, "Topic name cannot be \".\" or \"..\"")
        check(h.createTopic("t", configs: ["nope": "1"]), .invalidConfig, "Unknown topic config name: nope")
        check(h.createTopic("t", configs: ["retention.ms": "x"]), .invalidConfig,
              "Invalid value x for configuration retention.ms: Not a number of type LONG")
        check(h.createTopic("t", configs: ["retention.ms": nil]), .invalidConfig,
              "Null value not supported for topic configs: retention.ms")
        XCTAssertNil(h.image.topics["t"], "nothing was created")
        XCTAssertEqual(ErrorCode(code: h.createTopic("a.b").errorCode), .noError)
        check(h.createTopic("a.b"), .topicAlreadyExists, "Topic 'a.b' already exists.")
        check(h.createTopic("a_b"), .invalidTopicException, "Topic 'a_b' collides with existing topic: a.b")

        var req = CreateTopicsRequest()
        var t = CreateTopicsRequest.CreatableTopic()
        t.name = "dup"
        t.numPartitions = 1
        t.replicationFactor = 1
        req.topics = [t, t]
        let resp = h.run { $0.createTopics(req, version: 7) }.response
        XCTAssertEqual(resp.topics.count, 1)
        XCTAssertEqual(ErrorCode(code: resp.topics[0].errorCode), .invalidRequest)
        XCTAssertEqual(resp.topics[0].errorMessage, "Duplicate topic name.")

        let none = ControllerHarness()
        check(none.createTopic("t"), .invalidReplicationFactor,
              "Unable to replicate the partition 1 time(s): All brokers are currently fenced.")
    }

    func testManualAssignments() throws {
        let h = ControllerHarness()
        h.startBrokers([1, 2, 3])
        h.register(4)  // registered, still fenced
        var r = h.createTopic("m", assignments: [[3, 1], [4, 2]])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        XCTAssertEqual(h.partition("m", 0)?.leader, 3)
        let p1 = try XCTUnwrap(h.partition("m", 1))
        XCTAssertEqual(p1.replicas, [4, 2])
        XCTAssertEqual(p1.isr, [2], "fenced replicas start outside the ISR")
        XCTAssertEqual(p1.leader, 2)
        r = h.createTopic("x", partitions: 2, assignments: [[1]])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidRequest)
        r = h.createTopic("x", assignments: [[1, 1]])
        XCTAssertEqual(r.errorMessage, "The manual partition assignment includes the broker 1 more than once.")
        r = h.createTopic("x", assignments: [[9]])
        XCTAssertEqual(r.errorMessage, "The manual partition assignment includes broker 9, but no such broker is registered.")
        r = h.createTopic("x", assignments: [[1, 2], [3]])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidReplicaAssignment)
        r = h.createTopic("x", assignments: [[4]])
        XCTAssertEqual(r.errorMessage,
                       "All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown.")
        r = h.createTopic("x", assignments: [[]])
        XCTAssertEqual(r.errorMessage, "The manual partition assignment includes an empty replica list.")
    }

    func testValidateOnlyWritesNothing() {
        let h = ControllerHarness()
        h.startBrokers([1])
        let before = h.log.count
        let r = h.createTopic("t", partitions: 2, rf: 1, validateOnly: true)
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        XCTAssertEqual(r.numPartitions, 2)
        XCTAssertEqual(h.log.count, before)
        XCTAssertNil(h.image.topics["t"])
    }

    func createPartitions(_ h: ControllerHarness, _ name: String, count: Int32, assignments: [[Int32]]? = nil,
                          validateOnly: Bool = false) -> CreatePartitionsResponse.CreatePartitionsTopicResult {
        var req = CreatePartitionsRequest()
        var t = CreatePartitionsRequest.CreatePartitionsTopic()
        t.name = name
        t.count = count
        t.assignments = assignments?.map {
            var a = CreatePartitionsRequest.CreatePartitionsAssignment()
            a.brokerIds = $0
            return a
        }
        req.topics = [t]
        req.validateOnly = validateOnly
        return h.run { $0.createPartitions(req) }.response.results[0]
    }

    func testCreatePartitions() throws {
        let h = ControllerHarness()
        h.startBrokers([1, 2, 3])
        h.createTopic("t", partitions: 2, rf: 2)
        var r = createPartitions(h, "t", count: 5)
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        XCTAssertNil(r.errorMessage)
        XCTAssertEqual(h.image.topics["t"]?.partitions.count, 5)
        XCTAssertEqual(h.partition("t", 4)?.replicas.count, 2)
        r = createPartitions(h, "t", count: 3)
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidPartitions)
        XCTAssertEqual(r.errorMessage, "Topic currently has 5 partitions, which is higher than the requested 3.")
        r = createPartitions(h, "t", count: 5)
        XCTAssertEqual(r.errorMessage, "Topic already has 5 partitions.")
        r = createPartitions(h, "nope", count: 5)
        XCTAssertEqual(ErrorCode(code: r.errorCode), .unknownTopicOrPartition)
        r = createPartitions(h, "t", count: 7, assignments: [[3, 1]])
        XCTAssertEqual(r.errorMessage, "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.")
        r = createPartitions(h, "t", count: 6, assignments: [[3]])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidReplicaAssignment, "replication factor must match")
        r = createPartitions(h, "t", count: 6, assignments: [[3, 1]])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        XCTAssertEqual(h.partition("t", 5)?.replicas, [3, 1])
        r = createPartitions(h, "t", count: 8, validateOnly: true)
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        XCTAssertEqual(h.image.topics["t"]?.partitions.count, 6)
    }

    func testDeleteTopics() throws {
        let h = ControllerHarness()
        h.startBrokers([1])
        h.createTopic("a", partitions: 1, rf: 1, configs: ["retention.ms": "5"])
        h.createTopic("b", partitions: 1, rf: 1)
        let bId = try XCTUnwrap(h.image.topics["b"]?.id)
        var req = DeleteTopicsRequest()
        req.topicNames = ["a", "zzz"]
        var resp = h.run { $0.deleteTopics(req, version: 5) }.response
        XCTAssertEqual(resp.responses.map { ErrorCode(code: $0.errorCode) }, [.noError, .unknownTopicOrPartition])
        XCTAssertNil(h.image.topics["a"])
        XCTAssertNil(h.image.topicConfigs["a"])
        var byId = DeleteTopicsRequest.DeleteTopicState()
        byId.topicId = bId
        var unknownId = DeleteTopicsRequest.DeleteTopicState()
        unknownId.topicId = KafkaUUID(high: 5, low: 5)
        var both = DeleteTopicsRequest.DeleteTopicState()
        both.name = "b"
        both.topicId = bId
        req = DeleteTopicsRequest()
        req.topics = [both, byId, unknownId]
        resp = h.run { $0.deleteTopics(req, version: 6) }.response
        XCTAssertEqual(resp.responses.map { ErrorCode(code: $0.errorCode) }, [.invalidRequest, .noError, .unknownTopicId])
        XCTAssertEqual(resp.responses[1].name, "b", "the name of a topic deleted by id is reported")
        XCTAssertNil(h.image.topics["b"])
        // Recreating a deleted topic gives it a new id.
        h.createTopic("b", partitions: 1, rf: 1)
        XCTAssertNotEqual(h.image.topics["b"]?.id, bId)
    }

    func testDeleteDisabled() {
        let h = ControllerHarness { $0.deleteTopicEnable = false }
        h.startBrokers([1])
        h.createTopic("a", partitions: 1, rf: 1)
        var req = DeleteTopicsRequest()
        req.topicNames = ["a"]
        let resp = h.run { $0.deleteTopics(req, version: 5) }.response
        XCTAssertEqual(ErrorCode(code: resp.responses[0].errorCode), .topicDeletionDisabled)
        XCTAssertNotNil(h.image.topics["a"])
    }
}
