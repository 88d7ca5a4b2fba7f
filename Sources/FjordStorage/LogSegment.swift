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

/// The position and bounds of one batch in a segment file, from its header.
public struct BatchLocation: Equatable, Sendable {
    public var position: Int
    public var baseOffset: Int64
    public var lastOffset: Int64
    public var size: Int
    /// The batch header's max timestamp (the log append time for LogAppendTime batches).
    public var maxTimestamp: Int64
}

/// One segment of a partition log: `%020d.log` with its `.index` and `.timeindex`
/// (Kafka's `LogSegment`). Not thread-safe: the owning `PartitionLog` serialises access,
/// except ``flush()``, which may run concurrently with anything else.
public final class LogSegment: @unchecked Sendable {
    public let baseOffset: Int64
    public let log: StorageFile
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

    /// Whether `offset` can be stored in this segment (its indexes keep offsets relative to
    /// the base offset as Int32).
    public func canConvertToRelativeOffset(_ offset: Int64) -> Bool {
        let relative = offset - baseOffset
        return relative >= 0 && relative <= Int64(Int32.max)
    }

    /// Appends batches (already validated, offsets assigned) whose last offset is `lastOffset`.
    ///
    /// All or nothing: the bytes are written first, then the index entries; if either step
    /// throws, the file is cut back and the index entries removed, so the segment's size,
    /// next offset and indexes still describe the same batches (no offset can be handed out
    /// twice after a failed append).
    /// `stamps`: header bytes the leader writes over the batches' own (see
    /// `StorageFile.write(_:at:stamps:)`); empty when `batches` already carries them.
    public func append(_ batches: ByteBuffer, lastOffset: Int64, maxTimestamp: Int64, offsetOfMaxTimestamp: Int64,
                       stamps: [BatchHeaderStamp] = []) throws {
        let n = batches.readableBytes
        guard n > 0 else { return }
        guard Int64(size) + Int64(n) <= Int64(Int32.max) else {
            throw StorageError("segment \(log.path) would exceed 2 GiB")
        }
        guard canConvertToRelativeOffset(lastOffset) else {
            throw StorageError("segment \(log.path): offset \(lastOffset) is out of range for base offset \(baseOffset)")
        }
        let position = size
        let newMax = maxTimestamp > maxTimestampSoFar ? (maxTimestamp, offsetOfMaxTimestamp) : (maxTimestampSoFar, offsetOfMaxTimestampSoFar)
        let addIndexEntry = bytesSinceLastIndexEntry > indexIntervalBytes
        let (offsetEntries, timeEntries) = (offsetIndex.entries, timeIndex.entries)
        do {
            try log.write(batches, at: position, stamps: stamps)
            if addIndexEntry {
                try offsetIndex.append(offset: lastOffset, position: position)
                try timeIndex.maybeAppend(timestamp: newMax.0, offset: newMax.1)
            }
        } catch {
            offsetIndex.truncate(toEntries: offsetEntries)
            timeIndex.truncate(toEntries: timeEntries)
            // Best effort: if even this fails, the stray bytes lie past `size` and the next
            // append overwrites them.
            try? log.truncate(to: position)
            throw error
        }
        size += n
        nextOffset = lastOffset + 1
        (maxTimestampSoFar, offsetOfMaxTimestampSoFar) = newMax
        if rollingBasedTimestamp < 0 { rollingBasedTimestamp = maxTimestamp }
        bytesSinceLastIndexEntry = addIndexEntry ? n : bytesSinceLastIndexEntry + n
    }

