import NIOCore

/// A zero-copy view of one Kafka record batch (magic 2, KIP-98) held in a `ByteBuffer` slice.
///
/// Header fields are computed properties that read at fixed offsets; nothing is decoded up
/// front. The initializer checks only what every later access relies on (enough bytes for the
/// header, magic 2, a batch length that matches the buffer); call ``validate()`` or
/// ``isValid`` to check the CRC, and ``makeRecordIterator(maxDecompressedBytes:)`` to walk the
/// records.
///
/// Layout (big endian, byte offsets from the start of the batch):
/// ```
///  0 baseOffset int64        12 partitionLeaderEpoch int32  16 magic int8
/// 17 crc uint32 (CRC-32C of bytes 21..<end)   21 attributes int16
/// 23 lastOffsetDelta int32   27 baseTimestamp int64          35 maxTimestamp int64
/// 43 producerId int64        51 producerEpoch int16          53 baseSequence int32
/// 57 recordCount int32       61 records (possibly compressed)
/// ```
/// `batchLength` (offset 8) counts the bytes after itself, so a batch is `12 + batchLength`
/// bytes long.
public struct RecordBatch: Sendable, Hashable {
    /// Byte offsets and sizes of the batch header.
    public enum Layout {
        public static let baseOffset = 0
        public static let batchLength = 8
        public static let partitionLeaderEpoch = 12
        public static let magic = 16
        public static let crc = 17
        public static let attributes = 21
        public static let lastOffsetDelta = 23
        public static let baseTimestamp = 27
        public static let maxTimestamp = 35
        public static let producerId = 43
        public static let producerEpoch = 51
        public static let baseSequence = 53
        public static let recordCount = 57
        /// Where the records section starts; also the size of the fixed header.
        public static let records = 61
        /// Size of the fixed header (61 bytes).
        public static let headerSize = 61
        /// `baseOffset` + `batchLength`: the bytes not counted by `batchLength`.
        public static let logOverhead = 12
        /// The bytes needed to read a batch's length and magic (Kafka's
        /// `HEADER_SIZE_UP_TO_MAGIC`); the magic sits at the same offset in legacy message sets.
        public static let headerSizeUpToMagic = 17
        /// The smallest legal `batchLength` (a header with no records): 61 − 12 = 49.
        public static let minimumBatchLength = 49
    }

    /// The only magic Fjord reads and writes.
    public static let currentMagic: Int8 = 2
    /// `producerId` of a batch without idempotence.
    public static let noProducerId: Int64 = -1
    /// `producerEpoch` of a batch without idempotence.
    public static let noProducerEpoch: Int16 = -1
    /// `baseSequence` of a batch without idempotence.
    public static let noSequence: Int32 = -1
    /// `partitionLeaderEpoch` written by producers (the broker sets the real one).
    public static let noPartitionLeaderEpoch: Int32 = -1
    /// A missing timestamp.
    public static let noTimestamp: Int64 = -1
    /// Default bound on a batch's total size: Kafka's `socket.request.max.bytes` default
    /// (100 MiB); no batch received over the wire can be larger.
    public static let defaultMaxBatchSize = 104_857_600
    /// Default bound on the decompressed size of a batch's records.
    public static let defaultMaxDecompressedBytes = 128 * 1024 * 1024

    /// The batch's bytes: exactly `sizeInBytes` readable bytes, starting with `baseOffset`.
    @inlinable public var buffer: ByteBuffer { bytes }
    @usableFromInline var bytes: ByteBuffer

    /// Wraps the batch that fills `buffer`'s readable bytes.
    ///
    /// Checks the header is complete, the magic is 2 and `batchLength` matches the buffer
    /// (and is at most `maxBatchSize` in total). Does not check the CRC: see ``validate()``.
    /// - Throws: ``RecordBatchError`` (`truncated`, `unsupportedMagic`, `invalidBatchLength`,
    ///   `recordTooLarge`, `trailingBytes`).
    public init(_ buffer: ByteBuffer, maxBatchSize: Int = RecordBatch.defaultMaxBatchSize) throws(RecordBatchError) {
        switch RecordBatch.frame(buffer, maxBatchSize: maxBatchSize) {
        case let .complete(size):
            if size < buffer.readableBytes { throw .trailingBytes(buffer.readableBytes - size) }
            self.bytes = buffer
        case let .incomplete(size):
            throw .truncated(needed: size ?? Layout.headerSize, available: buffer.readableBytes)
        case let .invalid(error):
            throw error
        }
    }

