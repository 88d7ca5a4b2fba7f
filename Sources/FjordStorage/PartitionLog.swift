import FjordProtocol
import FjordRecords
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Why an append was refused, with the Kafka error code the produce response carries.
public struct LogAppendError: Error, CustomStringConvertible, Sendable {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }
}

/// The outcome of an append.
public struct LogAppendInfo: Sendable, Equatable {
    public var firstOffset: Int64
    public var lastOffset: Int64
    public var maxTimestamp: Int64
    public var offsetOfMaxTimestamp: Int64
    /// The broker's append time for LogAppendTime topics, else -1.
    public var logAppendTime: Int64
    public var logStartOffset: Int64
    public var batchCount: Int
    public var recordCount: Int
    public var validBytes: Int
}

/// A read's result: where the bytes are, plus the offsets a fetch response reports.
public struct LogReadInfo: Sendable {
    /// nil when there is nothing to return at this offset (yet).
    public var slice: FileSlice?
    public var firstBatchBaseOffset: Int64?
    public var highWatermark: Int64
    public var logStartOffset: Int64
    public var logEndOffset: Int64
}

/// A partition's log: an ordered set of segments in `<log.dir>/<topic>-<partition>/`
/// (Kafka's `UnifiedLog` + `LocalLog`). Thread-safe: appends, reads and maintenance take an
/// internal lock; fsyncs for `flush(upTo:)` run outside it so appends continue meanwhile.
public final class PartitionLog: @unchecked Sendable {
    public let dir: String
    public let topicPartition: TopicPartition
    private let lock = NIOLock()
    private var _config: LogConfig
    private var segments: [LogSegment]
    private var _logStartOffset: Int64
    private var _recoveryPoint: Int64
    private var _highWatermark: Int64 = 0
    private var unflushedMessages: Int64 = 0
    private var lastFlushMs: Int64
    private var flushing = false
    public let leaderEpochCache: LeaderEpochCache
    let logger: Logger

    // MARK: opening

    /// Opens (creating if needed) the log in `dir`, recovering after an unclean shutdown:
    /// every segment from the recovery point on is scanned, a torn or corrupt tail is cut
    /// off (and logged with its offset and position), indexes are rebuilt.
    public init(dir: String, topicPartition: TopicPartition, config: LogConfig, recoveryPoint: Int64 = 0,
                logStartOffset: Int64 = 0, hadCleanShutdown: Bool = false, nowMs: Int64,
                logger: Logger = Logger(label: "fjord.log")) throws {
        self.dir = dir
        self.topicPartition = topicPartition
        self._config = config
        self.logger = logger
        self.lastFlushMs = nowMs
        try FileSystem.createDirectory(dir)
        self.leaderEpochCache = try LeaderEpochCache(dir: dir)
        self.segments = []
        self._logStartOffset = logStartOffset
        self._recoveryPoint = recoveryPoint
        try load(hadCleanShutdown: hadCleanShutdown, nowMs: nowMs)
    }

