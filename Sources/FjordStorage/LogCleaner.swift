import FjordRecords
import NIOCore

/// Steps of a segment swap, for crash tests: the cleaner stops (as if the process died)
/// right after the named step, leaving the files exactly as they are at that moment.
public enum CleanerCrashPoint: Sendable, CaseIterable {
    case afterCleanedWritten
    case afterSwapRenamed
    case afterOldIndexesDeleted
    case afterSwapCompleted
}

/// Thrown by the cleaner at a `CleanerCrashPoint`.
public struct SimulatedCrash: Error {}

/// What one cleaning pass did.
public struct CleanerStats: Sendable, Equatable {
    public var segmentsCleaned = 0
    public var recordsRead = 0
    public var recordsRetained = 0
    public var tombstonesDropped = 0
    public var bytesBefore = 0
    public var bytesAfter = 0
    /// Where the next pass starts: everything below is clean.
    public var firstDirtyOffset: Int64 = 0
    /// The earliest delete horizon of a batch that still holds tombstones after this pass:
    /// a pass after it can drop them (nil if none).
    public var earliestDeleteHorizonMs: Int64? = nil
    /// The log was truncated during the pass: nothing was swapped in after that and the
    /// cleaner checkpoint was left alone.
    public var aborted = false
}

/// Log compaction (`cleanup.policy=compact`): keeps the latest record per key in the
/// inactive segments, drops tombstones after `delete.retention.ms`, keeps offsets.
///
/// A pass looks at the *cleanable* segments: the longest run of inactive segments from the
/// start of the log that are below the high watermark and older than
/// `min.compaction.lag.ms` (a run, so the dirty section never skips a segment). It (1) builds
/// a map key → latest offset over the dirty part of that run (from the cleaner checkpoint),
/// bounded by `dedupeBufferBytes`; (2) rewrites each segment below the end of the mapped
/// part to `<base>.log.cleaned` without the superseded records, outside the log's lock;
/// (3) swaps each in: fsync, rename to `.log.swap`, delete the old indexes, rename over the
/// old `.log`, rebuild the indexes. A crash at any step leaves either the old segment or the
/// complete cleaned one (PartitionLog's loader finishes a `.swap`). A truncation of the log
/// during the pass aborts it: the cleaned files are discarded.
///
/// Tombstones follow KIP-534: the first pass that keeps a batch with tombstones stamps the
/// batch's delete horizon (now + `delete.retention.ms`); a pass after that horizon drops
/// them. Record timestamps play no part.
public struct LogCleaner: Sendable {
    /// `log.cleaner.dedupe.buffer.size` (128 MiB).
    public var dedupeBufferBytes: Int = 128 * 1024 * 1024
    public var crashPoint: CleanerCrashPoint? = nil

    public init(dedupeBufferBytes: Int = 128 * 1024 * 1024) {
        self.dedupeBufferBytes = dedupeBufferBytes
    }

    /// The cleanable segments: the run of inactive segments from the log start that are
    /// below the high watermark and older than `min.compaction.lag.ms`.
    static func cleanableSegments(_ view: PartitionLog.CleanerView, config: LogConfig, nowMs: Int64) -> [PartitionLog.CleanerView.Segment] {
        var out: [PartitionLog.CleanerView.Segment] = []
        for seg in view.inactiveSegments {
            guard seg.nextOffset <= view.highWatermark, nowMs - seg.largestTimestamp >= config.minCompactionLagMs else { break }
            out.append(seg)
        }
        return out
    }

    /// Kafka resets a checkpoint outside [log start, log end] to the log start.
    static func effectiveFirstDirtyOffset(_ requested: Int64, _ view: PartitionLog.CleanerView) -> Int64 {
        requested < view.logStartOffset || requested > view.logEndOffset ? view.logStartOffset : requested
    }