    /// Wraps bytes already framed by ``frame(_:at:maxBatchSize:)``.
    @usableFromInline
    init(uncheckedFramed buffer: ByteBuffer) {
        self.bytes = buffer
    }

    // MARK: reading header fields

    @inlinable @inline(__always)
    func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        // The initializer guarantees at least `Layout.headerSize` readable bytes.
        bytes.getInteger(at: bytes.readerIndex &+ offset, endianness: .big, as: T.self) ?? 0
    }

    @inlinable @inline(__always)
    mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        bytes.setInteger(value, at: bytes.readerIndex &+ offset, endianness: .big)
    }

    /// The offset of the first record. Not covered by the CRC, so the broker can assign it
    /// in place (see the setter).
    @inlinable public var baseOffset: Int64 {
        get { load(Layout.baseOffset) }
        set { store(newValue, at: Layout.baseOffset) }
    }
    /// The bytes after the length field: `sizeInBytes - 12`.
    @inlinable public var batchLength: Int32 { load(Layout.batchLength) }
    /// The leader epoch of the partition when the batch was appended. Not covered by the CRC;
    /// the setter rewrites it in place.
    @inlinable public var partitionLeaderEpoch: Int32 {
        get { load(Layout.partitionLeaderEpoch) }
        set { store(newValue, at: Layout.partitionLeaderEpoch) }
    }
    /// The format version; always 2 for a `RecordBatch`.
    @inlinable public var magic: Int8 { load(Layout.magic) }
    /// The CRC-32C stored in the header.
    @inlinable public var crc: UInt32 { load(Layout.crc) }
    /// The attributes field.
    @inlinable public var attributes: Attributes { Attributes(rawValue: load(Layout.attributes)) }
    /// The compression codec, or nil when the attributes hold an unknown codec id (5–7).
    @inlinable public var compression: CompressionCodec? { attributes.codec }
    /// Where the timestamps come from.
    @inlinable public var timestampType: TimestampType { attributes.timestampType }
    /// Whether the batch belongs to a transaction.
    @inlinable public var isTransactional: Bool { attributes.isTransactional }
    /// Whether the batch holds control records (transaction markers, KRaft control records).
    @inlinable public var isControl: Bool { attributes.isControl }
    /// Whether `baseTimestamp` holds the delete horizon set by the log cleaner (KIP-534).
    @inlinable public var hasDeleteHorizonMs: Bool { attributes.hasDeleteHorizonMs }
    /// The delete horizon (the `baseTimestamp`) when the attributes say there is one.
    @inlinable public var deleteHorizonMs: Int64? { hasDeleteHorizonMs ? baseTimestamp : nil }
    /// The offset delta of the last record (may exceed `recordCount - 1` after compaction).
    @inlinable public var lastOffsetDelta: Int32 { load(Layout.lastOffsetDelta) }
    /// The timestamp of the first record (or the delete horizon, see ``deleteHorizonMs``).
    @inlinable public var baseTimestamp: Int64 { load(Layout.baseTimestamp) }
    /// The largest record timestamp, or the log append time for `LogAppendTime` batches.
    @inlinable public var maxTimestamp: Int64 { load(Layout.maxTimestamp) }
    /// The producer id, or -1.
    @inlinable public var producerId: Int64 { load(Layout.producerId) }
    /// The producer epoch, or -1.
    @inlinable public var producerEpoch: Int16 { load(Layout.producerEpoch) }
    /// The sequence number of the first record, or -1.
    @inlinable public var baseSequence: Int32 { load(Layout.baseSequence) }
    /// The number of records the header declares.
    @inlinable public var recordCount: Int32 { load(Layout.recordCount) }

    /// `baseOffset + lastOffsetDelta`.
    @inlinable public var lastOffset: Int64 { baseOffset &+ Int64(lastOffsetDelta) }
    /// The offset after this batch: `lastOffset + 1`.
    @inlinable public var nextOffset: Int64 { lastOffset &+ 1 }
    /// The sequence number of the last record (wrapping past `Int32.max` as Kafka does), or -1.
    @inlinable public var lastSequence: Int32 {
        RecordBatch.incrementSequence(baseSequence, by: lastOffsetDelta)
    }
    /// The whole batch's size in bytes (`12 + batchLength`).
    @inlinable public var sizeInBytes: Int { buffer.readableBytes }
    /// The records section (compressed if the batch is), as a slice.
    @inlinable public var recordsSection: ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex &+ Layout.records, length: buffer.readableBytes &- Layout.records)
            ?? ByteBuffer()
    }

    /// Kafka's sequence arithmetic: `base + delta`, wrapping to 0 after `Int32.max`; -1 stays -1.
    @inlinable
    public static func incrementSequence(_ base: Int32, by delta: Int32) -> Int32 {
        if base == noSequence { return noSequence }
        if delta > 0 && base > Int32.max &- delta { return delta &- (Int32.max &- base) &- 1 }
        return base &+ delta
    }

    // MARK: CRC

    /// The CRC-32C of the bytes from `attributes` to the end of the batch.
    public func computeCRC() -> UInt32 {
        buffer.withUnsafeReadableBytes { raw in
            guard raw.count > Layout.attributes else { return 0 }
            return CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[Layout.attributes...]))
        }
    }

    /// Whether the stored CRC matches the bytes (Kafka's `isValid`).
    public var isValid: Bool { computeCRC() == crc }

    /// Checks the batch's integrity: the stored CRC matches (computed once over the batch) and
    /// the header is sane (non-negative record count). Structure checks (magic, length) were
    /// done when the batch was framed.
    /// - Throws: `RecordBatchError.corruptCRC` or `.invalidRecord`.
    public func validate() throws(RecordBatchError) {
        let actual = computeCRC()
        let expected = crc
        guard actual == expected else { throw .corruptCRC(expected: expected, actual: actual) }
        guard recordCount >= 0 else { throw .invalidRecord(reason: "negative record count \(recordCount)") }
        guard attributes.codec != nil else { throw .unsupportedCompression(attributes.codecID) }
    }

    /// Rewrites the CRC from the current bytes (after changing covered fields).
    @usableFromInline
    mutating func refreshCRC() {
        store(computeCRC(), at: Layout.crc)
    }

    // MARK: in-place rewrites (broker side)

    /// Sets the base offset in place (offset assignment on append). The CRC does not cover
    /// it, so the batch stays valid.
    public mutating func setBaseOffset(_ offset: Int64) {
        baseOffset = offset
    }

    /// Sets the partition leader epoch in place (not covered by the CRC).
    public mutating func setPartitionLeaderEpoch(_ epoch: Int32) {
        partitionLeaderEpoch = epoch
    }

    /// Sets `maxTimestamp` and the timestamp type bit in place and recomputes the CRC, as the
    /// broker does for `LogAppendTime` topics (and to correct `maxTimestamp` for `CreateTime`).
    public mutating func setMaxTimestamp(_ timestamp: Int64, timestampType: TimestampType) {
        var attrs = attributes.rawValue & ~Attributes.timestampTypeBit
        if timestampType == .logAppendTime { attrs |= Attributes.timestampTypeBit }
        store(attrs, at: Layout.attributes)
        store(timestamp, at: Layout.maxTimestamp)
        refreshCRC()
    }

    /// Marks the batch `LogAppendTime` with the given broker time and recomputes the CRC.
    public mutating func setLogAppendTime(_ timestamp: Int64) {
        setMaxTimestamp(timestamp, timestampType: .logAppendTime)
    }
}

extension RecordBatch: CustomStringConvertible {
    public var description: String {
        "RecordBatch(baseOffset: \(baseOffset), lastOffset: \(lastOffset), count: \(recordCount), "
            + "size: \(sizeInBytes), codec: \(attributes.codecID), \(timestampType): \(maxTimestamp), "
            + "producerId: \(producerId), producerEpoch: \(producerEpoch), baseSequence: \(baseSequence), "
            + "isTransactional: \(isTransactional), isControl: \(isControl))"
    }
}
