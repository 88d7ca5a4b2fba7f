import FjordWire
import NIOCore

/// Builds one record batch (magic 2): append records, then ``build()``.
///
/// Offset deltas are assigned sequentially (0, 1, 2, ...) unless given explicitly;
/// `baseTimestamp` is the first record's timestamp, `maxTimestamp` the largest (or the log
/// append time), `lastOffsetDelta` the last delta. ``build()`` compresses the records with
/// the chosen codec, writes the header and the CRC-32C.
///
/// ```swift
/// var b = RecordBatchBuilder(codec: .lz4)
/// b.append(key: ByteBuffer(string: "k"), value: ByteBuffer(string: "v"), timestamp: now)
/// let batch = try b.build()
/// ```
public struct RecordBatchBuilder: Sendable {
    /// The offset of the first record.
    public var baseOffset: Int64
    /// The partition leader epoch to write (-1 from producers; the broker sets it).
    public var partitionLeaderEpoch: Int32
    /// The codec for the records section.
    public var codec: CompressionCodec
    /// The codec's level, or nil for the codec's default.
    public var compressionLevel: Int?
    /// The producer id, or -1.
    public var producerId: Int64
    /// The producer epoch, or -1.
    public var producerEpoch: Int16
    /// The first record's sequence number, or -1.
    public var baseSequence: Int32
    /// Sets the transactional attribute bit.
    public var isTransactional: Bool
    /// Sets the control attribute bit (see ``appendControlRecord(type:version:value:timestamp:)``).
    public var isControl: Bool
    /// When set, the batch is `LogAppendTime` and `maxTimestamp` is this time.
    public var logAppendTime: Int64?
    /// When set (before the first append), `baseTimestamp` holds this delete horizon and the
    /// `hasDeleteHorizonMs` bit is set (KIP-534); record timestamps stay exact.
    public let deleteHorizonMs: Int64?

    /// The batch under construction: 61 header bytes reserved, then the records.
    @usableFromInline var storage: ByteBuffer
    /// The number of records appended.
    public private(set) var count: Int = 0
    @usableFromInline var baseTimestamp: Int64?
    @usableFromInline var maxTimestamp: Int64 = RecordBatch.noTimestamp
    @usableFromInline var lastOffsetDelta: Int32 = -1

    /// A builder with the given header fields. All have producer-side defaults.
    public init(baseOffset: Int64 = 0,
                partitionLeaderEpoch: Int32 = RecordBatch.noPartitionLeaderEpoch,
                codec: CompressionCodec = .none,
                compressionLevel: Int? = nil,
                producerId: Int64 = RecordBatch.noProducerId,
                producerEpoch: Int16 = RecordBatch.noProducerEpoch,
                baseSequence: Int32 = RecordBatch.noSequence,
                isTransactional: Bool = false,
                isControl: Bool = false,
                logAppendTime: Int64? = nil,
                deleteHorizonMs: Int64? = nil,
                initialCapacity: Int = 1024,
                allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.baseOffset = baseOffset
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.codec = codec
        self.compressionLevel = compressionLevel
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.isTransactional = isTransactional
        self.isControl = isControl
        self.logAppendTime = logAppendTime
        self.deleteHorizonMs = deleteHorizonMs
        self.baseTimestamp = deleteHorizonMs
        storage = allocator.buffer(capacity: max(initialCapacity, RecordBatch.Layout.headerSize))
        storage.writeRepeatingByte(0, count: RecordBatch.Layout.headerSize)
    }

    /// Bytes of the records appended so far (uncompressed) plus the header.
    public var sizeInBytes: Int { storage.readableBytes }
    /// Whether no record was appended yet.
    public var isEmpty: Bool { count == 0 }
    /// The offset delta the next sequential record gets.
    public var nextOffsetDelta: Int32 { lastOffsetDelta &+ 1 }

    /// Appends a record with the next sequential offset delta.
    public mutating func append(key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = [], timestamp: Int64) {
        write(offsetDelta: nextOffsetDelta, key: key, value: value, headers: headers, timestamp: timestamp)
    }

    /// Appends a record with an explicit offset delta (gaps are allowed, as in compacted
    /// batches; deltas must increase).
    /// - Throws: `RecordBatchError.invalidRecord` if `offsetDelta` does not increase.
    public mutating func append(offsetDelta: Int32, key: ByteBuffer?, value: ByteBuffer?,
                                headers: [RecordHeader] = [], timestamp: Int64) throws(RecordBatchError) {
        guard offsetDelta > lastOffsetDelta else {
            throw .invalidRecord(reason: "offset delta \(offsetDelta) does not follow \(lastOffsetDelta)")
        }
        write(offsetDelta: offsetDelta, key: key, value: value, headers: headers, timestamp: timestamp)
    }

    /// Appends a control record: key = `version` (int16) + `type` (int16), and `value`.
    /// Sets ``isControl``. Use one control record per batch, as Kafka does.
    public mutating func appendControlRecord(type: ControlRecordType, version: Int16 = 0, value: ByteBuffer?,
                                             timestamp: Int64) {
        isControl = true
        var key = ByteBuffer()
        key.reserveCapacity(4)
        key.writeInteger(version, endianness: .big)
        key.writeInteger(type.rawValue, endianness: .big)
        append(key: key, value: value, timestamp: timestamp)
    }

