import FjordRecords
import NIOCore

/// Where a read's bytes are: a range of a segment file, ready for `sendfile`.
public struct FileSlice: Sendable {
    public let file: StorageFile
    public let position: Int
    public let length: Int

    /// Reads the bytes (for tools, tests and down-conversion; the server sends with sendfile).
    public func read() throws -> ByteBuffer {
        try file.read(at: position, count: length)
    }
}

/// The position and bounds of one batch in a segment file.
public struct BatchLocation: Equatable, Sendable {
    public var position: Int
    public var baseOffset: Int64
    public var lastOffset: Int64
    public var size: Int
}

/// One segment of a partition log: `%020d.log` with its `.index` and `.timeindex`
/// (Kafka's `LogSegment`). Not thread-safe: the owning `PartitionLog` serialises access.
public final class LogSegment: @unchecked Sendable {
    public let baseOffset: Int64
    public private(set) var log: StorageFile
    public let offsetIndex: OffsetIndex
    public let timeIndex: TimeIndex
    /// Bytes of log data (the write position).
    public private(set) var size: Int
    /// The offset after the last batch appended (baseOffset while empty).
    public private(set) var nextOffset: Int64
    public private(set) var maxTimestampSoFar: Int64 = -1
    public private(set) var offsetOfMaxTimestampSoFar: Int64 = -1
    /// The first batch's max timestamp: what `segment.ms` rolls by (-1 while empty).
    public private(set) var rollingBasedTimestamp: Int64 = -1
    let indexIntervalBytes: Int
    var bytesSinceLastIndexEntry = 0
    /// Wall-clock creation time in ms, for `segment.ms` when batches carry no timestamp.
    public let createdMs: Int64