    /// The dirty ratio Kafka compares with `min.cleanable.dirty.ratio`: bytes of the
    /// cleanable segments at or after `firstDirtyOffset`, over the bytes of all cleanable
    /// segments.
    public func dirtyRatio(_ log: PartitionLog, firstDirtyOffset: Int64, nowMs: Int64) -> Double {
        let view = log.cleanerView()
        let firstDirty = Self.effectiveFirstDirtyOffset(firstDirtyOffset, view)
        let cleanable = Self.cleanableSegments(view, config: log.config, nowMs: nowMs)
        let total = cleanable.reduce(0) { $0 + $1.size }
        guard total > 0 else { return 0 }
        let dirty = cleanable.filter { $0.nextOffset > firstDirty }.reduce(0) { $0 + $1.size }
        return Double(dirty) / Double(total)
    }

    /// Cleans `log` if it is compacted and its dirty ratio is over `min.cleanable.dirty.ratio`
    /// (or `force`). Returns nil if not cleaned.
    public func cleanIfNeeded(_ log: PartitionLog, firstDirtyOffset: Int64, nowMs: Int64, force: Bool = false) throws -> CleanerStats? {
        let cfg = log.config
        guard cfg.isCompacted else { return nil }
        guard force || dirtyRatio(log, firstDirtyOffset: firstDirtyOffset, nowMs: nowMs) > cfg.minCleanableDirtyRatio else { return nil }
        return try clean(log, firstDirtyOffset: firstDirtyOffset, nowMs: nowMs)
    }

    /// One cleaning pass from `firstDirtyOffset` (normally `log.cleanerCheckpoint`). On
    /// success the log's cleaner checkpoint moves to the returned `firstDirtyOffset`.
    public func clean(_ log: PartitionLog, firstDirtyOffset requested: Int64, nowMs: Int64) throws -> CleanerStats {
        let cfg = log.config
        let view = log.cleanerView()
        let firstDirty = Self.effectiveFirstDirtyOffset(requested, view)
        let cleanable = Self.cleanableSegments(view, config: cfg, nowMs: nowMs)
        var stats = CleanerStats()
        stats.firstDirtyOffset = firstDirty
        guard let endOffset = cleanable.last?.nextOffset else { return stats }

        // Phase 1: offset map over the dirty section, bounded.
        var map: [ByteBuffer: Int64] = [:]
        var mapBytes = 0
        var mapEnd = firstDirty
        mapping: for seg in cleanable where seg.nextOffset > firstDirty {
            var full = false
            _ = try SegmentScanner.forEachBatch(in: seg.segment.log, size: seg.size, maxBatchSize: Int(Int32.max)) { batch, _ in
                if batch.lastOffset < firstDirty { return true }
                if !batch.isControl {
                    var added = 0
                    var it = try batch.makeRecordIterator(maxDecompressedBytes: cfg.maxDecompressedBytes)
                    while let r = try it.next() {
                        guard r.offset >= firstDirty, let k = r.key else { continue }
                        if let i = map.index(forKey: k) {
                            map.values[i] = r.offset
                        } else {
                            // Copy the key: a slice would pin the whole decompressed batch.
                            var owned = ByteBufferAllocator().buffer(capacity: k.readableBytes)
                            owned.writeImmutableBuffer(k)
                            map[owned] = r.offset
                            added += k.readableBytes + 48
                        }
                    }
                    mapBytes += added
                    if mapBytes > dedupeBufferBytes { full = true; return false }
                }
                mapEnd = batch.lastOffset + 1
                return true
            }
            if full { break mapping }
        }

        // Phase 2 + 3: rewrite and swap each segment below the end of the mapped section.
        for seg in cleanable where seg.baseOffset < mapEnd {
            let cleanedPath = seg.segment.log.path + ".cleaned"
            try? FileSystem.remove(cleanedPath)
            let out = try StorageFile(path: cleanedPath, create: true)
            var outSize = 0
            var segStats = CleanerStats()
            _ = try SegmentScanner.forEachBatch(in: seg.segment.log, size: seg.size, maxBatchSize: Int(Int32.max)) { batch, _ in
                let kept = try Self.filter(batch, map: map, nowMs: nowMs, deleteRetentionMs: cfg.deleteRetentionMs,
                                           stats: &segStats, maxDecompressed: cfg.maxDecompressedBytes)
                if let kept {
                    try out.write(kept, at: outSize)
                    outSize += kept.readableBytes
                }
                return true
            }
            try out.sync()
            if crashPoint == .afterCleanedWritten { throw SimulatedCrash() }
            guard try log.swapIn(cleanedLog: cleanedPath, replacing: seg.segment, generation: view.generation, crashPoint: crashPoint) else {
                if log.cleanerView().generation != view.generation {
                    stats.aborted = true
                    return stats
                }
                continue  // deleted by retention meanwhile
            }
            stats.segmentsCleaned += 1
            stats.recordsRead += segStats.recordsRead
            stats.recordsRetained += segStats.recordsRetained
            stats.tombstonesDropped += segStats.tombstonesDropped
            stats.bytesBefore += seg.size
            stats.bytesAfter += outSize
            if let h = segStats.earliestDeleteHorizonMs {
                stats.earliestDeleteHorizonMs = min(stats.earliestDeleteHorizonMs ?? h, h)
            }
        }
        stats.firstDirtyOffset = max(firstDirty, min(mapEnd, endOffset))
        log.commitCleanerCheckpoint(stats.firstDirtyOffset, generation: view.generation)
        return stats
    }

