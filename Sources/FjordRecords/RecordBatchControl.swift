import NIOCore

/// The type of a control record, from the last two bytes of its key
/// (key = version int16 + type int16).
public struct ControlRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// Transaction abort marker (KIP-98).
    public static let abort = ControlRecordType(rawValue: 0)
    /// Transaction commit marker (KIP-98).
    public static let commit = ControlRecordType(rawValue: 1)
    /// KRaft `LeaderChangeMessage`.
    public static let leaderChange = ControlRecordType(rawValue: 2)
    /// KRaft `SnapshotHeaderRecord`.
    public static let snapshotHeader = ControlRecordType(rawValue: 3)
    /// KRaft `SnapshotFooterRecord`.
    public static let snapshotFooter = ControlRecordType(rawValue: 4)
    /// KRaft `KRaftVersionRecord`.
    public static let kraftVersion = ControlRecordType(rawValue: 5)
    /// KRaft `VotersRecord`.
    public static let kraftVoters = ControlRecordType(rawValue: 6)

    /// Kafka's enum name (`ABORT`, `COMMIT`, `LEADER_CHANGE`, ..., `UNKNOWN`).
    public var name: String {
        switch rawValue {
        case 0: return "ABORT"
        case 1: return "COMMIT"
        case 2: return "LEADER_CHANGE"
        case 3: return "SNAPSHOT_HEADER"
        case 4: return "SNAPSHOT_FOOTER"
        case 5: return "KRAFT_VERSION"
        case 6: return "KRAFT_VOTERS"
        default: return "UNKNOWN"
        }
    }

    public var description: String { name }

    /// Encodes a control record key: `version` then the type.
    public func encodeKey(version: Int16 = 0) -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(4)
        b.writeInteger(version, endianness: .big)
        b.writeInteger(rawValue, endianness: .big)
        return b
    }
}

/// A transaction marker: the value of an ABORT or COMMIT control record
/// (version int16 = 0, coordinatorEpoch int32).
public struct EndTransactionMarker: Hashable, Sendable {
    /// `.commit` or `.abort`.
    public var type: ControlRecordType
    /// The epoch of the transaction coordinator that wrote the marker.
    public var coordinatorEpoch: Int32

    public init(type: ControlRecordType, coordinatorEpoch: Int32) {
        self.type = type
        self.coordinatorEpoch = coordinatorEpoch
    }

    /// Decodes the marker from a control record.
    /// - Throws: `RecordBatchError.invalidRecord` unless the record is an ABORT/COMMIT
    ///   control record with a well-formed value.
    public init(record: Record) throws(RecordBatchError) {
        let type = try record.controlRecordType()
        guard type == .abort || type == .commit else {
            throw .invalidRecord(reason: "control record type \(type.rawValue) is not a transaction marker")
        }
        guard var value = record.value, value.readableBytes >= 6,
              let version = value.readInteger(endianness: .big, as: Int16.self),
              let epoch = value.readInteger(endianness: .big, as: Int32.self)
        else { throw .invalidRecord(reason: "transaction marker value needs at least 6 bytes") }
        guard version >= 0 else { throw .invalidRecord(reason: "invalid transaction marker version \(version)") }
        self.type = type
        self.coordinatorEpoch = epoch
    }

    /// The control record value: version 0, then the coordinator epoch.
    public func encodeValue() -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(6)
        b.writeInteger(Int16(0), endianness: .big)
        b.writeInteger(coordinatorEpoch, endianness: .big)
        return b
    }
}

extension Record {
    /// The control record type from the key (version int16 ≥ 0, then type int16).
    /// - Throws: `RecordBatchError.invalidRecord` for a missing, short or negative-version key.
    public func controlRecordType() throws(RecordBatchError) -> ControlRecordType {
        guard let key, key.readableBytes >= 4,
              let version = key.getInteger(at: key.readerIndex, endianness: .big, as: Int16.self),
              let type = key.getInteger(at: key.readerIndex + 2, endianness: .big, as: Int16.self)
        else { throw .invalidRecord(reason: "control record key needs at least 4 bytes, found \(keySize)") }
        guard version >= 0 else { throw .invalidRecord(reason: "invalid control record key version \(version)") }
        return ControlRecordType(rawValue: type)
    }
}

extension RecordBatchBuilder {
    /// Builds a transaction marker batch (one COMMIT or ABORT control record), as the broker
    /// writes for WriteTxnMarkers: transactional, control, no sequence, uncompressed.
    public static func endTransactionMarkerBatch(_ marker: EndTransactionMarker, producerId: Int64,
                                                 producerEpoch: Int16, baseOffset: Int64 = 0,
                                                 partitionLeaderEpoch: Int32 = RecordBatch.noPartitionLeaderEpoch,
                                                 timestamp: Int64) throws(RecordBatchError) -> RecordBatch {
        var b = RecordBatchBuilder(baseOffset: baseOffset, partitionLeaderEpoch: partitionLeaderEpoch,
                                   producerId: producerId, producerEpoch: producerEpoch,
                                   isTransactional: true, isControl: true, initialCapacity: 96)
        b.appendControlRecord(type: marker.type, value: marker.encodeValue(), timestamp: timestamp)
        return try b.build()
    }

    /// Builds a control batch holding one control record of any type with an arbitrary
    /// value (KRaft: LeaderChangeMessage, SnapshotHeader/Footer, KRaftVersion, Voters).
    public static func controlBatch(type: ControlRecordType, keyVersion: Int16 = 0, value: ByteBuffer?,
                                    baseOffset: Int64 = 0,
                                    partitionLeaderEpoch: Int32 = RecordBatch.noPartitionLeaderEpoch,
                                    producerId: Int64 = RecordBatch.noProducerId,
                                    producerEpoch: Int16 = RecordBatch.noProducerEpoch,
                                    isTransactional: Bool = false,
                                    timestamp: Int64) throws(RecordBatchError) -> RecordBatch {
        var b = RecordBatchBuilder(baseOffset: baseOffset, partitionLeaderEpoch: partitionLeaderEpoch,
                                   producerId: producerId, producerEpoch: producerEpoch,
                                   isTransactional: isTransactional, isControl: true,
                                   initialCapacity: 80 + (value?.readableBytes ?? 0))
        b.appendControlRecord(type: type, version: keyVersion, value: value, timestamp: timestamp)
        return try b.build()
    }
}
