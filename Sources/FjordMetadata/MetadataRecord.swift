import FjordProtocol
import FjordWire
import NIOCore

/// One record of the `__cluster_metadata` log: the value of a record in a metadata batch.
///
/// Kafka frames a metadata record value as three unsigned varints — the frame version (1),
/// the record type (the schema's `apiKey`) and the record version — followed by the record
/// body in the flexible encoding. Record types the cluster acts on have a case of their own;
/// the rest (ACLs, quotas, SCRAM credentials, delegation tokens, ZK migration, metadata
/// transactions) travel as `.other` with their body kept as bytes, so they replay as no-ops
/// and are written back unchanged.
public enum MetadataRecord: Sendable, Equatable {
    case registerBroker(RegisterBrokerRecord)
    case unregisterBroker(UnregisterBrokerRecord)
    case topic(TopicRecord)
    case partition(PartitionRecord)
    case config(ConfigRecord)
    case partitionChange(PartitionChangeRecord)
    case fenceBroker(FenceBrokerRecord)
    case unfenceBroker(UnfenceBrokerRecord)
    case removeTopic(RemoveTopicRecord)
    case featureLevel(FeatureLevelRecord)
    case producerIds(ProducerIdsRecord)
    case brokerRegistrationChange(BrokerRegistrationChangeRecord)
    case registerController(RegisterControllerRecord)
    case noOp(NoOpRecord)
    /// A record type Fjord does not interpret: its type, version and body (without framing).
    case other(MetadataRecordType, version: Int16, ByteBuffer)

    /// The only frame version Kafka writes and accepts (`AbstractApiMessageSerde`).
    public static let frameVersion: UInt32 = 1

    /// The record type (`apiKey` of the schema).
    public var type: MetadataRecordType {
        switch self {
        case .registerBroker: return .registerBroker
        case .unregisterBroker: return .unregisterBroker
        case .topic: return .topic
        case .partition: return .partition
        case .config: return .config
        case .partitionChange: return .partitionChange
        case .fenceBroker: return .fenceBroker
        case .unfenceBroker: return .unfenceBroker
        case .removeTopic: return .removeTopic
        case .featureLevel: return .featureLevel
        case .producerIds: return .producerIds
        case .brokerRegistrationChange: return .brokerRegistrationChange
        case .registerController: return .registerController
        case .noOp: return .noOp
        case let .other(type, _, _): return type
        }
    }

    /// The version `encode()` writes: the one Kafka writes at metadata.version 3.9-IV0 (21),
    /// which is the highest whose fields Fjord fills. A partition record carrying
    /// eligible-leader-replica fields (KIP-966) is written at version 2, the first that has them.
    public var version: Int16 {
        switch self {
        case .registerBroker: return 3
        case let .partition(r): return (r.eligibleLeaderReplicas != nil || r.lastKnownElr != nil) ? 2 : 1
        case let .partitionChange(r): return (r.eligibleLeaderReplicas != nil || r.lastKnownElr != nil) ? 2 : 1
        case .brokerRegistrationChange: return 2
        case let .other(_, version, _): return version
        default: return 0
        }
    }

    /// Encodes the framed record value into a new buffer.
    public func encode() throws -> ByteBuffer {
        var buf = ByteBuffer()
        try encode(to: &buf)
        return buf
    }

    /// Appends the framed record value to `buf`.
    public func encode(to buf: inout ByteBuffer) throws {
        buf.writeUnsignedVarint(Self.frameVersion)
        buf.writeUnsignedVarint(UInt32(UInt16(bitPattern: type.rawValue)))
        let v = version
        buf.writeUnsignedVarint(UInt32(UInt16(bitPattern: v)))
        switch self {
        case let .registerBroker(r): try r.encode(to: &buf, version: v)
        case let .unregisterBroker(r): try r.encode(to: &buf, version: v)
        case let .topic(r): try r.encode(to: &buf, version: v)
        case let .partition(r): try r.encode(to: &buf, version: v)
        case let .config(r): try r.encode(to: &buf, version: v)
        case let .partitionChange(r): try r.encode(to: &buf, version: v)
        case let .fenceBroker(r): try r.encode(to: &buf, version: v)
        case let .unfenceBroker(r): try r.encode(to: &buf, version: v)
        case let .removeTopic(r): try r.encode(to: &buf, version: v)
        case let .featureLevel(r): try r.encode(to: &buf, version: v)
        case let .producerIds(r): try r.encode(to: &buf, version: v)
        case let .brokerRegistrationChange(r): try r.encode(to: &buf, version: v)
        case let .registerController(r): try r.encode(to: &buf, version: v)
        case let .noOp(r): try r.encode(to: &buf, version: v)
        case let .other(_, _, body):
            var b = body
            buf.writeBuffer(&b)
        }
    }

