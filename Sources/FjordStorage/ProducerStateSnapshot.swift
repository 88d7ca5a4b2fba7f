import FjordRecords
import NIOCore

/// Producer-state snapshot files, `<log end offset as %020d>.snapshot` in the partition
/// directory (Kafka's names; our own contents). A snapshot holds the ``ProducerStateManager``
/// of the log up to (excluding) the offset in its name, so loading it and replaying the
/// batches from that offset on gives the state of the whole log.
///
/// Format (version 1), all integers big-endian:
///
/// ```
/// version          int16   1
/// crc              uint32  CRC-32C of every byte after this field
/// snapshot_offset  int64   the offset in the file name
/// producer_count   int32
/// producer_count × (sorted by producer id)
///   producer_id      int64
///   producer_epoch   int16
///   last_data_offset int64   -1 if none
///   last_timestamp   int64
///   batch_count      int8    0...5
///   batch_count × (oldest first)
///     first_sequence int32
///     last_sequence  int32
///     first_offset   int64
///     last_offset    int64
///     max_timestamp  int64
/// ```
///
/// Unlike Kafka's (one batch per producer) the whole 5-batch window is kept, so a retry is
/// still recognised after a restart. Files are written to `.tmp`, fsynced, renamed and the
/// directory fsynced. A file that does not parse exactly (CRC, version, lengths, offset) is
/// corrupt: the loader logs it, deletes it and uses an older one or the log itself.
public enum ProducerStateSnapshot {
    public static let suffix = ".snapshot"
    public static let version: Int16 = 1

    public static func fileName(_ offset: Int64) -> String { LogSegment.fileName(offset, suffix) }

    /// The offsets of the snapshot files in `dir`, ascending.
    public static func list(dir: String) throws -> [Int64] {
        try FileSystem.list(dir).compactMap { name in
            guard name.hasSuffix(suffix), name.count == 20 + suffix.count else { return nil }
            return LogSegment.baseOffset(fromFileName: name)
        }.sorted()
    }

    public static func encode(_ state: ProducerStateManager, offset: Int64) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeInteger(offset)
        body.writeInteger(Int32(state.producers.count))
        for id in state.producers.keys.sorted() {
            let e = state.producers[id]!
            body.writeInteger(e.producerId)
            body.writeInteger(e.producerEpoch)
            body.writeInteger(e.lastDataOffset)
            body.writeInteger(e.lastTimestamp)
            body.writeInteger(Int8(e.batches.count))
            for b in e.batches {
                body.writeInteger(b.firstSequence)
                body.writeInteger(b.lastSequence)
                body.writeInteger(b.firstOffset)
                body.writeInteger(b.lastOffset)
                body.writeInteger(b.maxTimestamp)
            }
        }
        var out = ByteBuffer()
        out.reserveCapacity(6 + body.readableBytes)
        out.writeInteger(version)
        out.writeInteger(CRC32C.checksum(body))
        out.writeBuffer(&body)
        return out
    }

    /// Parses a snapshot; `expectedOffset` is the offset of its file name.
    public static func decode(_ bytes: ByteBuffer, expectedOffset: Int64) throws -> ProducerStateManager {
        var buf = bytes
        guard let v: Int16 = buf.readInteger(), let crc: UInt32 = buf.readInteger() else {
            throw StorageError("producer snapshot too short (\(bytes.readableBytes) bytes)")
        }
        guard v == version else { throw StorageError("unsupported producer snapshot version \(v)") }
        let actual = CRC32C.checksum(buf)
        guard actual == crc else {
            throw StorageError("producer snapshot CRC mismatch: stored \(crc), computed \(actual)")
        }
        func read<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
            guard let x: T = buf.readInteger() else { throw StorageError("truncated producer snapshot") }
            return x
        }
        let offset: Int64 = try read()
        guard offset == expectedOffset else {
            throw StorageError("producer snapshot holds offset \(offset), its file name says \(expectedOffset)")
        }
        let count: Int32 = try read()
        guard count >= 0 else { throw StorageError("negative producer count \(count) in producer snapshot") }
        var producers: [Int64: ProducerStateEntry] = [:]
        for _ in 0..<count {
            var e = ProducerStateEntry(producerId: try read(), producerEpoch: try read())
            e.lastDataOffset = try read()
            e.lastTimestamp = try read()
            let n: Int8 = try read()
            guard e.producerId >= 0, n >= 0, Int(n) <= ProducerStateEntry.maxCachedBatches,
                  producers[e.producerId] == nil, e.lastDataOffset < offset
            else { throw StorageError("invalid producer entry \(e.producerId) in producer snapshot") }
            for _ in 0..<n {
                let b = ProducerBatchMetadata(firstSequence: try read(), lastSequence: try read(), firstOffset: try read(),
                                              lastOffset: try read(), maxTimestamp: try read())
                guard b.firstSequence >= 0, b.lastSequence >= 0, b.firstOffset <= b.lastOffset, b.lastOffset < offset else {
                    throw StorageError("invalid batch \(b) of producer \(e.producerId) in producer snapshot")
                }
                e.batches.append(b)
            }
            producers[e.producerId] = e
        }
        guard buf.readableBytes == 0 else {
            throw StorageError("\(buf.readableBytes) bytes after the last producer in producer snapshot")
        }
        return ProducerStateManager(producers: producers, mapEndOffset: offset)
    }

    /// Writes the snapshot of `state` at `offset` durably (temp file, fsync, rename, fsync of
    /// the directory).
    public static func write(_ state: ProducerStateManager, offset: Int64, dir: String) throws {
        try FileSystem.writeAtomically(dir + "/" + fileName(offset), bytes: encode(state, offset: offset))
    }

    public static func read(offset: Int64, dir: String) throws -> ProducerStateManager {
        try decode(try FileSystem.readBytes(dir + "/" + fileName(offset)), expectedOffset: offset)
    }

    public static func delete(offset: Int64, dir: String) throws {
        try FileSystem.remove(dir + "/" + fileName(offset))
    }
}