    private func load(hadCleanShutdown: Bool, nowMs: Int64) throws {
        // Finish or undo interrupted operations first (see LogCleaner for the swap protocol).
        var bases: Set<Int64> = []
        var forceRecovery: Set<Int64> = []
        for name in try FileSystem.list(dir) {
            let path = dir + "/" + name
            if name.hasSuffix(".deleted") || name.hasSuffix(".cleaned") || name.hasSuffix(".tmp") {
                try FileSystem.remove(path)
            } else if name.hasSuffix(".swap") {
                // A `.log.swap` is a cleaned segment that was fsynced before this rename: the
                // cleaner had decided to swap it in. Finish the swap; its indexes are rebuilt.
                let final = String(name.dropLast(".swap".count))
                if final.hasSuffix(".log"), let b = LogSegment.baseOffset(fromFileName: final) {
                    try FileSystem.remove(dir + "/" + LogSegment.fileName(b, ".index"))
                    try FileSystem.remove(dir + "/" + LogSegment.fileName(b, ".timeindex"))
                    try FileSystem.rename(path, dir + "/" + final)
                    logger.info("completed interrupted segment swap", metadata: ["file": "\(final)", "partition": "\(topicPartition)"])
                    bases.insert(b)
                    forceRecovery.insert(b)
                } else {
                    try FileSystem.remove(path)
                }
            } else if name.hasSuffix(".log"), let b = LogSegment.baseOffset(fromFileName: name) {
                bases.insert(b)
            }
        }
        // Index files without a log are orphans.
        for name in try FileSystem.list(dir) where name.hasSuffix(".index") || name.hasSuffix(".timeindex") {
            if let b = LogSegment.baseOffset(fromFileName: name), !bases.contains(b) {
                try FileSystem.remove(dir + "/" + name)
            }
        }
        let sorted = bases.sorted()
        for base in sorted {
            // A non-empty log without its offset index (deleted, or a finished swap): rebuild.
            if !FileSystem.exists(dir + "/" + LogSegment.fileName(base, ".index")) { forceRecovery.insert(base) }
            let seg = try LogSegment(dir: dir, baseOffset: base, indexIntervalBytes: _config.indexIntervalBytes,
                                     maxIndexSize: _config.segmentIndexBytes, nowMs: nowMs)
            segments.append(seg)
        }
        if segments.isEmpty {
            segments.append(try newSegment(base: _logStartOffset, nowMs: nowMs))
            _recoveryPoint = _logStartOffset
        }
        // Recover what may be unflushed: after an unclean shutdown, every segment holding
        // offsets ≥ the recovery point; after a clean one, only check the indexes.
        var needsRecovery = false
        var truncateAfter: Int? = nil
        for (i, seg) in segments.enumerated() {
            let nextBase = i + 1 < segments.count ? segments[i + 1].baseOffset : Int64.max
            let unflushed = (!hadCleanShutdown && nextBase > _recoveryPoint) || forceRecovery.contains(seg.baseOffset)
            if !unflushed {
                do {
                    try seg.loadClean(maxBatchSize: Int(Int32.max))
                    continue
                } catch {
                    logger.warning("rebuilding indexes", metadata: ["segment": "\(seg.log.path)", "reason": "\(error)"])
                }
            }
            needsRecovery = true
            let r = try seg.recover(maxBatchSize: Int(Int32.max)) { batch in
                if batch.partitionLeaderEpoch >= 0 {
                    try self.leaderEpochCache.assign(epoch: batch.partitionLeaderEpoch, startOffset: batch.baseOffset)
                }
            }
            if r.truncatedBytes > 0 {
                logger.warning("truncated invalid tail of segment", metadata: [
                    "partition": "\(topicPartition)", "segment": "\(seg.log.path)",
                    "validBytes": "\(seg.size)", "truncatedBytes": "\(r.truncatedBytes)",
                    "nextOffset": "\(seg.nextOffset)", "reason": "\(r.problem ?? "")",
                ])
                truncateAfter = i
                break
            }
        }
        if let i = truncateAfter, i + 1 < segments.count {
            for seg in segments[(i + 1)...] {
                logger.warning("deleting segment after corruption", metadata: ["segment": "\(seg.log.path)"])
                for f in seg.files { try FileSystem.remove(f) }
            }
            segments.removeSubrange((i + 1)...)
        }
        // The active segment keeps preallocated indexes; the others are trimmed.
        for seg in segments.dropLast() { try seg.offsetIndex.trim(); try seg.timeIndex.trim() }
        try segments.last!.offsetIndex.resize(maxIndexSize: _config.segmentIndexBytes)
        try segments.last!.timeIndex.resize(maxIndexSize: _config.segmentIndexBytes)
        let leo = segments.last!.nextOffset
        // Empty trailing segments are fine; an empty active segment's next offset is its base.
        _logStartOffset = max(_logStartOffset, segments.first!.baseOffset)
        if _logStartOffset > leo { _logStartOffset = leo }
        try leaderEpochCache.truncate(fromEnd: leo)
        try leaderEpochCache.truncate(fromStart: _logStartOffset)
        _recoveryPoint = needsRecovery ? leo : min(max(_recoveryPoint, _logStartOffset), leo)
        if needsRecovery { try flushAllLocked() }
        _highWatermark = min(_highWatermark, leo)
    }

    private func newSegment(base: Int64, nowMs: Int64) throws -> LogSegment {
        let seg = try LogSegment(dir: dir, baseOffset: base, indexIntervalBytes: _config.indexIntervalBytes,
                                 maxIndexSize: _config.segmentIndexBytes, nowMs: nowMs)
        if seg.size > 0 { try seg.log.truncate(to: 0) }
        try FileSystem.syncDirectory(dir)
        return seg
    }

