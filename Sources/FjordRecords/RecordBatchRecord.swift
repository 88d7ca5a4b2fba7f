import FjordWire
import NIOCore

/// One header of a record: a UTF-8 key and an optional value.
///
/// Decoded headers hold slices of the batch (no copy); ``keyString`` decodes the key.
public struct RecordHeader: Hashable, Sendable {
    /// The header key's bytes (UTF-8 by convention; Kafka's type is a non-null string).
    public var key: ByteBuffer
    /// The header value, or nil for a null value.
    public var value: ByteBuffer?

    /// A header from raw key bytes and an optional value.
    public init(key: ByteBuffer, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }

    /// A header from a string key and optional value bytes.
    public init(key: String, value: [UInt8]?) {
        self.key = ByteBuffer(string: key)
        self.value = value.map { ByteBuffer(bytes: $0) }
    }

    /// A header from a string key and optional string value.
    public init(key: String, value: String?) {
        self.key = ByteBuffer(string: key)
        self.value = value.map { ByteBuffer(string: $0) }
    }

    /// The key decoded as UTF-8 (invalid sequences replaced), as Kafka clients show it.
    public var keyString: String { String(buffer: key) }
}

/// The headers of a decoded record: a lazy sequence over the record's header bytes.
///
/// The bytes were checked when the record was decoded, so iteration cannot fail.
public struct RecordHeaders: Sequence, Hashable, Sendable {
    @usableFromInline let bytes: ByteBuffer
    /// The number of headers.
    public let count: Int

    @inlinable
    init(bytes: ByteBuffer, count: Int) {
        self.bytes = bytes
        self.count = count
    }

    /// No headers.
    public static let empty = RecordHeaders(bytes: ByteBuffer(), count: 0)

    /// Whether there are no headers.
    @inlinable public var isEmpty: Bool { count == 0 }

    @inlinable public var underestimatedCount: Int { count }

    public struct Iterator: IteratorProtocol {
        @usableFromInline var bytes: ByteBuffer
        @usableFromInline var remaining: Int

        @inlinable init(bytes: ByteBuffer, remaining: Int) {
            self.bytes = bytes
            self.remaining = remaining
        }

        @inlinable
        public mutating func next() -> RecordHeader? {
            guard remaining > 0 else { return nil }
            remaining -= 1
            guard let keyLength = try? bytes.readVarint(), keyLength >= 0,
                  let key = bytes.readSlice(length: Int(keyLength)),
                  let valueLength = try? bytes.readVarint()
            else { remaining = 0; return nil }
            if valueLength < 0 { return RecordHeader(key: key, value: nil) }
            guard let value = bytes.readSlice(length: Int(valueLength)) else { remaining = 0; return nil }
            return RecordHeader(key: key, value: value)
        }
    }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(bytes: bytes, remaining: count) }

    /// The value of the first header named `key` (nil if absent or null).
    public func first(named key: String) -> ByteBuffer?? {
        let k = ByteBuffer(string: key)
        for h in self where h.key == k { return .some(h.value) }
        return nil
    }
}

/// One record of a batch, as slices of the batch (or of its decompressed records).
///
/// Offsets, timestamps and sequence numbers are absolute (batch base + delta).
public struct Record: Hashable, Sendable {
    /// The record's offset: `baseOffset + offsetDelta`.
    public var offset: Int64
    /// The record's timestamp: `baseTimestamp + timestampDelta`, or the batch's
    /// `maxTimestamp` in a `LogAppendTime` batch.
    public var timestamp: Int64
    /// The record's own attributes byte (unused by Kafka so far; 0).
    public var attributes: Int8
    /// The offset delta within the batch.
    public var offsetDelta: Int32
    /// The timestamp delta within the batch, as stored.
    public var timestampDelta: Int64
    /// The sequence number (`baseSequence + offsetDelta`, wrapping), or -1.
    public var sequence: Int32
    /// The key, or nil for a null key.
    public var key: ByteBuffer?
    /// The value, or nil for a null value (a tombstone).
    public var value: ByteBuffer?
    /// The headers, decoded lazily.
    public var headers: RecordHeaders
    /// The encoded size of the record, including its length varint.
    public var sizeInBytes: Int