    /// Decodes a framed record value. Throws `MetadataRecordError` for an unknown frame
    /// version, record type or record version and for bytes left over after the body, and
    /// `WireError` for a malformed body.
    public static func decode(_ value: ByteBuffer) throws -> MetadataRecord {
        var buf = value
        let frame = try buf.readUnsignedVarint()
        guard frame == frameVersion else { throw MetadataRecordError.unknownFrameVersion(frame) }
        let rawType = try buf.readUnsignedVarint()
        guard rawType <= UInt32(Int16.max), let type = MetadataRecordType(rawValue: Int16(rawType)) else {
            throw MetadataRecordError.unknownRecordType(rawType)
        }
        let rawVersion = try buf.readUnsignedVarint()
        guard rawVersion <= UInt32(Int16.max), type.recordType.validVersions.contains(Int16(rawVersion)) else {
            throw MetadataRecordError.unsupportedVersion(type: type, version: rawVersion)
        }
        let v = Int16(rawVersion)
        let record: MetadataRecord
        switch type {
        case .registerBroker: record = .registerBroker(try RegisterBrokerRecord(from: &buf, version: v))
        case .unregisterBroker: record = .unregisterBroker(try UnregisterBrokerRecord(from: &buf, version: v))
        case .topic: record = .topic(try TopicRecord(from: &buf, version: v))
        case .partition: record = .partition(try PartitionRecord(from: &buf, version: v))
        case .config: record = .config(try ConfigRecord(from: &buf, version: v))
        case .partitionChange: record = .partitionChange(try PartitionChangeRecord(from: &buf, version: v))
        case .fenceBroker: record = .fenceBroker(try FenceBrokerRecord(from: &buf, version: v))
        case .unfenceBroker: record = .unfenceBroker(try UnfenceBrokerRecord(from: &buf, version: v))
        case .removeTopic: record = .removeTopic(try RemoveTopicRecord(from: &buf, version: v))
        case .featureLevel: record = .featureLevel(try FeatureLevelRecord(from: &buf, version: v))
        case .producerIds: record = .producerIds(try ProducerIdsRecord(from: &buf, version: v))
        case .brokerRegistrationChange:
            record = .brokerRegistrationChange(try BrokerRegistrationChangeRecord(from: &buf, version: v))
        case .registerController: record = .registerController(try RegisterControllerRecord(from: &buf, version: v))
        case .noOp: record = .noOp(try NoOpRecord(from: &buf, version: v))
        default:
            // Parse with the generated type to validate it, keep the bytes.
            let start = buf.readerIndex
            _ = try type.recordType.init(from: &buf, version: v)
            let body = value.getSlice(at: start, length: buf.readerIndex - start) ?? ByteBuffer()
            record = .other(type, version: v, body)
        }
        guard buf.readableBytes == 0 else {
            throw MetadataRecordError.trailingBytes(type: type, count: buf.readableBytes)
        }
        return record
    }
}

/// Why a metadata record value could not be decoded.
public enum MetadataRecordError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The frame version is not 1.
    case unknownFrameVersion(UInt32)
    /// The record type is not one of the schemas'.
    case unknownRecordType(UInt32)
    /// The record version is outside the schema's valid versions.
    case unsupportedVersion(type: MetadataRecordType, version: UInt32)
    /// Bytes were left after the record body.
    case trailingBytes(type: MetadataRecordType, count: Int)

    public var description: String {
        switch self {
        case let .unknownFrameVersion(v):
            return "unknown metadata record frame version \(v) (only frame version \(MetadataRecord.frameVersion) is supported)"
        case let .unknownRecordType(t): return "unknown metadata record type \(t)"
        case let .unsupportedVersion(type, v): return "unsupported version \(v) of metadata record \(type)"
        case let .trailingBytes(type, n): return "\(n) byte(s) of garbage after metadata record \(type)"
        }
    }
}