    // MARK: state

    public var config: LogConfig {
        get { lock.withLock { _config } }
        set { lock.withLock { _config = newValue } }
    }

    public var logStartOffset: Int64 { lock.withLock { _logStartOffset } }
    public var logEndOffset: Int64 { lock.withLock { segments.last!.nextOffset } }
    public var recoveryPoint: Int64 { lock.withLock { _recoveryPoint } }
    public var segmentCount: Int { lock.withLock { segments.count } }
    public var segmentBaseOffsets: [Int64] { lock.withLock { segments.map(\.baseOffset) } }
    public var sizeInBytes: Int { lock.withLock { segments.reduce(0) { $0 + $1.size } } }

    /// The high watermark: never above the log end offset, never below the log start.
    public var highWatermark: Int64 {
        get { lock.withLock { _highWatermark } }
        set { lock.withLock { _highWatermark = min(max(newValue, _logStartOffset), segments.last!.nextOffset) } }
    }

    /// The high watermark, for code already holding the lock (`withSegments`).
    var highWatermarkUnlocked: Int64 { _highWatermark }

    // MARK: append

    /// Validates producer batches and appends them with offsets assigned from the log end
    /// (Kafka's leader append): CRC and structure checked once, `max.message.bytes`
    /// enforced, the leader epoch stamped, LogAppendTime applied when configured.
    @discardableResult
    public func appendAsLeader(_ records: ByteBuffer, leaderEpoch: Int32, nowMs: Int64) throws -> LogAppendInfo {
        try lock.withLock {
            let cfg = _config
            var buf = records
            if buf.readableBytes > cfg.segmentBytes {
                throw LogAppendError(.recordListTooLarge, "\(buf.readableBytes) bytes exceed segment.bytes \(cfg.segmentBytes)")
            }
            let plan = try validate(buf, cfg: cfg, assignFrom: segments.last!.nextOffset, nowMs: nowMs)
            // Rewrite headers in place (base offset, leader epoch; LogAppendTime re-CRCs).
            for b in plan.batches {
                buf.setInteger(b.assignedBase, at: buf.readerIndex + b.position)
                buf.setInteger(leaderEpoch, at: buf.readerIndex + b.position + RecordBatch.Layout.partitionLeaderEpoch)
                if cfg.messageTimestampType == .logAppendTime {
                    var batch = try RecordBatch(buf.getSlice(at: buf.readerIndex + b.position, length: b.size)!)
                    batch.setLogAppendTime(nowMs)
                    buf.setBuffer(batch.buffer, at: buf.readerIndex + b.position)
                }
            }
            var info = plan.info
            if cfg.messageTimestampType == .logAppendTime {
                info.maxTimestamp = nowMs
                info.logAppendTime = nowMs
                info.offsetOfMaxTimestamp = info.lastOffset
            }
            if leaderEpochCache.latestEpoch.map({ leaderEpoch > $0 }) ?? true {
                try leaderEpochCache.assign(epoch: leaderEpoch, startOffset: info.firstOffset)
            }
            try appendLocked(buf, info: info, nowMs: nowMs)
            info.logStartOffset = _logStartOffset
            return info
        }
    }

    /// Appends batches replicated from the leader, keeping their offsets (which must start at
    /// the log end offset) and epochs.
    @discardableResult
    public func appendAsFollower(_ records: ByteBuffer, nowMs: Int64) throws -> LogAppendInfo {
        try lock.withLock {
            let plan = try validate(records, cfg: _config, assignFrom: nil, nowMs: nowMs)
            guard plan.info.batchCount > 0 else { return plan.info }
            let leo = segments.last!.nextOffset
            guard plan.info.firstOffset >= leo else {
                throw LogAppendError(.unknownServerError, "out of order offsets: first offset \(plan.info.firstOffset) is below the log end offset \(leo)")
            }
            for b in plan.batches where b.leaderEpoch >= 0 {
                if leaderEpochCache.latestEpoch.map({ b.leaderEpoch > $0 }) ?? true {
                    try leaderEpochCache.assign(epoch: b.leaderEpoch, startOffset: b.assignedBase)
                }
            }
            var info = plan.info
            try appendLocked(records, info: info, nowMs: nowMs)
            info.logStartOffset = _logStartOffset
            return info
        }
    }

