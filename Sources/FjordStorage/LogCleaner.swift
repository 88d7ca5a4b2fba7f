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
}

/// Log compaction (`cleanup.policy=compact`): keeps the latest record per key in the
/// inactive segments, drops tombstones after `delete.retention.ms`, keeps offsets.
///
/// A pass (1) builds a map key → latest offset over the dirty section (offsets from the
/// cleaner checkpoint to the active segment), bounded by `dedupeBufferBytes`; (2) rewrites
/// each inactive segment to `<base>.log.cleaned` without the superseded records, outside
/// the log's lock; (3) swaps each in: fsync, rename to `.log.swap`, delete the old indexes,
/// rename over the old `.log`, rebuild the indexes. A crash at any step leaves either the
/// old segment or the complete cleaned one (PartitionLog's loader finishes a `.swap`).
public struct LogCleaner: Sendable {
    /// `log.cleaner.dedupe.buffer.size` (128 MiB).
    public var dedupeBufferBytes: Int = 128 * 1024 * 1024
    public var crashPoint: CleanerCrashPoint? = nil

    public init(dedupeBufferBytes: Int = 128 * 1024 * 1024) {
        self.dedupeBufferBytes = dedupeBufferBytes
    }

    /// The dirty ratio of the cleanable section: bytes at or after `firstDirtyOffset` over all
    /// bytes of the inactive segments.
    public func dirtyRatio(_ log: PartitionLog, firstDirtyOffset: Int64) -> Double {
        log.withSegments { segs in
            let inactive = segs.dropLast()
            let total = inactive.reduce(0) { $0 + $1.size }
            guard total > 0 else { return 0 }
            let dirty = inactive.filter { $0.nextOffset > firstDirtyOffset }.reduce(0) { $0 + $1.size }
            return Double(dirty) / Double(total)
        }
    }

    /// Cleans `log` if it is compacted and dirty enough (or `force`). Returns nil if not cleaned.
    public func cleanIfNeeded(_ log: PartitionLog, firstDirtyOffset: Int64, nowMs: Int64, force: Bool = false) throws -> CleanerStats? {
        let cfg = log.config
        guard cfg.isCompacted else { return nil }
        guard force || dirtyRatio(log, firstDirtyOffset: firstDirtyOffset) >= cfg.minCleanableDirtyRatio else { return nil }
        return try clean(log, firstDirtyOffset: firstDirtyOffset, nowMs: nowMs)
    }