    /// A record from its decoded fields.
    @inlinable
    public init(offset: Int64, timestamp: Int64, attributes: Int8 = 0, offsetDelta: Int32, timestampDelta: Int64,
                sequence: Int32, key: ByteBuffer?, value: ByteBuffer?, headers: RecordHeaders, sizeInBytes: Int) {
        self.offset = offset
        self.timestamp = timestamp
        self.attributes = attributes
        self.offsetDelta = offsetDelta
        self.timestampDelta = timestampDelta
        self.sequence = sequence
        self.key = key
        self.value = value
        self.headers = headers
        self.sizeInBytes = sizeInBytes
    }

    /// The key's size, or -1 for a null key (as `kafka-dump-log` prints it).
    @inlinable public var keySize: Int { key?.readableBytes ?? -1 }
    /// The value's size, or -1 for a null value.
    @inlinable public var valueSize: Int { value?.readableBytes ?? -1 }
}

/// Iterates the records of one batch without allocating per record.
///
/// For a compressed batch the records section was decompressed once, when the iterator was
/// made; records are slices of that buffer. `next()` checks each record's framing (lengths,
/// varints, header structure, no bytes left over) and that the batch holds exactly the
/// declared number of records.
public struct RecordIterator: Sendable {
    @usableFromInline var cursor: ByteBuffer
    @usableFromInline var remaining: Int32
    @usableFromInline let baseOffset: Int64
    @usableFromInline let baseTimestamp: Int64
    @usableFromInline let logAppendTime: Int64?
    @usableFromInline let baseSequence: Int32
    @usableFromInline var finished = false

    @usableFromInline
    init(records: ByteBuffer, count: Int32, batch: RecordBatch) {
        cursor = records
        remaining = count
        baseOffset = batch.baseOffset
        baseTimestamp = batch.baseTimestamp
        logAppendTime = batch.timestampType == .logAppendTime ? batch.maxTimestamp : nil
        baseSequence = batch.baseSequence
    }

    /// The next record, or nil after the last one.
    /// - Throws: `RecordBatchError.invalidRecord` or `.truncated` for malformed records or a
    ///   count that does not match the bytes.
    @inlinable
    public mutating func next() throws(RecordBatchError) -> Record? {
        if finished { return nil }
        guard remaining > 0 else {
            finished = true
            if cursor.readableBytes != 0 {
                throw .invalidRecord(reason: "\(cursor.readableBytes) bytes remain after the declared records")
            }
            return nil
        }
        remaining &-= 1
        do {
            return try decodeRecord()
        } catch {
            finished = true
            throw error
        }
    }