    private struct PlannedBatch {
        var position: Int
        var size: Int
        var assignedBase: Int64
        var leaderEpoch: Int32
    }

    /// Checks every batch (framing, magic, CRC, size, records) and computes offsets.
    private func validate(_ records: ByteBuffer, cfg: LogConfig, assignFrom: Int64?, nowMs: Int64) throws -> (batches: [PlannedBatch], info: LogAppendInfo) {
        var batches: [PlannedBatch] = []
        var next = assignFrom ?? -1
        var first: Int64 = -1, last: Int64 = -1
        var maxTs: Int64 = -1, offsetOfMaxTs: Int64 = -1
        var recordCount = 0
        var prevLast: Int64 = -1
        for item in RecordBatchReader(records, maxBatchSize: Int(Int32.max)) {
            switch item {
            case let .batch(batch, position):
                if batch.sizeInBytes > cfg.maxMessageBytes {
                    throw LogAppendError(.messageTooLarge, "batch of \(batch.sizeInBytes) bytes exceeds max.message.bytes \(cfg.maxMessageBytes)")
                }
                do { try batch.validate() } catch {
                    throw LogAppendError(.corruptMessage, "batch at position \(position): \(error)")
                }
                let count = Int(batch.recordCount)
                if assignFrom != nil && (count <= 0 || Int(batch.lastOffsetDelta) != count - 1) {
                    throw LogAppendError(.invalidRecord, "batch has \(count) records but last offset delta \(batch.lastOffsetDelta)")
                }
                // Walk the records once (decompressing if needed) to check their structure,
                // offset deltas and, on compacted topics, keys. No per-record allocation.
                var expectedDelta: Int32 = 0
                var batchMax: Int64 = -1
                do {
                    var it = try batch.makeRecordIterator(maxDecompressedBytes: cfg.maxDecompressedBytes)
                    while let r = try it.next() {
                        if assignFrom != nil && r.offsetDelta != expectedDelta {
                            throw LogAppendError(.invalidRecord, "record offset delta \(r.offsetDelta), expected \(expectedDelta)")
                        }
                        if cfg.isCompacted && !batch.isControl && r.key == nil {
                            throw LogAppendError(.invalidRecord, "Compacted topic cannot accept message without key in topic partition \(topicPartition).")
                        }
                        if r.timestamp > batchMax { batchMax = r.timestamp }
                        expectedDelta &+= 1
                    }
                } catch let e as LogAppendError {
                    throw e
                } catch {
                    throw LogAppendError(.corruptMessage, "batch at position \(position): \(error)")
                }
                if assignFrom != nil && Int(expectedDelta) != count {
                    throw LogAppendError(.invalidRecord, "batch declares \(count) records but holds \(expectedDelta)")
                }
                let base: Int64
                if assignFrom != nil {
                    base = next
                    next += Int64(batch.lastOffsetDelta) + 1
                } else {
                    base = batch.baseOffset
                    if base <= prevLast {
                        throw LogAppendError(.unknownServerError, "out of order offsets in replicated batches at \(base)")
                    }
                }
                let lastOff = base + Int64(batch.lastOffsetDelta)
                prevLast = lastOff
                if first < 0 { first = base }
                last = lastOff
                let ts = batch.timestampType == .logAppendTime ? batch.maxTimestamp : max(batch.maxTimestamp, batchMax)
                if ts > maxTs { maxTs = ts; offsetOfMaxTs = lastOff }
                recordCount += count
                batches.append(PlannedBatch(position: position, size: batch.sizeInBytes, assignedBase: base, leaderEpoch: batch.partitionLeaderEpoch))
            case let .truncated(position, available, _):
                throw LogAppendError(.corruptMessage, "partial batch at position \(position) (\(available) bytes)")
            case let .corrupt(position, error):
                if case .unsupportedMagic = error {
                    throw LogAppendError(.unsupportedForMessageFormat, "batch at position \(position): \(error)")
                }
                if case .recordTooLarge = error {
                    throw LogAppendError(.messageTooLarge, "batch at position \(position): \(error)")
                }
                throw LogAppendError(.corruptMessage, "batch at position \(position): \(error)")
            }
        }
        if batches.isEmpty && records.readableBytes > 0 {
            throw LogAppendError(.corruptMessage, "no complete batch in \(records.readableBytes) bytes")
        }
        let info = LogAppendInfo(firstOffset: first, lastOffset: last, maxTimestamp: maxTs, offsetOfMaxTimestamp: offsetOfMaxTs,
                                 logAppendTime: -1, logStartOffset: _logStartOffset, batchCount: batches.count,
                                 recordCount: recordCount, validBytes: records.readableBytes)
        return (batches, info)
    }

