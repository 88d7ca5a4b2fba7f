/// Which clock a batch's timestamps come from (attributes bit 3).
public enum TimestampType: Int8, Sendable, Hashable, CustomStringConvertible {
    /// The producer's timestamps (`CreateTime`).
    case createTime = 0
    /// The broker's append time (`LogAppendTime`): every record's timestamp is the batch's
    /// `maxTimestamp`.
    case logAppendTime = 1

    /// Kafka's name, as `kafka-dump-log` prints it: `CreateTime` or `LogAppendTime`.
    public var description: String {
        switch self {
        case .createTime: return "CreateTime"
        case .logAppendTime: return "LogAppendTime"
        }
    }
}

extension RecordBatch {
    /// The 16-bit attributes field of a batch header.
    ///
    /// Bits 0–2 compression codec, bit 3 timestamp type (1 = LogAppendTime), bit 4
    /// transactional, bit 5 control, bit 6 has delete horizon (KIP-534). Other bits are unused.
    public struct Attributes: RawRepresentable, Hashable, Sendable {
        public var rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }

        public static let compressionMask: Int16 = 0x07
        public static let timestampTypeBit: Int16 = 0x08
        public static let transactionalBit: Int16 = 0x10
        public static let controlBit: Int16 = 0x20
        public static let deleteHorizonBit: Int16 = 0x40

        /// Builds attributes from their parts.
        public init(codec: CompressionCodec = .none, timestampType: TimestampType = .createTime,
                    isTransactional: Bool = false, isControl: Bool = false, hasDeleteHorizonMs: Bool = false) {
            var v = Int16(codec.rawValue) & Self.compressionMask
            if timestampType == .logAppendTime { v |= Self.timestampTypeBit }
            if isTransactional { v |= Self.transactionalBit }
            if isControl { v |= Self.controlBit }
            if hasDeleteHorizonMs { v |= Self.deleteHorizonBit }
            self.rawValue = v
        }

        /// The raw codec id (0–7); ids 5–7 are invalid.
        @inlinable public var codecID: Int8 { Int8(truncatingIfNeeded: rawValue & Self.compressionMask) }
        /// The codec, or nil for the invalid ids 5–7.
        @inlinable public var codec: CompressionCodec? { CompressionCodec(rawValue: codecID) }
        @inlinable public var timestampType: TimestampType {
            rawValue & Self.timestampTypeBit != 0 ? .logAppendTime : .createTime
        }
        @inlinable public var isTransactional: Bool { rawValue & Self.transactionalBit != 0 }
        @inlinable public var isControl: Bool { rawValue & Self.controlBit != 0 }
        @inlinable public var hasDeleteHorizonMs: Bool { rawValue & Self.deleteHorizonBit != 0 }
    }
}