    @usableFromInline
    mutating func write(offsetDelta: Int32, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader],
                        timestamp: Int64) {
        let base: Int64
        if let b = baseTimestamp { base = b } else { base = timestamp; baseTimestamp = timestamp }
        let timestampDelta = timestamp &- base
        var bodySize = 1 + Self.varlongSize(timestampDelta) + Self.varintSize(offsetDelta)
        bodySize += Self.bytesFieldSize(key) + Self.bytesFieldSize(value)
        bodySize += Self.varintSize(Int32(truncatingIfNeeded: headers.count))
        for h in headers {
            bodySize += Self.bytesFieldSize(h.key) + Self.bytesFieldSize(h.value)
        }
        storage.reserveCapacity(minimumWritableBytes: bodySize + 5)
        storage.writeVarint(Int32(truncatingIfNeeded: bodySize))
        storage.writeInteger(Int8(0))
        storage.writeVarlong(timestampDelta)
        storage.writeVarint(offsetDelta)
        Self.writeBytesField(key, to: &storage)
        Self.writeBytesField(value, to: &storage)
        storage.writeVarint(Int32(truncatingIfNeeded: headers.count))
        for h in headers {
            Self.writeBytesField(h.key, to: &storage)
            Self.writeBytesField(h.value, to: &storage)
        }
        count += 1
        lastOffsetDelta = offsetDelta
        if count == 1 || timestamp > maxTimestamp { maxTimestamp = timestamp }
    }

    /// Finishes the batch: compresses the records, writes the header and CRC.
    ///
    /// The builder is left empty (its buffer moves into the batch without a copy for
    /// uncompressed batches); configure it again before reusing it.
    /// - Throws: `RecordBatchError.invalidRecord` for an empty batch, `.recordTooLarge` past
    ///   `Int32.max` bytes, `.compressionFailed` if the codec fails.
    public mutating func build() throws(RecordBatchError) -> RecordBatch {
        guard count > 0 else { throw .invalidRecord(reason: "a record batch needs at least one record") }
        typealias L = RecordBatch.Layout
        var out = ByteBuffer()
        swap(&out, &storage)
        if codec != .none {
            let records = out.getSlice(at: out.readerIndex + L.headerSize, length: out.readableBytes - L.headerSize)
                ?? ByteBuffer()
            let compressed: ByteBuffer
            do {
                compressed = try Compression.compress(records, codec: codec, level: compressionLevel)
            } catch {
                throw .compressionFailed("\(codec): \(error)")
            }
            var c = ByteBuffer()
            c.reserveCapacity(L.headerSize + compressed.readableBytes)
            c.writeRepeatingByte(0, count: L.headerSize)
            c.writeImmutableBuffer(compressed)
            out = c
        }
        let size = out.readableBytes
        guard size - L.logOverhead <= Int(Int32.max) else {
            throw .recordTooLarge(size: size, limit: Int(Int32.max))
        }
        let attributes = RecordBatch.Attributes(
            codec: codec, timestampType: logAppendTime == nil ? .createTime : .logAppendTime,
            isTransactional: isTransactional, isControl: isControl, hasDeleteHorizonMs: deleteHorizonMs != nil)
        let start = out.readerIndex
        out.setInteger(baseOffset, at: start + L.baseOffset, endianness: .big)
        out.setInteger(Int32(size - L.logOverhead), at: start + L.batchLength, endianness: .big)
        out.setInteger(partitionLeaderEpoch, at: start + L.partitionLeaderEpoch, endianness: .big)
        out.setInteger(RecordBatch.currentMagic, at: start + L.magic)
        out.setInteger(attributes.rawValue, at: start + L.attributes, endianness: .big)
        out.setInteger(lastOffsetDelta, at: start + L.lastOffsetDelta, endianness: .big)
        out.setInteger(baseTimestamp ?? RecordBatch.noTimestamp, at: start + L.baseTimestamp, endianness: .big)
        out.setInteger(logAppendTime ?? maxTimestamp, at: start + L.maxTimestamp, endianness: .big)
        out.setInteger(producerId, at: start + L.producerId, endianness: .big)
        out.setInteger(producerEpoch, at: start + L.producerEpoch, endianness: .big)
        out.setInteger(baseSequence, at: start + L.baseSequence, endianness: .big)
        out.setInteger(Int32(truncatingIfNeeded: count), at: start + L.recordCount, endianness: .big)
        var batch = RecordBatch(uncheckedFramed: out)
        batch.refreshCRC()
        count = 0
        baseTimestamp = deleteHorizonMs
        maxTimestamp = RecordBatch.noTimestamp
        lastOffsetDelta = -1
        storage.writeRepeatingByte(0, count: L.headerSize)
        return batch
    }

    // MARK: encoding helpers

    @inlinable
    static func varintSize(_ v: Int32) -> Int {
        varSize(UInt64(UInt32(bitPattern: (v << 1) ^ (v >> 31))))
    }

    @inlinable
    static func varlongSize(_ v: Int64) -> Int {
        varSize(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    @inlinable
    static func varSize(_ u: UInt64) -> Int {
        // 7 payload bits per byte.
        let bits = 64 - (u | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }

    @inlinable
    static func bytesFieldSize(_ b: ByteBuffer?) -> Int {
        guard let b else { return 1 }
        return varintSize(Int32(truncatingIfNeeded: b.readableBytes)) + b.readableBytes
    }

    @inlinable
    static func writeBytesField(_ b: ByteBuffer?, to out: inout ByteBuffer) {
        guard let b else { out.writeVarint(-1); return }
        out.writeVarint(Int32(truncatingIfNeeded: b.readableBytes))
        out.writeImmutableBuffer(b)
    }
}