    /// The batch without the records superseded by a later offset in `map` and, once its
    /// delete horizon has passed, without its tombstones; nil if no record remains. Offsets
    /// are kept. A kept batch with tombstones but no delete horizon gets one: now +
    /// `deleteRetentionMs` (KIP-534).
    static func filter(_ batch: RecordBatch, map: [ByteBuffer: Int64], nowMs: Int64, deleteRetentionMs: Int64,
                       stats: inout CleanerStats, maxDecompressed: Int) throws -> ByteBuffer? {
        if batch.isControl { return batch.buffer }
        let retainTombstones = batch.deleteHorizonMs.map { nowMs < $0 } ?? true
        var keep: [Record] = []
        var all = 0
        var hasTombstones = false
        var it = try batch.makeRecordIterator(maxDecompressedBytes: maxDecompressed)
        while let r = try it.next() {
            all += 1
            stats.recordsRead += 1
            if let k = r.key, let latest = map[k], latest > r.offset { continue }
            if r.value == nil {
                if !retainTombstones {
                    stats.tombstonesDropped += 1
                    continue
                }
                hasTombstones = true
            }
            keep.append(r)
        }
        stats.recordsRetained += keep.count
        if keep.isEmpty { return nil }
        let needsHorizon = hasTombstones && batch.deleteHorizonMs == nil
        let horizon: Int64? = needsHorizon
            ? nowMs.addingReportingOverflow(deleteRetentionMs).overflow ? Int64.max : nowMs + deleteRetentionMs
            : batch.deleteHorizonMs
        if hasTombstones, let horizon { stats.earliestDeleteHorizonMs = min(stats.earliestDeleteHorizonMs ?? horizon, horizon) }
        if keep.count == all && !needsHorizon { return batch.buffer }
        var b = RecordBatchBuilder(baseOffset: batch.baseOffset, partitionLeaderEpoch: batch.partitionLeaderEpoch,
                                   codec: batch.compression ?? .none, producerId: batch.producerId,
                                   producerEpoch: batch.producerEpoch, baseSequence: batch.baseSequence,
                                   isTransactional: batch.isTransactional,
                                   logAppendTime: batch.timestampType == .logAppendTime ? batch.maxTimestamp : nil,
                                   deleteHorizonMs: horizon)
        for r in keep {
            try b.append(offsetDelta: Int32(r.offset - batch.baseOffset), key: r.key, value: r.value,
                         headers: Array(r.headers), timestamp: r.timestamp)
        }
        return try b.build().buffer
    }
}