    @inlinable
    mutating func decodeRecord() throws(RecordBatchError) -> Record {
        let start = cursor.readerIndex
        do {
            let length = try cursor.readVarint()
            guard length >= 0 else { throw RecordBatchError.invalidRecord(reason: "negative record length \(length)") }
            guard var body = cursor.readSlice(length: Int(length)) else {
                throw RecordBatchError.truncated(needed: Int(length), available: cursor.readableBytes)
            }
            let attributes: Int8 = try body.readKafkaInt()
            let timestampDelta = try body.readVarlong()
            let offsetDelta = try body.readVarint()
            let key = try Self.readNullableBytes(&body, what: "key")
            let value = try Self.readNullableBytes(&body, what: "value")
            let headerCount = try body.readVarint()
            guard headerCount >= 0 else { throw RecordBatchError.invalidRecord(reason: "negative header count \(headerCount)") }
            let headersStart = body.readerIndex
            let headerRegion = body  // NIO's get* only reach readable bytes: keep a view from here
            var i: Int32 = 0
            while i < headerCount {
                let keyLength = try body.readVarint()
                guard keyLength >= 0 else { throw RecordBatchError.invalidRecord(reason: "invalid header key length \(keyLength)") }
                guard body.readableBytes >= Int(keyLength) else {
                    throw RecordBatchError.invalidRecord(reason: "header key runs past the record")
                }
                body.moveReaderIndex(forwardBy: Int(keyLength))
                let valueLength = try body.readVarint()
                if valueLength < -1 { throw RecordBatchError.invalidRecord(reason: "invalid header value length \(valueLength)") }
                if valueLength > 0 {
                    guard body.readableBytes >= Int(valueLength) else {
                        throw RecordBatchError.invalidRecord(reason: "header value runs past the record")
                    }
                    body.moveReaderIndex(forwardBy: Int(valueLength))
                }
                i &+= 1
            }
            guard body.readableBytes == 0 else {
                throw RecordBatchError.invalidRecord(
                    reason: "expected to read \(length) bytes in record payload, but \(body.readableBytes) were left over")
            }
            let headerBytes = headerCount == 0
                ? ByteBuffer()
                : (headerRegion.getSlice(at: headersStart, length: body.readerIndex &- headersStart) ?? ByteBuffer())
            return Record(
                offset: baseOffset &+ Int64(offsetDelta),
                timestamp: logAppendTime ?? (baseTimestamp &+ timestampDelta),
                attributes: attributes,
                offsetDelta: offsetDelta,
                timestampDelta: timestampDelta,
                sequence: RecordBatch.incrementSequence(baseSequence, by: offsetDelta),
                key: key,
                value: value,
                headers: RecordHeaders(bytes: headerBytes, count: Int(headerCount)),
                sizeInBytes: cursor.readerIndex &- start)
        } catch let e as RecordBatchError {
            throw e
        } catch {
            throw .invalidRecord(reason: "\(error)")
        }
    }

    @inlinable
    static func readNullableBytes(_ body: inout ByteBuffer, what: StaticString) throws -> ByteBuffer? {
        let n = try body.readVarint()
        if n == -1 { return nil }
        guard n >= 0 else { throw RecordBatchError.invalidRecord(reason: "invalid \(what) length \(n)") }
        guard let slice = body.readSlice(length: Int(n)) else {
            throw RecordBatchError.invalidRecord(reason: "\(what) of \(n) bytes runs past the record")
        }
        return slice
    }
}

extension RecordBatch {
    /// An iterator over this batch's records. A compressed batch is decompressed here, once,
    /// into a buffer of at most `maxDecompressedBytes`.
    /// - Throws: `RecordBatchError` (`unsupportedCompression`, `compressionFailed`,
    ///   `recordTooLarge`, `invalidRecord` for a negative count).
    public func makeRecordIterator(maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes)
        throws(RecordBatchError) -> RecordIterator
    {
        let count = recordCount
        guard count >= 0 else { throw .invalidRecord(reason: "negative record count \(count)") }
        let attrs = attributes
        guard let codec = attrs.codec else { throw .unsupportedCompression(attrs.codecID) }
        let section = recordsSection
        if codec == .none {
            return RecordIterator(records: section, count: count, batch: self)
        }
        if count == 0 {
            return RecordIterator(records: ByteBuffer(), count: 0, batch: self)
        }
        let decompressed: ByteBuffer
        do {
            decompressed = try Compression.decompress(section, codec: codec, maxOutputBytes: maxDecompressedBytes)
        } catch {
            throw .compressionFailed("\(codec) records of batch at offset \(baseOffset): \(error)")
        }
        if decompressed.readableBytes > maxDecompressedBytes {
            throw .recordTooLarge(size: decompressed.readableBytes, limit: maxDecompressedBytes)
        }
        return RecordIterator(records: decompressed, count: count, batch: self)
    }

    /// Calls `body` for each record, in order.
    public func forEachRecord(maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes,
                              _ body: (Record) throws -> Void) throws {
        var it = try makeRecordIterator(maxDecompressedBytes: maxDecompressedBytes)
        while let r = try it.next() { try body(r) }
    }

    /// All records in an array (allocates; for tests, tools and small batches).
    public func records(maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes)
        throws(RecordBatchError) -> [Record]
    {
        var it = try makeRecordIterator(maxDecompressedBytes: maxDecompressedBytes)
        var out: [Record] = []
        out.reserveCapacity(Int(max(0, min(recordCount, 4096))))
        while let r = try it.next() { out.append(r) }
        return out
    }
}