    private func appendLocked(_ records: ByteBuffer, info: LogAppendInfo, nowMs: Int64) throws {
        guard info.batchCount > 0 else { return }
        var seg = segments.last!
        if shouldRoll(seg, incomingBytes: records.readableBytes, maxTimestamp: info.maxTimestamp, lastOffset: info.lastOffset, nowMs: nowMs) {
            seg = try rollLocked(base: info.firstOffset, nowMs: nowMs)
        }
        try seg.append(records, lastOffset: info.lastOffset, maxTimestamp: info.maxTimestamp, offsetOfMaxTimestamp: info.offsetOfMaxTimestamp)
        unflushedMessages += Int64(info.recordCount)
        if unflushedMessages >= _config.flushMessages {
            try flushAllLocked()
        }
    }

    private func shouldRoll(_ seg: LogSegment, incomingBytes: Int, maxTimestamp: Int64, lastOffset: Int64, nowMs: Int64) -> Bool {
        if seg.isEmpty { return false }
        if seg.size > _config.segmentBytes - incomingBytes { return true }
        if seg.offsetIndex.isFull || seg.timeIndex.isFull { return true }
        if lastOffset - seg.baseOffset > Int64(Int32.max) { return true }
        let waited = seg.rollingBasedTimestamp >= 0 ? maxTimestamp - seg.rollingBasedTimestamp : nowMs - seg.createdMs
        return waited > _config.segmentMs
    }

    /// Starts a new active segment at `base` (the log end offset).
    @discardableResult
    private func rollLocked(base: Int64, nowMs: Int64) throws -> LogSegment {
        let old = segments.last!
        let newBase = max(base, old.nextOffset)
        try old.onBecomeInactive()
        if old.isEmpty {
            // Replace an empty active segment rather than keeping an empty file behind.
            for f in old.files { try FileSystem.remove(f) }
            segments.removeLast()
        }
        let seg = try newSegment(base: newBase, nowMs: nowMs)
        segments.append(seg)
        logger.debug("rolled segment", metadata: ["partition": "\(topicPartition)", "baseOffset": "\(newBase)"])
        return seg
    }

    /// Rolls the active segment now (tests and tools).
    public func roll(nowMs: Int64) throws {
        try lock.withLock {
            if !segments.last!.isEmpty { _ = try rollLocked(base: segments.last!.nextOffset, nowMs: nowMs) }
        }
    }

    // MARK: read

    /// Reads up to `maxBytes` starting at the batch that holds `offset`, not past
    /// `maxOffset` (the high watermark for consumers; nil for replicas). With `minOneBatch`
    /// the first batch is returned whole even if larger than `maxBytes` (Kafka's KIP-74).
    public func read(from offset: Int64, maxBytes: Int, maxOffset: Int64? = nil, minOneBatch: Bool = true) throws -> LogReadInfo {
        try lock.withLock {
            let leo = segments.last!.nextOffset
            var info = LogReadInfo(slice: nil, firstBatchBaseOffset: nil, highWatermark: _highWatermark,
                                   logStartOffset: _logStartOffset, logEndOffset: leo)
            guard offset >= _logStartOffset, offset <= leo else {
                throw LogAppendError(.offsetOutOfRange, "offset \(offset) is outside [\(_logStartOffset), \(leo)] of \(topicPartition)")
            }
            let limit = maxOffset ?? leo
            guard offset < limit else { return info }
            var i = segmentIndex(for: offset)
            while i < segments.count {
                let seg = segments[i]
                // Do not read past `limit`: find its position in this segment.
                var maxPosition: Int? = nil
                if limit < seg.nextOffset {
                    maxPosition = try seg.translateOffset(limit)?.position
                }
                if let r = try seg.read(startOffset: offset, maxBytes: maxBytes, maxPosition: maxPosition, minOneBatch: minOneBatch) {
                    info.slice = r.slice
                    info.firstBatchBaseOffset = r.firstBatch.baseOffset
                    return info
                }
                if limit <= seg.nextOffset { break }
                i += 1
            }
            return info
        }
    }