    public func clean(_ log: PartitionLog, firstDirtyOffset: Int64, nowMs: Int64) throws -> CleanerStats {
        let cfg = log.config
        // Phase 1: which segments (inactive, old enough for min.compaction.lag.ms, below the HW).
        let (segments, hw): ([LogSegment], Int64) = log.withSegments { segs in
            (Array(segs.dropLast()), log.highWatermarkUnlocked)
        }
        let eligible = segments.filter { $0.nextOffset <= hw && nowMs - $0.largestTimestamp >= cfg.minCompactionLagMs }
        var stats = CleanerStats()
        stats.firstDirtyOffset = firstDirtyOffset
        guard let endOffset = eligible.last?.nextOffset else { return stats }

        // Phase 2a: offset map over the dirty section, bounded.
        var map: [ByteBuffer: Int64] = [:]
        var mapBytes = 0
        var mapEnd = firstDirtyOffset
        mapping: for seg in eligible where seg.nextOffset > firstDirtyOffset {
            var full = false
            _ = try SegmentScanner.forEachBatch(in: seg.log, size: seg.size, maxBatchSize: Int(Int32.max)) { batch, _ in
                if batch.isControl { return true }
                var added = 0
                var it = try batch.makeRecordIterator(maxDecompressedBytes: cfg.maxDecompressedBytes)
                while let r = try it.next() {
                    guard r.offset >= firstDirtyOffset, let k = r.key else { continue }
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
                mapEnd = batch.lastOffset + 1
                return true
            }
            if full { break mapping }
        }
        // Tombstones that were already in the clean section and older than delete.retention.ms go.
        let tombstoneHorizon = nowMs - cfg.deleteRetentionMs

        // Phase 2b + 3: rewrite and swap each segment below the end of the mapped section.
        for seg in eligible where seg.baseOffset < mapEnd {
            let dropTombstones = seg.nextOffset <= firstDirtyOffset && seg.largestTimestamp < tombstoneHorizon
            let cleanedPath = seg.log.path + ".cleaned"
            try? FileSystem.remove(cleanedPath)
            let out = try StorageFile(path: cleanedPath, create: true)
            var outSize = 0
            var segStats = CleanerStats()
            _ = try SegmentScanner.forEachBatch(in: seg.log, size: seg.size, maxBatchSize: Int(Int32.max)) { batch, _ in
                let kept = try Self.filter(batch, map: map, mapEnd: mapEnd, dropTombstones: dropTombstones, stats: &segStats, maxDecompressed: cfg.maxDecompressedBytes)
                if let kept {
                    try out.write(kept, at: outSize)
                    outSize += kept.readableBytes
                }
                return true
            }
            try out.sync()
            if crashPoint == .afterCleanedWritten { throw SimulatedCrash() }
            try log.swapIn(cleanedLog: cleanedPath, replacing: seg, crashPoint: crashPoint)
            stats.segmentsCleaned += 1
            stats.recordsRead += segStats.recordsRead
            stats.recordsRetained += segStats.recordsRetained
            stats.tombstonesDropped += segStats.tombstonesDropped
            stats.bytesBefore += seg.size
            stats.bytesAfter += outSize
        }
        stats.firstDirtyOffset = max(firstDirtyOffset, min(mapEnd, endOffset))
        return stats
    }

    /// The batch with superseded records removed (nil if none remain). Offsets are kept.
    static func filter(_ batch: RecordBatch, map: [ByteBuffer: Int64], mapEnd: Int64, dropTombstones: Bool,
                       stats: inout CleanerStats, maxDecompressed: Int) throws -> ByteBuffer? {
        if batch.isControl { return batch.buffer }
        var keep: [Record] = []
        var all = 0
        var it = try batch.makeRecordIterator(maxDecompressedBytes: maxDecompressed)
        while let r = try it.next() {
            all += 1
            stats.recordsRead += 1
            if let k = r.key, let latest = map[k], latest > r.offset { continue }
            if r.value == nil && dropTombstones {
                stats.tombstonesDropped += 1
                continue
            }
            keep.append(r)
        }
        stats.recordsRetained += keep.count
        if keep.count == all { return batch.buffer }
        if keep.isEmpty { return nil }
        var b = RecordBatchBuilder(baseOffset: batch.baseOffset, partitionLeaderEpoch: batch.partitionLeaderEpoch,
                                   codec: batch.compression ?? .none, producerId: batch.producerId,
                                   producerEpoch: batch.producerEpoch, baseSequence: batch.baseSequence,
                                   isTransactional: batch.isTransactional,
                                   logAppendTime: batch.timestampType == .logAppendTime ? batch.maxTimestamp : nil)
        for r in keep {
            try b.append(offsetDelta: Int32(r.offset - batch.baseOffset), key: r.key, value: r.value,
                     headers: Array(r.headers), timestamp: r.timestamp)
        }
        return try b.build().buffer
    }
}

extension PartitionLog {
    /// Replaces `old` (an inactive segment) with the cleaned log at `cleanedLog`, under the
    /// lock. If `old` is no longer part of the log (deleted by retention or truncation
    /// meanwhile), the cleaned file is discarded.
    func swapIn(cleanedLog: String, replacing old: LogSegment, crashPoint: CleanerCrashPoint?) throws {
        let cfg = config
        try withSegments { segs in
            guard let i = segs.firstIndex(where: { $0 === old }), i < segs.count - 1 else {
                try FileSystem.remove(cleanedLog)
                return
            }
            let base = old.baseOffset
            let final = dir + "/" + LogSegment.fileName(base, ".log")
            let swap = final + ".swap"
            try FileSystem.rename(cleanedLog, swap)
            try FileSystem.syncDirectory(dir)
            if crashPoint == .afterSwapRenamed { throw SimulatedCrash() }
            try FileSystem.remove(dir + "/" + LogSegment.fileName(base, ".index"))
            try FileSystem.remove(dir + "/" + LogSegment.fileName(base, ".timeindex"))
            if crashPoint == .afterOldIndexesDeleted { throw SimulatedCrash() }
            try FileSystem.rename(swap, final)
            try FileSystem.syncDirectory(dir)
            if crashPoint == .afterSwapCompleted { throw SimulatedCrash() }
            let fresh = try LogSegment(dir: dir, baseOffset: base, indexIntervalBytes: cfg.indexIntervalBytes,
                                       maxIndexSize: cfg.segmentIndexBytes, nowMs: old.createdMs)
            _ = try fresh.recover(maxBatchSize: Int(Int32.max))
            try fresh.onBecomeInactive()
            try fresh.flush()
            segs[i] = fresh
        }
    }
}
