import FjordMetadata
import FjordProtocol
import FjordWire
import XCTest

final class MetadataImageReplayTests: XCTestCase {
    let tid = KafkaUUID(high: 0x1111_2222_3333_4444, low: 0x8555_6666_7777_8888)

    func register(_ id: Int32, epoch: Int64, fenced: Bool = true) -> MetadataRecord {
        var r = RegisterBrokerRecord()
        r.brokerId = id
        r.brokerEpoch = epoch
        r.incarnationId = KafkaUUID(high: 0, low: UInt64(100 + id))
        r.fenced = fenced
        return .registerBroker(r)
    }

    func change(_ id: Int32, epoch: Int64, fenced: Int8 = 0, shutdown: Int8 = 0) -> MetadataRecord {
        var r = BrokerRegistrationChangeRecord()
        r.brokerId = id
        r.brokerEpoch = epoch
        r.fenced = fenced
        r.inControlledShutdown = shutdown
        return .brokerRegistrationChange(r)
    }

    func topic(_ name: String, _ id: KafkaUUID) -> MetadataRecord {
        var t = TopicRecord()
        t.name = name
        t.topicId = id
        return .topic(t)
    }

    func partition(_ id: KafkaUUID, _ p: Int32, replicas: [Int32], isr: [Int32], leader: Int32) -> MetadataRecord {
        var r = PartitionRecord()
        r.topicId = id
        r.partitionId = p
        r.replicas = replicas
        r.isr = isr
        r.leader = leader
        r.leaderEpoch = 0
        r.partitionEpoch = 0
        return .partition(r)
    }

    func config(_ type: ConfigResourceType, _ resource: String, _ name: String, _ value: String?) -> MetadataRecord {
        var c = ConfigRecord()
        c.resourceType = type.rawValue
        c.resourceName = resource
        c.name = name
        c.value = value
        return .config(c)
    }

    func testBrokerRegistrationFencingAndShutdownWithEpochChecks() {
        var image = MetadataImage()
        image.replay(register(1, epoch: 10), offset: 10)
        XCTAssertEqual(image.brokers[1]?.fenced, true)
        XCTAssertFalse(image.isActive(broker: 1))
        image.replay(change(1, epoch: 9, fenced: -1), offset: 11)
        XCTAssertEqual(image.brokers[1]?.fenced, true, "a change for another epoch is ignored")
        image.replay(change(1, epoch: 10, fenced: -1), offset: 12)
        XCTAssertEqual(image.brokers[1]?.fenced, false)
        XCTAssertTrue(image.isActive(broker: 1))
        image.replay(change(1, epoch: 10, shutdown: 1), offset: 13)
        XCTAssertEqual(image.brokers[1]?.inControlledShutdown, true)
        XCTAssertEqual(image.brokers[1]?.fenced, false, "0 means no change")
        XCTAssertFalse(image.isActive(broker: 1))
        var fence = FenceBrokerRecord()
        fence.id = 1
        fence.epoch = 10
        image.replay(.fenceBroker(fence), offset: 14)
        XCTAssertEqual(image.brokers[1]?.fenced, true)
        var unfence = UnfenceBrokerRecord()
        unfence.id = 1
        unfence.epoch = 10
        image.replay(.unfenceBroker(unfence), offset: 15)
        XCTAssertEqual(image.brokers[1]?.fenced, false)
        var unreg = UnregisterBrokerRecord()
        unreg.brokerId = 1
        unreg.brokerEpoch = 3
        image.replay(.unregisterBroker(unreg), offset: 16)
        XCTAssertNotNil(image.brokers[1], "unregistering another epoch is ignored")
        unreg.brokerEpoch = 10
        image.replay(.unregisterBroker(unreg), offset: 17)
        XCTAssertNil(image.brokers[1])
        XCTAssertEqual(image.offset, 17)
    }