    public static func fileName(_ baseOffset: Int64, _ suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// Parses a segment base offset from a file name like `00000000000000000042.log`.
    public static func baseOffset(fromFileName name: String) -> Int64? {
        guard let dot = name.firstIndex(of: "."), name.distance(from: name.startIndex, to: dot) == 20 else { return nil }
        return Int64(name[..<dot])
    }

    /// Opens (or creates) the segment with base offset `baseOffset` in `dir`. The data is
    /// trusted only after `recover()` or when opened below the recovery point with sane indexes.
    public init(dir: String, baseOffset: Int64, indexIntervalBytes: Int, maxIndexSize: Int, nowMs: Int64) throws {
        self.baseOffset = baseOffset
        let prefix = dir + "/" + Self.fileName(baseOffset, "")
        self.log = try StorageFile(path: prefix + ".log", create: true)
        self.offsetIndex = try OffsetIndex(path: prefix + ".index", baseOffset: baseOffset, maxIndexSize: maxIndexSize)
        self.timeIndex = try TimeIndex(path: prefix + ".timeindex", baseOffset: baseOffset, maxIndexSize: maxIndexSize)
        self.size = try log.size()
        self.nextOffset = baseOffset
        self.indexIntervalBytes = indexIntervalBytes
        self.createdMs = nowMs
    }

    public var isEmpty: Bool { size == 0 }

    /// Appends batches (already validated, offsets assigned) whose last offset is `lastOffset`.
    public func append(_ batches: ByteBuffer, lastOffset: Int64, maxTimestamp: Int64, offsetOfMaxTimestamp: Int64) throws {
        let n = batches.readableBytes
        guard n > 0 else { return }
        guard Int64(size) + Int64(n) <= Int64(Int32.max) else {
            throw StorageError("segment \(log.path) would exceed 2 GiB")
        }
        let position = size
        try log.write(batches, at: position)
        size += n
        if rollingBasedTimestamp < 0 { rollingBasedTimestamp = maxTimestamp }
        if maxTimestamp > maxTimestampSoFar {
            maxTimestampSoFar = maxTimestamp
            offsetOfMaxTimestampSoFar = offsetOfMaxTimestamp
        }
        if bytesSinceLastIndexEntry > indexIntervalBytes {
            try offsetIndex.append(offset: lastOffset, position: position)
            try timeIndex.maybeAppend(timestamp: maxTimestampSoFar, offset: offsetOfMaxTimestampSoFar)
            bytesSinceLastIndexEntry = 0
        }
        bytesSinceLastIndexEntry += n
        nextOffset = lastOffset + 1
    }

    /// Reads the 61-byte header of the batch at `position` (nil at end of data).
    func batchHeader(at position: Int) throws -> BatchLocation? {
        guard position + RecordBatch.Layout.headerSize <= size else { return nil }
        let h = try log.read(at: position, count: RecordBatch.Layout.headerSize)
        guard h.readableBytes == RecordBatch.Layout.headerSize,
              let base = h.getInteger(at: 0, as: Int64.self),
              let len = h.getInteger(at: RecordBatch.Layout.batchLength, as: Int32.self),
              let delta = h.getInteger(at: RecordBatch.Layout.lastOffsetDelta, as: Int32.self),
              len >= RecordBatch.Layout.minimumBatchLength
        else { return nil }
        let total = Int(len) + RecordBatch.Layout.logOverhead
        guard position + total <= size else { return nil }
        return BatchLocation(position: position, baseOffset: base, lastOffset: base + Int64(delta), size: total)
    }

    /// The first batch whose last offset is ≥ `offset`, searching from the index's hint.
    public func translateOffset(_ offset: Int64, startingAt minPosition: Int = 0) throws -> BatchLocation? {
        var pos = max(minPosition, offsetIndex.lookup(offset).position)
        while let b = try batchHeader(at: pos) {
            if b.lastOffset >= offset { return b }
            pos += b.size
        }
        return nil
    }

    /// Up to `maxBytes` of log data from the batch holding `startOffset`, not past `maxPosition`.
    /// With `minOneBatch`, at least that whole batch even if larger than `maxBytes`.
    public func read(startOffset: Int64, maxBytes: Int, maxPosition: Int? = nil, minOneBatch: Bool) throws -> (slice: FileSlice, firstBatch: BatchLocation)? {
        guard let first = try translateOffset(startOffset) else { return nil }
        let limit = min(maxPosition ?? size, size)
        guard first.position < limit else { return nil }
        let wanted = minOneBatch ? max(maxBytes, first.size) : maxBytes
        let length = min(limit - first.position, wanted)
        guard length > 0 else { return nil }
        return (FileSlice(file: log, position: first.position, length: length), first)
    }

    /// The first offset whose batch max timestamp is ≥ `timestamp` (ListOffsets by time),
    /// with that batch's max timestamp; nil if none in this segment.
    public func findOffset(byTimestamp timestamp: Int64, startingAfter logStartOffset: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        guard maxTimestampSoFar >= timestamp else { return nil }
        let hint = timeIndex.lookup(timestamp)
        let startOffset = max(hint.offset, logStartOffset)
        var pos = try translateOffset(startOffset)?.position ?? size
        while pos < size {
            let raw = try log.read(at: pos, count: RecordBatch.Layout.headerSize)
            guard raw.readableBytes == RecordBatch.Layout.headerSize,
                  let len = raw.getInteger(at: RecordBatch.Layout.batchLength, as: Int32.self),
                  len >= RecordBatch.Layout.minimumBatchLength
            else { break }
            let total = Int(len) + RecordBatch.Layout.logOverhead
            let batchMax = raw.getInteger(at: RecordBatch.Layout.maxTimestamp, as: Int64.self) ?? -1
            if batchMax >= timestamp {
                // Find the exact record inside the batch.
                let bytes = try log.read(at: pos, count: total)
                let batch = try RecordBatch(bytes)
                let logAppend = batch.timestampType == .logAppendTime
                for record in try batch.records() {
                    let off = record.offset
                    let ts = logAppend ? batch.maxTimestamp : record.timestamp
                    if ts >= timestamp && off >= logStartOffset { return (off, ts) }
                }
            }
            pos += total
        }
        return nil
    }

    /// Rebuilds the indexes and max timestamp by scanning every batch, validating CRCs;
    /// truncates a torn or corrupt tail. Returns the number of bytes cut off and the first
    /// problem found (for the log line). `onBatch` sees each valid batch (for the epoch cache
    /// and producer state).
    public func recover(maxBatchSize: Int, onBatch: (RecordBatch) throws -> Void = { _ in }) throws -> (truncatedBytes: Int, problem: String?) {
        offsetIndex.reset()
        timeIndex.reset()
        maxTimestampSoFar = -1
        offsetOfMaxTimestampSoFar = -1
        rollingBasedTimestamp = -1
        bytesSinceLastIndexEntry = 0
        nextOffset = baseOffset
        let fileSize = try log.size()
        var problem: String? = nil
        let (validBytes, stop) = try SegmentScanner.forEachBatch(in: log, size: fileSize, maxBatchSize: maxBatchSize) { batch, position in
            if batch.lastOffset < batch.baseOffset || (position > 0 && batch.baseOffset < nextOffset) {
                problem = "out-of-order offsets at position \(position) (batch \(batch.baseOffset) after \(nextOffset - 1))"
                return false
            }
            if bytesSinceLastIndexEntry > indexIntervalBytes {
                try offsetIndex.append(offset: batch.lastOffset, position: position)
                try timeIndex.maybeAppend(timestamp: maxTimestampSoFar, offset: offsetOfMaxTimestampSoFar)
                bytesSinceLastIndexEntry = 0
            }
            bytesSinceLastIndexEntry += batch.sizeInBytes
            if rollingBasedTimestamp < 0 { rollingBasedTimestamp = batch.maxTimestamp }
            if batch.maxTimestamp > maxTimestampSoFar {
                maxTimestampSoFar = batch.maxTimestamp
                offsetOfMaxTimestampSoFar = batch.lastOffset
            }
            nextOffset = batch.lastOffset + 1
            try onBatch(batch)
            return true
        }
        if case let .problem(p) = stop, problem == nil { problem = p }
        size = validBytes
        let cut = fileSize - validBytes
        if cut > 0 { try log.truncate(to: validBytes) }
        return (cut, problem)
    }

    /// Restores in-memory state of a segment known to be clean (below the recovery point),
    /// from its last index entries and the batches after the last offset index entry.
    public func loadClean(maxBatchSize: Int) throws {
        try offsetIndex.sanityCheck(logSize: size)
        try timeIndex.sanityCheck()
        var pos = offsetIndex.entries > 0 ? offsetIndex.entry(offsetIndex.entries - 1).position : 0
        if let last = timeIndex.lastEntry {
            maxTimestampSoFar = last.timestamp
            offsetOfMaxTimestampSoFar = last.offset
        }
        // rollingBasedTimestamp: the first batch's max timestamp.
        if size >= RecordBatch.Layout.headerSize {
            let h = try log.read(at: 0, count: RecordBatch.Layout.headerSize)
            rollingBasedTimestamp = h.getInteger(at: RecordBatch.Layout.maxTimestamp, as: Int64.self) ?? -1
        }
        while let b = try batchHeader(at: pos) {
            let h = try log.read(at: b.position + RecordBatch.Layout.maxTimestamp, count: 8)
            let ts = h.getInteger(at: h.readerIndex, as: Int64.self) ?? -1
            if ts > maxTimestampSoFar {
                maxTimestampSoFar = ts
                offsetOfMaxTimestampSoFar = b.lastOffset
            }
            nextOffset = b.lastOffset + 1
            pos += b.size
        }
        guard pos == size else { throw StorageError("segment \(log.path) has unreadable bytes at \(pos)") }
        bytesSinceLastIndexEntry = size - (offsetIndex.entries > 0 ? offsetIndex.entry(offsetIndex.entries - 1).position : 0)
    }

    /// Removes every batch with offsets ≥ `offset` (whole batches: the batch holding
    /// `offset` goes too). Returns the bytes removed.
    @discardableResult
    public func truncate(to offset: Int64) throws -> Int {
        guard let b = try translateOffset(offset) else { return 0 }
        let removed = size - b.position
        offsetIndex.truncate(fromOffset: offset)
        timeIndex.truncate(fromOffset: offset)
        try log.truncate(to: b.position)
        size = b.position
        // Recompute nextOffset / max timestamp from what remains.
        nextOffset = baseOffset
        maxTimestampSoFar = -1
        offsetOfMaxTimestampSoFar = -1
        if let last = timeIndex.lastEntry {
            maxTimestampSoFar = last.timestamp
            offsetOfMaxTimestampSoFar = last.offset
        }
        var pos = offsetIndex.entries > 0 ? offsetIndex.entry(offsetIndex.entries - 1).position : 0
        while let h = try batchHeader(at: pos) {
            let t = try log.read(at: h.position + RecordBatch.Layout.maxTimestamp, count: 8)
            let ts = t.getInteger(at: t.readerIndex, as: Int64.self) ?? -1
            if ts > maxTimestampSoFar { maxTimestampSoFar = ts; offsetOfMaxTimestampSoFar = h.lastOffset }
            nextOffset = h.lastOffset + 1
            pos += h.size
        }
        if size == 0 { rollingBasedTimestamp = -1 }
        bytesSinceLastIndexEntry = size - (offsetIndex.entries > 0 ? offsetIndex.entry(offsetIndex.entries - 1).position : 0)
        return removed
    }

    /// fsyncs the log data and the indexes.
    public func flush() throws {
        try log.sync()
        try offsetIndex.flush()
        try timeIndex.flush()
    }

    /// The segment stops being the active one: indexes shrink to their data.
    public func onBecomeInactive() throws {
        try timeIndex.maybeAppend(timestamp: maxTimestampSoFar, offset: offsetOfMaxTimestampSoFar)
        try offsetIndex.trim()
        try timeIndex.trim()
    }

    /// Largest timestamp in the segment, for `retention.ms`.
    public var largestTimestamp: Int64 { maxTimestampSoFar >= 0 ? maxTimestampSoFar : createdMs }

    /// Renames all three files by appending (or replacing) a suffix such as `.deleted`.
    public func changeSuffix(from old: String, to new: String) throws {
        for path in [log.path, offsetIndex.path, timeIndex.path] {
            let target = path.hasSuffix(old) ? String(path.dropLast(old.count)) + new : path + new
            try FileSystem.rename(path, target)
        }
    }

    public var files: [String] { [log.path, offsetIndex.path, timeIndex.path] }
}