    /// Reads the 61-byte header of the batch at `position` (nil at end of data).
    func batchHeader(at position: Int) throws -> BatchLocation? {
        typealias L = RecordBatch.Layout
        guard position + L.headerSize <= size else { return nil }
        let h = try log.read(at: position, count: L.headerSize)
        guard h.readableBytes == L.headerSize,
              let base = h.getInteger(at: h.readerIndex + L.baseOffset, as: Int64.self),
              let len = h.getInteger(at: h.readerIndex + L.batchLength, as: Int32.self),
              let delta = h.getInteger(at: h.readerIndex + L.lastOffsetDelta, as: Int32.self),
              let maxTs = h.getInteger(at: h.readerIndex + L.maxTimestamp, as: Int64.self),
              len >= L.minimumBatchLength
        else { return nil }
        let total = Int(len) + L.logOverhead
        guard position + total <= size else { return nil }
        return BatchLocation(position: position, baseOffset: base, lastOffset: base + Int64(delta), size: total, maxTimestamp: maxTs)
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
        while let b = try batchHeader(at: pos) {
            if b.maxTimestamp >= timestamp {
                // Find the exact record inside the batch.
                let batch = try RecordBatch(try log.read(at: b.position, count: b.size))
                let logAppend = batch.timestampType == .logAppendTime
                for record in try batch.records() {
                    let ts = logAppend ? batch.maxTimestamp : record.timestamp
                    if ts >= timestamp && record.offset >= logStartOffset { return (record.offset, ts) }
                }
            }
            pos += b.size
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
            if batch.lastOffset < batch.baseOffset || (position > 0 && batch.baseOffset < nextOffset)
                || !canConvertToRelativeOffset(batch.lastOffset) {
                problem = "invalid offsets at position \(position) (batch \(batch.baseOffset)...\(batch.lastOffset) after \(nextOffset - 1))"
                return false
            }
            if bytesSinceLastIndexEntry > indexIntervalBytes {
                // Rebuilding what the appends wrote: the slot reserved for the roll may be
                // in use if the segment was rolled with a larger index than it has now.
                try offsetIndex.append(offset: batch.lastOffset, position: position)
                try timeIndex.maybeAppend(timestamp: maxTimestampSoFar, offset: offsetOfMaxTimestampSoFar, skipFullCheck: true)
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
        try rescanFromLastIndexEntry()
    }

    /// Restores next offset, max timestamp, rolling timestamp and the bytes since the last
    /// index entry from the indexes plus a header-only scan of the batches after the last
    /// offset index entry. Throws if those headers do not end exactly at `size`.
    private func rescanFromLastIndexEntry() throws {
        nextOffset = baseOffset
        maxTimestampSoFar = -1
        offsetOfMaxTimestampSoFar = -1
        if let last = timeIndex.lastEntry {
            maxTimestampSoFar = last.timestamp
            offsetOfMaxTimestampSoFar = last.offset
        }
        rollingBasedTimestamp = try batchHeader(at: 0)?.maxTimestamp ?? -1
        let start = offsetIndex.entries > 0 ? offsetIndex.entry(offsetIndex.entries - 1).position : 0
        var pos = start
        while let b = try batchHeader(at: pos) {
            if b.maxTimestamp > maxTimestampSoFar {
                maxTimestampSoFar = b.maxTimestamp
                offsetOfMaxTimestampSoFar = b.lastOffset
            }
            nextOffset = b.lastOffset + 1
            pos += b.size
        }
        guard pos == size else { throw StorageError("segment \(log.path) has unreadable bytes at \(pos)") }
        bytesSinceLastIndexEntry = size - start
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
        try rescanFromLastIndexEntry()
        return removed
    }

    /// fsyncs the log data and the indexes. Safe to call from any thread while the owner
    /// appends, rolls, trims or truncates: it only uses file descriptors, which stay valid
    /// (and the same) for the segment's lifetime.
    public func flush() throws {
        try log.sync()
        try offsetIndex.flush()
        try timeIndex.flush()
    }

    /// The segment stops being the active one: the time index gets its final entry (in the
    /// slot reserved for it) and the indexes shrink to their data.
    public func onBecomeInactive() throws {
        try timeIndex.maybeAppend(timestamp: maxTimestampSoFar, offset: offsetOfMaxTimestampSoFar, skipFullCheck: true)
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