extension ProducerStateManager {
    /// Applies every batch of `segments` from offset `from` on (the segments hold the log in
    /// order), reading only batch headers, in windows of a few KiB so that large batches
    /// cost one small read each. The segments must already be recovered (well-formed).
    mutating func replay(_ segments: [LogSegment], from: Int64) throws {
        for seg in segments where seg.nextOffset > from {
            var position = 0
            if seg.baseOffset < from {
                guard let loc = try seg.translateOffset(from) else { continue }
                position = loc.position
            }
            try Self.forEachBatchHeader(in: seg, from: position) { b in
                if b.lastOffset >= from { apply(b) }
            }
        }
        mapEndOffset = max(mapEndOffset, from)
    }

    static let headerWindow = 8 * 1024

    static func forEachBatchHeader(in seg: LogSegment, from start: Int, _ body: (ProducerBatchInfo) throws -> Void) throws {
        typealias L = RecordBatch.Layout
        let size = seg.size
        var position = start
        var window = ByteBuffer()
        var windowStart = 0
        while position < size {
            if position < windowStart || position + L.headerSize > windowStart + window.readableBytes {
                guard size - position >= L.headerSize else {
                    throw StorageError("segment \(seg.log.path): \(size - position) bytes at position \(position) are not a batch")
                }
                window = try seg.log.read(at: position, count: min(headerWindow, size - position))
                windowStart = position
                guard window.readableBytes >= L.headerSize else {
                    throw StorageError("segment \(seg.log.path): short read at position \(position)")
                }
            }
            let at = window.readerIndex + position - windowStart
            let base: Int64 = window.getInteger(at: at + L.baseOffset)!
            let length: Int32 = window.getInteger(at: at + L.batchLength)!
            let attributes = RecordBatch.Attributes(rawValue: window.getInteger(at: at + L.attributes)!)
            guard length >= L.minimumBatchLength, position + Int(length) + L.logOverhead <= size else {
                throw StorageError("segment \(seg.log.path): invalid batch length \(length) at position \(position)")
            }
            try body(ProducerBatchInfo(producerId: window.getInteger(at: at + L.producerId)!,
                                       producerEpoch: window.getInteger(at: at + L.producerEpoch)!,
                                       baseSequence: window.getInteger(at: at + L.baseSequence)!,
                                       lastOffsetDelta: window.getInteger(at: at + L.lastOffsetDelta)!,
                                       firstOffset: base, maxTimestamp: window.getInteger(at: at + L.maxTimestamp)!,
                                       isControl: attributes.isControl))
            position += Int(length) + L.logOverhead
        }
    }
}
