import FjordMetadata
import FjordProtocol
import FjordWire
import NIOCore
import XCTest

final class MetadataRecordTests: XCTestCase {
    let topicId = KafkaUUID(high: 0x1234_5678_9ABC_4DEF, low: 0x8123_4567_89AB_CDEF)

    /// One record of every modelled type with non-default fields.
    func samples() -> [MetadataRecord] {
        var reg = RegisterBrokerRecord()
        reg.brokerId = 3
        reg.incarnationId = KafkaUUID(high: 1, low: 2)
        reg.brokerEpoch = 42
        var ep = RegisterBrokerRecord.BrokerEndpoint()
        ep.name = "PLAINTEXT"
        ep.host = "localhost"
        ep.port = 9092
        ep.securityProtocol = 0
        reg.endPoints = [ep]
        var feat = RegisterBrokerRecord.BrokerFeature()
        feat.name = "metadata.version"
        feat.minSupportedVersion = 1
        feat.maxSupportedVersion = 21
        reg.features = [feat]
        reg.rack = "rack-a"
        reg.fenced = true
        reg.inControlledShutdown = false
        reg.logDirs = [KafkaUUID(high: 7, low: 8)]

        var unreg = UnregisterBrokerRecord()
        unreg.brokerId = 3
        unreg.brokerEpoch = 42
        var topic = TopicRecord()
        topic.name = "orders"
        topic.topicId = topicId
        var part = PartitionRecord()
        part.topicId = topicId
        part.partitionId = 2
        part.replicas = [1, 2, 3]
        part.isr = [1, 2]
        part.leader = 1
        part.leaderEpoch = 4
        part.partitionEpoch = 9
        part.directories = [.zero, .zero, .zero]
        var elrPart = part
        elrPart.eligibleLeaderReplicas = [3]
        elrPart.lastKnownElr = []
        var config = ConfigRecord()
        config.resourceType = 2
        config.resourceName = "orders"
        config.name = "retention.ms"
        config.value = "1000"
        var deleteConfig = config
        deleteConfig.value = nil
        var change = PartitionChangeRecord()
        change.topicId = topicId
        change.partitionId = 2
        change.leader = 2
        change.isr = [2, 3]
        change.leaderRecoveryState = 0
        var fence = FenceBrokerRecord()
        fence.id = 3
        fence.epoch = 42
        var unfence = UnfenceBrokerRecord()
        unfence.id = 3
        unfence.epoch = 42
        var remove = RemoveTopicRecord()
        remove.topicId = topicId
        var feature = FeatureLevelRecord()
        feature.name = "metadata.version"
        feature.featureLevel = 21
        var pids = ProducerIdsRecord()
        pids.brokerId = 3
        pids.brokerEpoch = 42
        pids.nextProducerId = 1000
        var brc = BrokerRegistrationChangeRecord()
        brc.brokerId = 3
        brc.brokerEpoch = 42
        brc.fenced = -1
        brc.inControlledShutdown = 1
        var ctrl = RegisterControllerRecord()
        ctrl.controllerId = 1
        ctrl.incarnationId = KafkaUUID(high: 5, low: 6)
        var cep = RegisterControllerRecord.ControllerEndpoint()
        cep.name = "CONTROLLER"
        cep.host = "c1"
        cep.port = 9093
        ctrl.endPoints = [cep]
        return [.registerBroker(reg), .unregisterBroker(unreg), .topic(topic), .partition(part), .partition(elrPart),
                .config(config), .config(deleteConfig), .partitionChange(change), .fenceBroker(fence),
                .unfenceBroker(unfence), .removeTopic(remove), .featureLevel(feature), .producerIds(pids),
                .brokerRegistrationChange(brc), .registerController(ctrl), .noOp(NoOpRecord())]
    }