    func testPartitionChangeSemantics() throws {
        var image = MetadataImage()
        image.replay([topic("t", tid), partition(tid, 0, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1)], firstOffset: 0)
        var c = PartitionChangeRecord()
        c.topicId = tid
        c.partitionId = 0
        c.isr = [1, 2]
        image.replay(.partitionChange(c), offset: 2)
        var p = try XCTUnwrap(image.topics["t"]?.partitions[0])
        XCTAssertEqual(p.isr, [1, 2])
        XCTAssertEqual(p.leader, 1, "-2 leaves the leader")
        XCTAssertEqual(p.leaderEpoch, 0)
        XCTAssertEqual(p.partitionEpoch, 1)

        c = PartitionChangeRecord()
        c.topicId = tid
        c.partitionId = 0
        c.leader = 2
        image.replay(.partitionChange(c), offset: 3)
        p = try XCTUnwrap(image.partition(topicId: tid, partition: 0))
        XCTAssertEqual(p.leader, 2)
        XCTAssertEqual(p.isr, [1, 2], "a null ISR is unchanged")
        XCTAssertEqual(p.leaderEpoch, 1)
        XCTAssertEqual(p.partitionEpoch, 2)

        c.leader = 2
        image.replay(.partitionChange(c), offset: 4)
        p = try XCTUnwrap(image.partition(topicId: tid, partition: 0))
        XCTAssertEqual(p.leaderEpoch, 2, "naming the same leader bumps the leader epoch")

        c = PartitionChangeRecord()
        c.topicId = tid
        c.partitionId = 0
        c.leader = -1
        c.leaderRecoveryState = 1
        image.replay(.partitionChange(c), offset: 5)
        p = try XCTUnwrap(image.partition(topicId: tid, partition: 0))
        XCTAssertEqual(p.leader, -1)
        XCTAssertFalse(p.hasLeader)
        XCTAssertEqual(p.leaderRecoveryState, 1)
        XCTAssertEqual(p.leaderEpoch, 3)
        XCTAssertEqual(p.partitionEpoch, 4)

        // A change for an unknown partition is ignored.
        c.partitionId = 9
        let before = image
        image.replay(.partitionChange(c), offset: 6)
        XCTAssertEqual(image.topics, before.topics)
    }

    func testRemoveTopicTakesPartitionsAndConfigs() {
        var image = MetadataImage()
        image.replay([topic("t", tid), partition(tid, 0, replicas: [1], isr: [1], leader: 1),
                      config(.topic, "t", "retention.ms", "1000"), config(.broker, "", "log.retention.ms", "5")], firstOffset: 0)
        XCTAssertEqual(image.topicConfigs["t"], ["retention.ms": "1000"])
        var remove = RemoveTopicRecord()
        remove.topicId = tid
        image.replay(.removeTopic(remove), offset: 4)
        XCTAssertNil(image.topics["t"])
        XCTAssertNil(image.topicNamesById[tid])
        XCTAssertNil(image.topicConfigs["t"])
        XCTAssertEqual(image.brokerConfigs[""], ["log.retention.ms": "5"], "other configs stay")
    }

    func testConfigNullDeletes() {
        var image = MetadataImage()
        image.replay([config(.broker, "1", "a", "x"), config(.broker, "1", "b", "y"), config(.broker, "1", "a", nil)], firstOffset: 0)
        XCTAssertEqual(image.brokerConfigs["1"], ["b": "y"])
        image.replay(config(.broker, "1", "b", nil), offset: 3)
        XCTAssertNil(image.brokerConfigs["1"], "an emptied resource disappears")
    }

    func testFeaturesProducerIdsAndControllers() {
        var image = MetadataImage()
        var f = FeatureLevelRecord()
        f.name = "metadata.version"
        f.featureLevel = 21
        image.replay(.featureLevel(f), offset: 0)
        XCTAssertEqual(image.metadataVersion, 21)
        f.name = "group.version"
        f.featureLevel = 1
        image.replay(.featureLevel(f), offset: 1)
        f.featureLevel = 0
        image.replay(.featureLevel(f), offset: 2)
        XCTAssertEqual(image.features, ["metadata.version": 21], "level 0 removes a feature")
        var p = ProducerIdsRecord()
        p.nextProducerId = 1000
        image.replay(.producerIds(p), offset: 3)
        XCTAssertEqual(image.nextProducerId, 1000)
        var c = RegisterControllerRecord()
        c.controllerId = 3000
        image.replay(.registerController(c), offset: 4)
        XCTAssertEqual(image.controllers[3000]?.id, 3000)
    }