    /// Reads and returns the bytes directly (tools, tests, KRaft).
    public func readBytes(from offset: Int64, maxBytes: Int, maxOffset: Int64? = nil) throws -> ByteBuffer {
        let info = try read(from: offset, maxBytes: maxBytes, maxOffset: maxOffset)
        return try info.slice?.read() ?? ByteBuffer()
    }

    private func segmentIndex(for offset: Int64) -> Int {
        var lo = 0, hi = segments.count - 1, found = 0
        while lo <= hi {
            let mid = (lo + hi) / 2
            if segments[mid].baseOffset <= offset { found = mid; lo = mid + 1 } else { hi = mid - 1 }
        }
        return found
    }

    /// ListOffsets by timestamp: the first offset whose timestamp is ≥ `timestamp`.
    public func offset(forTimestamp timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        try lock.withLock {
            for seg in segments where seg.maxTimestampSoFar >= timestamp {
                if let r = try seg.findOffset(byTimestamp: timestamp, startingAfter: _logStartOffset) { return r }
            }
            return nil
        }
    }

    /// ListOffsets -3 (max timestamp, KIP-734): the offset holding the largest timestamp.
    public var maxTimestampAndOffset: (timestamp: Int64, offset: Int64) {
        lock.withLock {
            var best: (Int64, Int64) = (-1, -1)
            for seg in segments where seg.maxTimestampSoFar > best.0 {
                best = (seg.maxTimestampSoFar, seg.offsetOfMaxTimestampSoFar)
            }
            return best
        }
    }

    // MARK: truncation (followers)

    /// Removes all records with offsets ≥ `offset` (divergence from the leader).
    public func truncate(to offset: Int64) throws {
        try lock.withLock {
            guard offset < segments.last!.nextOffset else { return }
            guard offset >= _logStartOffset else {
                try truncateFullyLocked(at: offset, nowMs: segments.last!.createdMs)
                return
            }
            while segments.count > 1, segments.last!.baseOffset >= offset {
                let seg = segments.removeLast()
                for f in seg.files { try FileSystem.remove(f) }
            }
            let active = segments.last!
            try active.truncate(to: offset)
            try active.offsetIndex.resize(maxIndexSize: _config.segmentIndexBytes)
            try active.timeIndex.resize(maxIndexSize: _config.segmentIndexBytes)
            try leaderEpochCache.truncate(fromEnd: active.nextOffset)
            _recoveryPoint = min(_recoveryPoint, active.nextOffset)
            _highWatermark = min(_highWatermark, active.nextOffset)
            try FileSystem.syncDirectory(dir)
        }
    }

    /// Deletes everything and restarts the log empty at `offset` (a follower far behind a
    /// log start, or a snapshot install).
    public func truncateFullyAndStart(at offset: Int64, nowMs: Int64) throws {
        try lock.withLock { try truncateFullyLocked(at: offset, nowMs: nowMs) }
    }

    private func truncateFullyLocked(at offset: Int64, nowMs: Int64) throws {
        for seg in segments { for f in seg.files { try FileSystem.remove(f) } }
        segments = [try newSegment(base: offset, nowMs: nowMs)]
        try leaderEpochCache.clear()
        _logStartOffset = offset
        _recoveryPoint = offset
        _highWatermark = offset
    }

    // MARK: durability

    /// Group commit: fsyncs every segment holding offsets below `offset` (default: all) and
    /// advances the recovery point. Many appends share one fsync; appends proceed while the
    /// fsync runs (it happens outside the lock).
    public func flush(upTo offset: Int64? = nil) throws {
        let (toSync, target): ([LogSegment], Int64) = lock.withLock {
            let leo = segments.last!.nextOffset
            let target = min(offset ?? leo, leo)
            guard target > _recoveryPoint else { return ([], target) }
            let segs = segments.filter { $0.nextOffset > _recoveryPoint && $0.baseOffset < target }
            unflushedMessages = 0
            return (segs, target)
        }
        guard !toSync.isEmpty else { return }
        for s in toSync { try s.flush() }
        lock.withLock {
            if target > _recoveryPoint { _recoveryPoint = target }
        }
    }