    func testEveryRecordRoundTrips() throws {
        for record in samples() {
            let bytes = try record.encode()
            XCTAssertEqual(bytes.getInteger(at: bytes.readerIndex, as: UInt8.self), 1, "frame version 1: \(record)")
            XCTAssertEqual(bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self).map(Int16.init), record.type.rawValue)
            XCTAssertEqual(bytes.getInteger(at: bytes.readerIndex + 2, as: UInt8.self).map(Int16.init), record.version)
            let decoded = try MetadataRecord.decode(bytes)
            XCTAssertEqual(decoded, record, "\(record)")
        }
    }

    func testVersionsAreThoseOfMetadataVersion21() {
        let byType = Dictionary(samples().map { ($0.type, $0.version) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byType[.registerBroker], 3)
        XCTAssertEqual(byType[.partition], 1)
        XCTAssertEqual(byType[.partitionChange], 1)
        XCTAssertEqual(byType[.brokerRegistrationChange], 2)
        XCTAssertEqual(byType[.topic], 0)
    }

    func testFeatureLevelRecordBytes() throws {
        var r = FeatureLevelRecord()
        r.name = "metadata.version"
        r.featureLevel = 21
        let bytes = try MetadataRecord.featureLevel(r).encode()
        var expected: [UInt8] = [0x01, 0x0C, 0x00, 0x11]
        expected += Array("metadata.version".utf8)
        expected += [0x00, 0x15, 0x00]
        XCTAssertEqual(bytes.getBytes(at: bytes.readerIndex, length: bytes.readableBytes), expected)
    }

    func testOtherRecordTypesAreKeptAsBytes() throws {
        var quota = ClientQuotaRecord()
        var entity = ClientQuotaRecord.EntityData()
        entity.entityType = "user"
        entity.entityName = "alice"
        quota.entity = [entity]
        quota.key = "producer_byte_rate"
        quota.value = 1024
        var buf = ByteBuffer()
        buf.writeUnsignedVarint(1)
        buf.writeUnsignedVarint(UInt32(MetadataRecordType.clientQuota.rawValue))
        buf.writeUnsignedVarint(0)
        try quota.encode(to: &buf, version: 0)
        let decoded = try MetadataRecord.decode(buf)
        guard case let .other(type, version, body) = decoded else { return XCTFail("expected .other, got \(decoded)") }
        XCTAssertEqual(type, .clientQuota)
        XCTAssertEqual(version, 0)
        var b = body
        XCTAssertEqual(try ClientQuotaRecord(from: &b, version: 0), quota)
        XCTAssertEqual(try decoded.encode(), buf, "written back unchanged")
        var image = MetadataImage()
        image.replay(decoded, offset: 5)
        XCTAssertEqual(image.offset, 5, "replays as a no-op")
    }

    func testRejectsBadFraming() throws {
        let good = try MetadataRecord.noOp(NoOpRecord()).encode()
        var frame0 = good
        frame0.setInteger(UInt8(0), at: frame0.readerIndex)
        XCTAssertThrowsError(try MetadataRecord.decode(frame0)) {
            XCTAssertEqual($0 as? MetadataRecordError, .unknownFrameVersion(0))
        }
        var badType = good
        badType.setInteger(UInt8(6), at: badType.readerIndex + 1)  // no record type 6
        XCTAssertThrowsError(try MetadataRecord.decode(badType)) {
            XCTAssertEqual($0 as? MetadataRecordError, .unknownRecordType(6))
        }
        var badVersion = good
        badVersion.setInteger(UInt8(9), at: badVersion.readerIndex + 2)
        XCTAssertThrowsError(try MetadataRecord.decode(badVersion)) {
            XCTAssertEqual($0 as? MetadataRecordError, .unsupportedVersion(type: .noOp, version: 9))
        }
        var trailing = good
        trailing.writeInteger(UInt8(0))
        XCTAssertThrowsError(try MetadataRecord.decode(trailing)) {
            XCTAssertEqual($0 as? MetadataRecordError, .trailingBytes(type: .noOp, count: 1))
        }
        XCTAssertThrowsError(try MetadataRecord.decode(ByteBuffer()))
        // Every truncation of every sample fails cleanly.
        for record in samples() {
            let bytes = try record.encode()
            for n in 0..<bytes.readableBytes {
                XCTAssertThrowsError(try MetadataRecord.decode(bytes.getSlice(at: bytes.readerIndex, length: n) ?? ByteBuffer()),
                                     "\(record) cut at \(n)")
            }
        }
    }

    func testDescriptionNamesFields() {
        var change = PartitionChangeRecord()
        change.topicId = topicId
        change.partitionId = 0
        change.leader = 2
        XCTAssertEqual(MetadataRecord.partitionChange(change).description,
                       "PartitionChangeRecord(topicId=\(topicId), partitionId=0, leader=2)")
    }
}