    func testQueriesAndPartitionChanges() {
        var image = MetadataImage()
        let t2 = KafkaUUID(high: 9, low: 9)
        image.replay([register(1, epoch: 0, fenced: false), register(2, epoch: 1, fenced: false),
                      topic("b", tid), partition(tid, 0, replicas: [1, 2], isr: [1, 2], leader: 1),
                      partition(tid, 1, replicas: [2, 1], isr: [2], leader: 2),
                      topic("a", t2), partition(t2, 0, replicas: [1], isr: [1], leader: -1)], firstOffset: 0)
        XCTAssertEqual(image.partitionsLed(by: 1), [TopicIdPartition(topicId: tid, partition: 0)])
        XCTAssertEqual(image.partitions(inIsrOf: 1),
                       [TopicIdPartition(topicId: t2, partition: 0), TopicIdPartition(topicId: tid, partition: 0)])
        XCTAssertEqual(image.partitions(replicatedBy: 2).count, 2)
        XCTAssertEqual(image.leaderlessPartitions(), [TopicIdPartition(topicId: t2, partition: 0)])
        XCTAssertEqual(image.activeBrokerIds, [1, 2])

        let old = image
        var c = PartitionChangeRecord()
        c.topicId = tid
        c.partitionId = 1
        c.isr = [2, 1]
        image.replay(.partitionChange(c), offset: 7)
        var remove = RemoveTopicRecord()
        remove.topicId = t2
        image.replay(.removeTopic(remove), offset: 8)
        let changes = image.partitionChanges(since: old)
        XCTAssertEqual(changes.map { "\($0.topicName)-\($0.partition) \($0.old != nil) \($0.new != nil)" },
                       ["b-1 true true", "a-0 true false"])
        XCTAssertTrue(MetadataImage().partitionChanges(since: MetadataImage()).isEmpty)
    }

    func testEffectiveTopicConfigs() throws {
        var image = MetadataImage()
        image.replay([topic("t", tid), config(.topic, "t", "retention.ms", "1000"),
                      config(.broker, "", "log.cleanup.policy", "compact")], firstOffset: 0)
        let entries = try XCTUnwrap(image.effectiveTopicConfigs(topic: "t", staticBrokerConfigs: ["segment.bytes": "1024"]))
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        XCTAssertEqual(byName["retention.ms"]?.value, "1000")
        XCTAssertEqual(byName["retention.ms"]?.source, .dynamicTopicConfig)
        XCTAssertEqual(byName["cleanup.policy"]?.value, "compact")
        XCTAssertEqual(byName["cleanup.policy"]?.source, .dynamicDefaultBrokerConfig)
        XCTAssertEqual(byName["segment.bytes"]?.source, .staticBrokerConfig)
        XCTAssertEqual(byName["max.message.bytes"]?.value, "1048588")
        XCTAssertEqual(byName["max.message.bytes"]?.source, .defaultConfig)
        XCTAssertEqual(entries.map(\.name), entries.map(\.name).sorted())
        XCTAssertNil(image.effectiveTopicConfigs(topic: "nope"))
        XCTAssertThrowsError(try image.configEntries(resourceType: 2, resourceName: "nope")) {
            XCTAssertEqual(($0 as? ConfigLookupError)?.code, .unknownTopicOrPartition)
        }
        XCTAssertEqual(try image.configEntries(resourceType: 4, resourceName: "").map(\.name), ["log.cleanup.policy"])
    }

    func testTopicConfigValidation() {
        XCTAssertNil(TopicConfigs.validationError(name: "retention.ms", value: "-1"))
        XCTAssertEqual(TopicConfigs.validationError(name: "retention.ms", value: "abc"),
                       "Invalid value abc for configuration retention.ms: Not a number of type LONG")
        XCTAssertEqual(TopicConfigs.validationError(name: "nope", value: "1"), "Unknown topic config name: nope")
        XCTAssertNotNil(TopicConfigs.validationError(name: "cleanup.policy", value: "compact,bogus"))
        XCTAssertNil(TopicConfigs.validationError(name: "cleanup.policy", value: "compact,delete"))
        XCTAssertNotNil(TopicConfigs.validationError(name: "min.cleanable.dirty.ratio", value: "1.5"))
        XCTAssertNotNil(TopicConfigs.validationError(name: "unclean.leader.election.enable", value: "yes"))
        XCTAssertNotNil(TopicConfigs.validationError(name: "segment.bytes", value: "10"))
        XCTAssertNotNil(TopicConfigs.validationError(name: "compression.gzip.level", value: "0"))
    }