    /// Applies `flush.ms`: fsyncs if the last flush is older than it.
    public func flushIfDue(nowMs: Int64) throws {
        let due = lock.withLock { _config.flushMs != Int64.max && nowMs - lastFlushMs >= _config.flushMs }
        guard due else { return }
        try flush()
        lock.withLock { lastFlushMs = nowMs }
    }

    private func flushAllLocked() throws {
        for s in segments where s.nextOffset > _recoveryPoint || s === segments.last! { try s.flush() }
        _recoveryPoint = segments.last!.nextOffset
        unflushedMessages = 0
    }

    /// Flushes and trims the active segment's indexes (clean shutdown).
    public func close() throws {
        try lock.withLock {
            try flushAllLocked()
            try segments.last!.offsetIndex.trim()
            try segments.last!.timeIndex.trim()
        }
    }

    // MARK: retention

    /// DeleteRecords: moves the log start offset forward (never past the high watermark);
    /// whole segments below it are deleted by the next retention pass.
    @discardableResult
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        try lock.withLock {
            guard offset <= _highWatermark else {
                throw LogAppendError(.offsetOutOfRange, "cannot delete records before \(offset): above the high watermark \(_highWatermark)")
            }
            if offset > _logStartOffset {
                _logStartOffset = offset
                try leaderEpochCache.truncate(fromStart: offset)
            }
            return _logStartOffset
        }
    }

    /// Deletes segments by `retention.ms`, `retention.bytes` and the log start offset; never
    /// the active segment, never past the high watermark. Files are renamed `.deleted` and
    /// removed by `deleteDeletedFiles` after `file.delete.delay.ms`. Returns the count.
    @discardableResult
    public func deleteOldSegments(nowMs: Int64) throws -> Int {
        try lock.withLock {
            let cfg = _config
            var deletable: [LogSegment] = []
            var totalSize = segments.reduce(Int64(0)) { $0 + Int64($1.size) }
            for (i, seg) in segments.enumerated() {
                guard i < segments.count - 1 else { break }
                let next = segments[i + 1]
                // Only whole segments below the high watermark.
                guard next.baseOffset <= _highWatermark else { break }
                var reason: String? = nil
                if next.baseOffset <= _logStartOffset {
                    reason = "log start offset \(_logStartOffset)"
                } else if cfg.cleanupPolicy.contains(.delete) && cfg.retentionMs >= 0 && nowMs - seg.largestTimestamp > cfg.retentionMs {
                    reason = "retention.ms \(cfg.retentionMs)"
                } else if cfg.cleanupPolicy.contains(.delete) && cfg.retentionBytes >= 0 && totalSize - Int64(seg.size) >= cfg.retentionBytes {
                    reason = "retention.bytes \(cfg.retentionBytes)"
                }
                guard let reason else { break }
                logger.info("deleting segment", metadata: ["partition": "\(topicPartition)", "baseOffset": "\(seg.baseOffset)", "reason": "\(reason)"])
                deletable.append(seg)
                totalSize -= Int64(seg.size)
            }
            guard !deletable.isEmpty else { return 0 }
            segments.removeFirst(deletable.count)
            _logStartOffset = max(_logStartOffset, segments.first!.baseOffset)
            try leaderEpochCache.truncate(fromStart: _logStartOffset)
            for seg in deletable { try seg.changeSuffix(from: "", to: ".deleted") }
            try FileSystem.syncDirectory(dir)
            return deletable.count
        }
    }

    /// Removes `.deleted` files older than `file.delete.delay.ms` (all with `force`).
    public func deleteDeletedFiles(force: Bool = false) throws {
        for name in try FileSystem.list(dir) where name.hasSuffix(".deleted") {
            try FileSystem.remove(dir + "/" + name)
        }
    }

    // MARK: for the cleaner

    /// The segments (oldest first) under the lock; the cleaner works on inactive ones.
    func withSegments<T>(_ body: (inout [LogSegment]) throws -> T) rethrows -> T {
        try lock.withLock { try body(&segments) }
    }
}