    func testTopicNames() {
        XCTAssertNil(TopicName.validationError("orders.v1_x-y"))
        XCTAssertEqual(TopicName.validationError(""), "Topic name is illegal, it can't be empty")
        XCTAssertEqual(TopicName.validationError(".."), "Topic name cannot be \".\" or \"..\"")
        XCTAssertNotNil(TopicName.validationError(String(repeating: "a", count: 250)))
        XCTAssertNil(TopicName.validationError(String(repeating: "a", count: 249)))
        XCTAssertNotNil(TopicName.validationError("a b"))
        XCTAssertNotNil(TopicName.validationError("é"))
        XCTAssertEqual(TopicName.collisionKey("a.b_c"), "a_b_c")
    }

    /// A snapshot's records rebuild an equal image (KIP-630): every kind of state survives.
    func testSnapshotRecordsRebuildTheImage() throws {
        var image = MetadataImage()
        var records: [MetadataRecord] = []
        var f = FeatureLevelRecord()
        f.name = "metadata.version"
        f.featureLevel = 21
        records.append(.featureLevel(f))
        f.name = "group.version"
        f.featureLevel = 1
        records.append(.featureLevel(f))
        var c = RegisterControllerRecord()
        c.controllerId = 3000
        c.incarnationId = KafkaUUID(high: 9, low: 9)
        var ce = RegisterControllerRecord.ControllerEndpoint()
        ce.name = "CONTROLLER"
        ce.host = "h"
        ce.port = 9093
        c.endPoints = [ce]
        records.append(.registerController(c))
        for b in Int32(1)...3 {
            guard case var .registerBroker(r) = register(b, epoch: Int64(b * 10)) else { return XCTFail() }
            var e = RegisterBrokerRecord.BrokerEndpoint()
            e.name = "PLAINTEXT"
            e.host = "127.0.0.1"
            e.port = UInt16(9000 + b)
            r.endPoints = [e]
            r.rack = b == 2 ? "r2" : nil
            var feat = RegisterBrokerRecord.BrokerFeature()
            feat.name = "metadata.version"
            feat.minSupportedVersion = 7
            feat.maxSupportedVersion = 21
            r.features = [feat]
            records.append(.registerBroker(r))
        }
        records.append(change(1, epoch: 10, fenced: -1))
        records.append(change(2, epoch: 20, fenced: -1, shutdown: 1))
        let t2 = KafkaUUID(high: 7, low: 7)
        records.append(topic("a", tid))
        records.append(partition(tid, 0, replicas: [1, 2, 3], isr: [1, 2], leader: 1))
        records.append(partition(tid, 1, replicas: [2, 3, 1], isr: [2, 3, 1], leader: 2))
        var pc = PartitionChangeRecord()
        pc.topicId = tid
        pc.partitionId = 1
        pc.leader = 3
        pc.isr = [3, 1]
        records.append(.partitionChange(pc))
        records.append(topic("b", t2))
        records.append(partition(t2, 0, replicas: [3], isr: [3], leader: 3))
        records.append(config(.topic, "a", "retention.ms", "1000"))
        records.append(config(.topic, "b", "cleanup.policy", "compact"))
        records.append(config(.broker, "", "log.retention.ms", "5"))
        records.append(config(.broker, "2", "log.segment.bytes", "1048576"))
        var rt = RemoveTopicRecord()
        rt.topicId = t2
        records.append(.removeTopic(rt))
        var p = ProducerIdsRecord()
        p.brokerId = 1
        p.brokerEpoch = 10
        p.nextProducerId = 5000
        records.append(.producerIds(p))
        image.replay(records, firstOffset: 0)

        let snapshot = image.snapshotRecords()
        // Through the wire encoding, as a snapshot file holds them.
        let decoded = try snapshot.map { try MetadataRecord.decode(try $0.encode()) }
        let rebuilt = MetadataImage(snapshotRecords: decoded, endOffset: Int64(records.count))
        XCTAssertEqual(rebuilt, image)
        XCTAssertEqual(rebuilt.offset, Int64(records.count - 1))
        XCTAssertLessThan(snapshot.count, records.count, "removed state is not carried")
        // Deterministic: equal images write equal snapshots.
        XCTAssertEqual(try rebuilt.snapshotRecords().map { try $0.encode() }, try snapshot.map { try $0.encode() })
    }
}
