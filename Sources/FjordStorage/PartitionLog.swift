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
    /// Set when an idempotent producer's append was a retry of a batch already in the log
    /// (one of the producer's last 5): nothing was appended, `firstOffset`/`lastOffset` are
    /// the original batch's, and the produce response answers NONE with them (Kafka's
    /// behaviour since KIP-98). `batchCount`, `recordCount` and `validBytes` are then 0.
    public var duplicateOf: ProducerBatchMetadata? = nil
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

/// Who appends as leader (Kafka's `AppendOrigin`); it decides what the batches may hold.
public enum AppendOrigin: Sendable {
    /// A producer. Control batches are refused with INVALID_RECORD, as Kafka does.
    case client
    /// A broker-side coordinator (groups, transactions) writing records and markers.
    case coordinator
    /// The KRaft leader: every batch must already carry the epoch it is appended with.
    case raftLeader
}

/// A partition's log: an ordered set of segments in `<log.dir>/<topic>-<partition>/`
/// (Kafka's `UnifiedLog` + `LocalLog`). Thread-safe: appends, reads and maintenance take an
/// internal lock; the fsyncs of `flush(upTo:)` run outside it so appends continue meanwhile.
public final class PartitionLog: @unchecked Sendable {
    public let dir: String
    public let topicPartition: TopicPartition
    private let lock = NIOLock()
    private var _config: LogConfig
    /// Oldest first, never empty; the last one is the active segment.
    private var segments: [LogSegment]
    private var _logStartOffset: Int64
    private var _recoveryPoint: Int64
    private var _highWatermark: Int64
    private var _cleanerCheckpoint: Int64
    private var epochCache: LeaderEpochCache
    /// Bumped by every truncation. Work started before one (a flush, a cleaning pass) must not
    /// publish what it computed from the old log.
    private var truncationGeneration: UInt64 = 0
    private var unflushedMessages: Int64 = 0
    private var lastFlushMs: Int64
    /// `.deleted` files renamed by this process → the `nowMs` of the retention pass that
    /// renamed them, so `file.delete.delay.ms` is measured with the caller's clock.
    private var deletedFileTimes: [String: Int64] = [:]
    /// The idempotent-producer state of the log up to its end (see `ProducerStateManager`),
    /// snapshotted in `%020d.snapshot` files on roll and close.
    private var producers = ProducerStateManager()
    /// How many producer snapshots are kept (the newest); older ones only spare a longer
    /// replay after a deep truncation.
    static let maxProducerSnapshots = 4
    let logger: Logger

    // MARK: opening

    /// Opens (creating if needed) the log in `dir`, recovering after an unclean shutdown:
    /// every segment from the recovery point on is scanned, a torn or corrupt tail is cut
    /// off (and logged with its offset and position), indexes are rebuilt.
    ///
    /// - Parameters:
    ///   - recoveryPoint: offsets below it were fsynced (`recovery-point-offset-checkpoint`).
    ///   - logStartOffset: from `log-start-offset-checkpoint`.
    ///   - highWatermark: from `replication-offset-checkpoint`; clamped into [log start, LEO].
    ///     Without one the high watermark starts at the log start offset.
    ///   - cleanerCheckpoint: from `cleaner-offset-checkpoint`; reset to the log start when
    ///     outside [log start, LEO].
    public init(dir: String, topicPartition: TopicPartition, config: LogConfig, recoveryPoint: Int64 = 0,
                logStartOffset: Int64 = 0, highWatermark: Int64? = nil, cleanerCheckpoint: Int64? = nil,
                hadCleanShutdown: Bool = false, nowMs: Int64, logger: Logger = Logger(label: "fjord.log")) throws {
        self.dir = dir
        self.topicPartition = topicPartition
        self._config = config
        self.logger = logger
        self.lastFlushMs = nowMs
        try FileSystem.createDirectory(dir)
        self.epochCache = try LeaderEpochCache(dir: dir)
        self.segments = []
        self._logStartOffset = logStartOffset
        self._recoveryPoint = recoveryPoint
        self._highWatermark = logStartOffset
        self._cleanerCheckpoint = logStartOffset
        try load(hadCleanShutdown: hadCleanShutdown, nowMs: nowMs)
        let leo = activeSegment.nextOffset
        _highWatermark = min(max(highWatermark ?? _logStartOffset, _logStartOffset), leo)
        if let c = cleanerCheckpoint, c >= _logStartOffset, c <= leo { _cleanerCheckpoint = c } else { _cleanerCheckpoint = _logStartOffset }
    }

    private func load(hadCleanShutdown: Bool, nowMs: Int64) throws {
        let checkpointedRecoveryPoint = _recoveryPoint
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
        for base in bases.sorted() {
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
                    try self.epochCache.assign(epoch: batch.partitionLeaderEpoch, startOffset: batch.baseOffset)
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
        // An empty segment at the end, above the recovery point, holds nothing that was
        // acknowledged as durable: its file was created (the directory is synced on a roll)
        // but its data, and maybe the tail of the segment before it, never reached the disk.
        // Keeping it would put the log end at its base offset, past offsets that are gone.
        if !hadCleanShutdown {
            while segments.count > 1, activeSegment.isEmpty, activeSegment.baseOffset > _recoveryPoint {
                let seg = segments.removeLast()
                logger.warning("deleting empty segment after unclean shutdown", metadata: ["segment": "\(seg.log.path)"])
                for f in seg.files { try FileSystem.remove(f) }
            }
        }
        // The active segment keeps preallocated indexes; the others are trimmed.
        for seg in segments.dropLast() { try seg.offsetIndex.trim(); try seg.timeIndex.trim() }
        try activeSegment.offsetIndex.resize(maxIndexSize: _config.segmentIndexBytes)
        try activeSegment.timeIndex.resize(maxIndexSize: _config.segmentIndexBytes)
        let leo = activeSegment.nextOffset
        _logStartOffset = min(max(_logStartOffset, segments[0].baseOffset), leo)
        try epochCache.truncate(fromEnd: leo)
        try epochCache.truncate(fromStart: _logStartOffset)
        _recoveryPoint = needsRecovery ? leo : min(max(_recoveryPoint, _logStartOffset), leo)
        if needsRecovery { try flushAllLocked() }
        // Producer state: after a clean shutdown any snapshot up to the log end is good; after
        // a crash only those at or below the recovery point, whose data was fsynced before
        // them (a later one may describe batches that never reached the disk).
        let trusted = hadCleanShutdown ? leo : min(checkpointedRecoveryPoint, leo)
        let replayed = try loadProducerStateLocked(upTo: trusted)
        if replayed && _recoveryPoint == leo {
            // Spare the next open the replay (the data below the log end is durable).
            try writeProducerSnapshotLocked()
        }
    }

    private func newSegment(base: Int64, nowMs: Int64) throws -> LogSegment {
        let seg = try LogSegment(dir: dir, baseOffset: base, indexIntervalBytes: _config.indexIntervalBytes,
                                 maxIndexSize: _config.segmentIndexBytes, nowMs: nowMs)
        if seg.size > 0 { try seg.log.truncate(to: 0) }
        try FileSystem.syncDirectory(dir)
        return seg
    }

    // MARK: state

    /// The segment appends go to.
    private var activeSegment: LogSegment { segments[segments.count - 1] }

    public var config: LogConfig {
        get { lock.withLock { _config } }
        set { lock.withLock { _config = newValue } }
    }

    public var logStartOffset: Int64 { lock.withLock { _logStartOffset } }
    public var logEndOffset: Int64 { lock.withLock { activeSegment.nextOffset } }
    public var recoveryPoint: Int64 { lock.withLock { _recoveryPoint } }
    public var segmentCount: Int { lock.withLock { segments.count } }
    public var segmentBaseOffsets: [Int64] { lock.withLock { segments.map(\.baseOffset) } }
    public var sizeInBytes: Int { lock.withLock { segments.reduce(0) { $0 + $1.size } } }

    /// The high watermark: never above the log end offset, never below the log start.
    public var highWatermark: Int64 {
        get { lock.withLock { _highWatermark } }
        set { lock.withLock { _highWatermark = min(max(newValue, _logStartOffset), activeSegment.nextOffset) } }
    }

    /// Where the cleaner's next pass starts (everything below is clean), persisted by
    /// `LogManager` in `cleaner-offset-checkpoint`. Lowered by truncation.
    public var cleanerCheckpoint: Int64 { lock.withLock { _cleanerCheckpoint } }

    /// The idempotent-producer state of `producerId`: its epoch, the last sequence number it
    /// appended in that epoch (-1 if none), and the last offset of its latest data batch
    /// (-1 if none). nil for a producer the log does not know.
    public func producerState(for producerId: Int64) -> (epoch: Int16, lastSequence: Int32, lastOffset: Int64)? {
        lock.withLock {
            producers[producerId].map { ($0.producerEpoch, $0.lastSequence, $0.lastDataOffset) }
        }
    }

    /// A copy of the whole producer state (tests and tools).
    var producerStateManager: ProducerStateManager { lock.withLock { producers } }

    /// The number of producers with state in this log (DescribeProducers).
    public var activeProducerCount: Int { lock.withLock { producers.count } }

    /// Every producer's state, by producer id (DescribeProducers).
    public var activeProducers: [ProducerStateEntry] {
        lock.withLock { producers.producers.values.sorted { $0.producerId < $1.producerId } }
    }

    /// Forgets producers whose latest batch is at least `expirationMs` older than `nowMs`
    /// (Kafka's `producer.id.expiration.ms`, default one day, checked every
    /// `producer.id.expiration.check.interval.ms`). Their next append is then treated as a
    /// new producer's. Returns how many were removed.
    @discardableResult
    public func removeExpiredProducers(nowMs: Int64, expirationMs: Int64) -> Int {
        lock.withLock { producers.removeExpired(nowMs: nowMs, expirationMs: expirationMs) }
    }

    /// A copy of the leader epoch cache (it changes only with the log, under its lock).
    public var leaderEpochCache: LeaderEpochCache { lock.withLock { epochCache } }

    /// OffsetForLeaderEpoch: the largest epoch ≤ `epoch` and where it ends, read together
    /// with the log end offset (see `LeaderEpochCache.endOffset(for:logEndOffset:)` for
    /// Kafka's exact answers; (-1, -1) when undefined).
    public func endOffset(forLeaderEpoch epoch: Int32) -> (epoch: Int32, endOffset: Int64) {
        lock.withLock { epochCache.endOffset(for: epoch, logEndOffset: activeSegment.nextOffset) }
    }

    // MARK: append

    /// Validates batches and appends them with offsets assigned from the log end (Kafka's
    /// leader append): CRC and structure checked once, `max.message.bytes` enforced, the
    /// leader epoch stamped, the max timestamp set from the records (CreateTime) or to
    /// `nowMs` (LogAppendTime), as Kafka's `LogValidator` does.
    ///
    /// - Throws: `LogAppendError` with the produce response's error: `NOT_LEADER_OR_FOLLOWER`
    ///   if `leaderEpoch` is older than the latest epoch in the log (a deposed leader);
    ///   `INVALID_RECORD` for a client's control batch or a KRaft batch not stamped with
    ///   `leaderEpoch`; `CORRUPT_MESSAGE`, `MESSAGE_TOO_LARGE`, `RECORD_LIST_TOO_LARGE`, …
    ///   For a client's idempotent batches (producer id ≥ 0, checked against the producer
    ///   state atomically with the append): `INVALID_RECORD` for a producer id without a
    ///   sequence, `INVALID_PRODUCER_EPOCH`, `OUT_OF_ORDER_SEQUENCE_NUMBER`,
    ///   `UNKNOWN_PRODUCER_ID`, `DUPLICATE_SEQUENCE_NUMBER` (see
    ///   `ProducerStateManager.checkClientAppend`). A retry of one of the producer's last 5
    ///   batches is not an error: nothing is appended and the result's `duplicateOf` is set.
    @discardableResult
    public func appendAsLeader(_ records: ByteBuffer, leaderEpoch: Int32, nowMs: Int64, origin: AppendOrigin = .client) throws -> LogAppendInfo {
        try lock.withLock {
            typealias L = RecordBatch.Layout
            let cfg = _config
            var buf = records
            if buf.readableBytes > cfg.segmentBytes {
                throw LogAppendError(.recordListTooLarge, "\(buf.readableBytes) bytes exceed segment.bytes \(cfg.segmentBytes)")
            }
            guard leaderEpoch >= 0 else {
                throw LogAppendError(.unknownServerError, "invalid leader epoch \(leaderEpoch) for an append to \(topicPartition)")
            }
            if let latest = epochCache.latestEpoch, leaderEpoch < latest {
                throw LogAppendError(.notLeaderOrFollower, "leader epoch \(leaderEpoch) is older than the latest epoch \(latest) in the log of \(topicPartition)")
            }
            let leo = activeSegment.nextOffset
            var plan = try validate(buf, cfg: cfg, mode: .leader(assignFrom: leo, leaderEpoch: leaderEpoch, origin: origin))
            guard !plan.batches.isEmpty else { return plan.summary(logStartOffset: _logStartOffset) }
            // Idempotent producers (KIP-98): epoch fencing, sequence order, retries. Checked
            // here, under the lock, so nothing can be appended between the check and the write.
            if origin == .client, plan.batches.contains(where: { $0.producerId >= 0 }),
               let dup = try producers.checkClientAppend(plan.batches.map(\.producerInfo), logStartOffset: _logStartOffset) {
                return LogAppendInfo(firstOffset: dup.firstOffset, lastOffset: dup.lastOffset, maxTimestamp: dup.maxTimestamp,
                                     offsetOfMaxTimestamp: dup.lastOffset,
                                     logAppendTime: cfg.messageTimestampType == .logAppendTime ? dup.maxTimestamp : -1,
                                     logStartOffset: _logStartOffset, batchCount: 0, recordCount: 0, validBytes: 0,
                                     duplicateOf: dup)
            }
            // The base offset and leader epoch lie outside the CRC. When no batch needs another
            // max timestamp, they are stamped as the bytes are written (pwritev), and the
            // request's buffer is written as it is: no copy of the batches.
            let stampOnWrite = plan.batches.allSatisfy { b in
                cfg.messageTimestampType == .createTime && b.timestampType == .createTime && b.maxTimestamp == b.recordsMaxTimestamp
            }
            // Otherwise rewrite headers in place: base offset, leader epoch and the max timestamp
            // Kafka would write (then the CRC is recomputed).
            for i in plan.batches.indices where !stampOnWrite {
                let b = plan.batches[i]
                let at = buf.readerIndex + b.position
                buf.setInteger(b.baseOffset, at: at + L.baseOffset)
                buf.setInteger(leaderEpoch, at: at + L.partitionLeaderEpoch)
                let (ts, type): (Int64, TimestampType) = cfg.messageTimestampType == .logAppendTime
                    ? (nowMs, .logAppendTime) : (b.recordsMaxTimestamp, .createTime)
                if b.maxTimestamp != ts || b.timestampType != type {
                    var batch = try RecordBatch(buf.getSlice(at: at, length: b.size)!)
                    batch.setMaxTimestamp(ts, timestampType: type)
                    buf.setBuffer(batch.buffer, at: at)
                    plan.batches[i].maxTimestamp = ts
                    plan.batches[i].timestampType = type
                }
            }
            var info = plan.summary(logStartOffset: _logStartOffset)
            if cfg.messageTimestampType == .logAppendTime {
                info.logAppendTime = nowMs
                info.offsetOfMaxTimestamp = info.lastOffset
            }
            try epochCache.assign(epoch: leaderEpoch, startOffset: info.firstOffset)
            do {
                try appendLocked(buf, batches: plan.batches, nowMs: nowMs, stampEpoch: stampOnWrite ? leaderEpoch : nil)
            } catch {
                try? epochCache.truncate(fromEnd: activeSegment.nextOffset)
                throw error
            }
            info.logStartOffset = _logStartOffset
            return info
        }
    }

    /// Appends batches replicated from the leader, keeping their offsets (the first must be
    /// at or after the log end offset) and epochs. A partial batch at the end — a fetch
    /// response cut by its byte limit — is ignored, as Kafka's follower does; the next fetch
    /// starts at the returned `lastOffset + 1`.
    @discardableResult
    public func appendAsFollower(_ records: ByteBuffer, leaderEpoch: Int32? = nil, nowMs: Int64) throws -> LogAppendInfo {
        try lock.withLock {
            let plan = try validate(records, cfg: _config, mode: .follower)
            var info = plan.summary(logStartOffset: _logStartOffset)
            guard !plan.batches.isEmpty else { return info }
            if let leaderEpoch, let bad = plan.batches.first(where: { $0.leaderEpoch > leaderEpoch }) {
                // A leader of epoch N cannot have written a batch of a later epoch: the bytes
                // are corrupt or come from the wrong replica. Nothing is appended.
                throw LogAppendError(.invalidRecord, "batch at offset \(bad.baseOffset) has partition leader epoch \(bad.leaderEpoch), above the leader epoch \(leaderEpoch) it was fetched in")
            }
            let leo = activeSegment.nextOffset
            guard info.firstOffset >= leo else {
                throw LogAppendError(.unknownServerError, "out of order offsets: first offset \(info.firstOffset) is below the log end offset \(leo)")
            }
            for b in plan.batches where b.leaderEpoch >= 0 {
                let conflicts = try epochCache.assign(epoch: b.leaderEpoch, startOffset: b.baseOffset)
                if !conflicts.isEmpty {
                    logger.warning("new leader epoch truncated conflicting epoch entries", metadata: [
                        "partition": "\(topicPartition)", "epoch": "\(b.leaderEpoch)", "startOffset": "\(b.baseOffset)",
                        "removed": "\(conflicts)",
                    ])
                }
            }
            do {
                try appendLocked(records.getSlice(at: records.readerIndex, length: plan.validBytes)!, batches: plan.batches, nowMs: nowMs)
            } catch {
                try? epochCache.truncate(fromEnd: activeSegment.nextOffset)
                throw error
            }
            info.logStartOffset = _logStartOffset
            return info
        }
    }

    /// One validated batch of an append, at `position` in the appended bytes.
    private struct PlannedBatch {
        var position: Int
        var size: Int
        var baseOffset: Int64
        var lastOffset: Int64
        var leaderEpoch: Int32
        var recordCount: Int
        var timestampType: TimestampType
        /// The header's max timestamp (after any rewrite).
        var maxTimestamp: Int64
        /// The largest record timestamp (leader appends only; the records are not read for
        /// follower appends).
        var recordsMaxTimestamp: Int64
        var producerId: Int64
        var producerEpoch: Int16
        var baseSequence: Int32
        var isControl: Bool

        /// The producer fields with the offsets and max timestamp the batch is written with.
        var producerInfo: ProducerBatchInfo {
            ProducerBatchInfo(producerId: producerId, producerEpoch: producerEpoch, baseSequence: baseSequence,
                              lastOffsetDelta: Int32(truncatingIfNeeded: lastOffset - baseOffset), firstOffset: baseOffset,
                              maxTimestamp: maxTimestamp, isControl: isControl)
        }
    }

    private struct AppendPlan {
        var batches: [PlannedBatch] = []
        /// Bytes of whole batches from the start (a follower's trailing partial batch excluded).
        var validBytes = 0

        func summary(logStartOffset: Int64) -> LogAppendInfo {
            var maxTs: Int64 = -1, offsetOfMaxTs: Int64 = -1
            for b in batches where b.maxTimestamp > maxTs { (maxTs, offsetOfMaxTs) = (b.maxTimestamp, b.lastOffset) }
            return LogAppendInfo(firstOffset: batches.first?.baseOffset ?? -1, lastOffset: batches.last?.lastOffset ?? -1,
                                 maxTimestamp: maxTs, offsetOfMaxTimestamp: offsetOfMaxTs, logAppendTime: -1,
                                 logStartOffset: logStartOffset, batchCount: batches.count,
                                 recordCount: batches.reduce(0) { $0 + $1.recordCount }, validBytes: validBytes)
        }
    }

    private enum ValidationMode {
        /// Offsets assigned from `assignFrom`; records walked and checked.
        case leader(assignFrom: Int64, leaderEpoch: Int32, origin: AppendOrigin)
        /// Offsets kept; batch headers and CRCs checked (Kafka's follower does not read records).
        case follower
    }

    /// Checks every batch (framing, magic, CRC, size, and for the leader the records) and
    /// computes offsets.
    private func validate(_ records: ByteBuffer, cfg: LogConfig, mode: ValidationMode) throws -> AppendPlan {
        var plan = AppendPlan()
        var prevLast: Int64 = -1
        reading: for item in RecordBatchReader(records, maxBatchSize: Int(Int32.max)) {
            switch item {
            case let .batch(batch, position):
                do { try batch.validate() } catch {
                    throw LogAppendError(.corruptMessage, "batch at position \(position): \(error)")
                }
                let base: Int64
                var recordsMax: Int64 = -1
                switch mode {
                case let .leader(assignFrom, leaderEpoch, origin):
                    if batch.sizeInBytes > cfg.maxMessageBytes {
                        throw LogAppendError(.messageTooLarge, "batch of \(batch.sizeInBytes) bytes exceeds max.message.bytes \(cfg.maxMessageBytes)")
                    }
                    if origin == .client && batch.isControl {
                        throw LogAppendError(.invalidRecord, "Clients are not allowed to write control records (batch at position \(position))")
                    }
                    if origin == .client && batch.producerId >= 0 && batch.baseSequence < 0 {
                        throw LogAppendError(.invalidRecord, "Invalid sequence number \(batch.baseSequence) in record batch with producerId \(batch.producerId)")
                    }
                    if origin == .raftLeader && batch.partitionLeaderEpoch != leaderEpoch {
                        throw LogAppendError(.invalidRecord, "Append from Raft leader did not set the batch epoch correctly, expected \(leaderEpoch) but the batch has \(batch.partitionLeaderEpoch)")
                    }
                    recordsMax = try checkRecords(batch, position: position, cfg: cfg)
                    base = plan.batches.last.map { $0.lastOffset + 1 } ?? assignFrom
                case .follower:
                    base = batch.baseOffset
                    if base <= prevLast {
                        throw LogAppendError(.unknownServerError, "out of order offsets in replicated batches at \(base)")
                    }
                }
                let last = base + Int64(batch.lastOffsetDelta)
                prevLast = last
                plan.batches.append(PlannedBatch(position: position, size: batch.sizeInBytes, baseOffset: base, lastOffset: last,
                                                 leaderEpoch: batch.partitionLeaderEpoch, recordCount: Int(batch.recordCount),
                                                 timestampType: batch.timestampType, maxTimestamp: batch.maxTimestamp,
                                                 recordsMaxTimestamp: recordsMax, producerId: batch.producerId,
                                                 producerEpoch: batch.producerEpoch, baseSequence: batch.baseSequence,
                                                 isControl: batch.isControl))
                plan.validBytes = position + batch.sizeInBytes
            case let .truncated(position, available, _):
                if case .follower = mode { break reading }
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
        if case .leader = mode, plan.batches.isEmpty, records.readableBytes > 0 {
            throw LogAppendError(.corruptMessage, "no complete batch in \(records.readableBytes) bytes")
        }
        return plan
    }

    /// A leader's check of one batch's records (decompressing if needed, without per-record
    /// allocation): count and offset deltas, keys on compacted topics. Returns the largest
    /// record timestamp.
    private func checkRecords(_ batch: RecordBatch, position: Int, cfg: LogConfig) throws -> Int64 {
        let count = Int(batch.recordCount)
        if count <= 0 || Int(batch.lastOffsetDelta) != count - 1 {
            throw LogAppendError(.invalidRecord, "batch has \(count) records but last offset delta \(batch.lastOffsetDelta)")
        }
        let requireKeys = cfg.isCompacted && !batch.isControl
        let scan: RecordScan
        do {
            scan = try batch.scanRecords(maxDecompressedBytes: cfg.maxDecompressedBytes, requireKeys: requireKeys)
        } catch let e {
            if case let .invalidRecord(reason) = e {
                if reason == "missing key" {
                    throw LogAppendError(.invalidRecord, "Compacted topic cannot accept message without key in topic partition \(topicPartition).")
                }
                if reason.hasPrefix("record offset delta") { throw LogAppendError(.invalidRecord, reason) }
            }
            throw LogAppendError(.corruptMessage, "batch at position \(position): \(e)")
        }
        if Int(scan.count) != count {
            throw LogAppendError(.invalidRecord, "batch declares \(count) records but holds \(scan.count)")
        }
        // The largest record timestamp (readers of a LogAppendTime batch use the header's).
        guard scan.maxTimestampDelta != Int64.min else { return -1 }
        let ts = batch.baseTimestamp &+ scan.maxTimestampDelta
        return ts > -1 ? ts : -1
    }

    /// Appends validated batches to the active segment, rolling first when needed. Batches
    /// whose offsets or bytes cannot share one segment (a follower catching up across large
    /// offset gaps) go one by one, each rolling as it must.
    /// `stampEpoch`: write each batch's base offset and this leader epoch over its header as
    /// it is written (the bytes still carry the producer's); nil when they are in place.
    private func appendLocked(_ records: ByteBuffer, batches: [PlannedBatch], nowMs: Int64, stampEpoch: Int32? = nil) throws {
        guard let first = batches.first, let last = batches.last else { return }
        if last.lastOffset - first.baseOffset <= Int64(Int32.max) && records.readableBytes <= _config.segmentBytes {
            try appendToActiveSegment(records, batches[...], nowMs: nowMs, stampEpoch: stampEpoch, positionBase: 0)
        } else {
            for (i, b) in batches.enumerated() {
                try appendToActiveSegment(records.getSlice(at: records.readerIndex + b.position, length: b.size)!, batches[i...i], nowMs: nowMs,
                                          stampEpoch: stampEpoch, positionBase: b.position)
            }
        }
        unflushedMessages += Int64(batches.reduce(0) { $0 + $1.recordCount })
        if unflushedMessages >= _config.flushMessages {
            try flushAllLocked()
        }
    }

    /// `positionBase`: where `bytes` starts in the coordinates of the batches' `position`.
    private func appendToActiveSegment(_ bytes: ByteBuffer, _ batches: ArraySlice<PlannedBatch>, nowMs: Int64,
                                       stampEpoch: Int32? = nil, positionBase: Int = 0) throws {
        var maxTs: Int64 = -1, offsetOfMaxTs: Int64 = -1
        for b in batches where b.maxTimestamp > maxTs { (maxTs, offsetOfMaxTs) = (b.maxTimestamp, b.lastOffset) }
        let firstOffset = batches.first!.baseOffset, lastOffset = batches.last!.lastOffset
        var seg = activeSegment
        if shouldRoll(seg, incomingBytes: bytes.readableBytes, maxTimestamp: maxTs, lastOffset: lastOffset, nowMs: nowMs) {
            seg = try rollLocked(base: firstOffset, nowMs: nowMs)
        }
        let stamps = stampEpoch.map { epoch in
            batches.map { BatchHeaderStamp(position: $0.position - positionBase, baseOffset: $0.baseOffset,
                                           batchLength: Int32($0.size - RecordBatch.Layout.logOverhead), leaderEpoch: epoch) }
        } ?? []
        try seg.append(bytes, lastOffset: lastOffset, maxTimestamp: maxTs, offsetOfMaxTimestamp: offsetOfMaxTs, stamps: stamps)
        // The producer state follows the log batch by batch, so a roll's snapshot (taken
        // before the next write) covers exactly the log below the new segment.
        for b in batches { producers.apply(b.producerInfo) }
    }

    /// Kafka's roll conditions: `segment.bytes`, a full index, an offset the segment cannot
    /// store relative to its base, `segment.ms`. An empty segment is rolled only for the
    /// offset (a follower appending far past its base): the new one is based at the batch.
    private func shouldRoll(_ seg: LogSegment, incomingBytes: Int, maxTimestamp: Int64, lastOffset: Int64, nowMs: Int64) -> Bool {
        if !seg.canConvertToRelativeOffset(lastOffset) { return true }
        if seg.isEmpty { return false }
        if seg.size > _config.segmentBytes - incomingBytes { return true }
        if seg.offsetIndex.isFull || seg.timeIndex.isFull { return true }
        let waited = seg.rollingBasedTimestamp >= 0 ? maxTimestamp - seg.rollingBasedTimestamp : nowMs - seg.createdMs
        return waited > _config.segmentMs
    }

    /// Starts a new active segment at `base` (at least the log end offset). The old one
    /// stays (empty or not) as an inactive segment.
    @discardableResult
    private func rollLocked(base: Int64, nowMs: Int64) throws -> LogSegment {
        let old = activeSegment
        let newBase = max(base, old.nextOffset)
        if old.isEmpty && old.baseOffset == newBase { return old }
        try old.onBecomeInactive()
        let seg = try newSegment(base: newBase, nowMs: nowMs)
        segments.append(seg)
        // Kafka snapshots the producer state on every roll: recovery then replays at most the
        // active segment. A failure costs only a longer replay later, not the append.
        do { try writeProducerSnapshotLocked() } catch {
            logger.warning("cannot write producer state snapshot", metadata: ["partition": "\(topicPartition)", "error": "\(error)"])
        }
        logger.debug("rolled segment", metadata: ["partition": "\(topicPartition)", "baseOffset": "\(newBase)"])
        return seg
    }

    /// Rolls the active segment now (tests and tools).
    public func roll(nowMs: Int64) throws {
        try lock.withLock {
            if !activeSegment.isEmpty { _ = try rollLocked(base: activeSegment.nextOffset, nowMs: nowMs) }
        }
    }

    // MARK: read

    /// Reads up to `maxBytes` starting at the batch that holds `offset`, not past
    /// `maxOffset` (the high watermark for consumers; nil for replicas). With `minOneBatch`
    /// the first batch is returned whole even if larger than `maxBytes` (Kafka's KIP-74).
    /// The last batch may be cut by `maxBytes`: clients and `appendAsFollower` skip it.
    public func read(from offset: Int64, maxBytes: Int, maxOffset: Int64? = nil, minOneBatch: Bool = true) throws -> LogReadInfo {
        try lock.withLock {
            let leo = activeSegment.nextOffset
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

    /// Removes all records with offsets ≥ `offset` (divergence from the leader), as Kafka's
    /// `truncateTo`: below the first segment everything goes (`truncateFullyAndStart`);
    /// otherwise the log start offset becomes min(log start, `offset`). At or past the log
    /// end nothing is removed, but leader epochs starting at the log end (with no data) are.
    public func truncate(to offset: Int64) throws {
        try lock.withLock {
            guard offset >= 0 else { throw StorageError("cannot truncate \(topicPartition) to negative offset \(offset)") }
            let leo = activeSegment.nextOffset
            guard offset < leo else {
                try epochCache.truncate(fromEnd: leo)
                return
            }
            guard offset >= segments[0].baseOffset else {
                try truncateFullyLocked(at: offset, nowMs: activeSegment.createdMs)
                return
            }
            truncationGeneration &+= 1
            while segments.count > 1, activeSegment.baseOffset >= offset {
                let seg = segments.removeLast()
                for f in seg.files { try FileSystem.remove(f) }
            }
            let active = activeSegment
            try active.truncate(to: offset)
            try active.offsetIndex.resize(maxIndexSize: _config.segmentIndexBytes)
            try active.timeIndex.resize(maxIndexSize: _config.segmentIndexBytes)
            let newEnd = active.nextOffset
            try epochCache.truncate(fromEnd: newEnd)
            // Snapshots past the new end describe batches that are gone: delete them (made
            // durable by the directory sync below) and rebuild from an older one.
            _ = try loadProducerStateLocked(upTo: newEnd)
            // Kafka: min(log start, target); here the end may be below the target (a gap).
            _logStartOffset = min(_logStartOffset, newEnd)
            _recoveryPoint = min(_recoveryPoint, newEnd)
            _highWatermark = min(_highWatermark, newEnd)
            _cleanerCheckpoint = min(_cleanerCheckpoint, newEnd)
            try FileSystem.syncDirectory(dir)
        }
    }

    /// Deletes everything and restarts the log empty at `offset` (a follower far behind a
    /// log start, or a snapshot install).
    public func truncateFullyAndStart(at offset: Int64, nowMs: Int64) throws {
        try lock.withLock { try truncateFullyLocked(at: offset, nowMs: nowMs) }
    }

    private func truncateFullyLocked(at offset: Int64, nowMs: Int64) throws {
        truncationGeneration &+= 1
        for seg in segments { for f in seg.files { try FileSystem.remove(f) } }
        for s in try ProducerStateSnapshot.list(dir: dir) { try ProducerStateSnapshot.delete(offset: s, dir: dir) }
        producers = ProducerStateManager(mapEndOffset: offset)
        segments = [try newSegment(base: offset, nowMs: nowMs)]
        try epochCache.clear()
        _logStartOffset = offset
        _recoveryPoint = offset
        _highWatermark = offset
        _cleanerCheckpoint = offset
    }

    // MARK: producer state

    /// Rebuilds the producer state of the whole log: from the newest readable snapshot at or
    /// below `limit` (and not below the first segment, which would leave a gap), replaying
    /// the batches after it; from the first segment when there is none. Snapshots above
    /// `limit` are deleted (durably: a stale one must not come back after a crash once the
    /// log has grown past it again), as are corrupt ones. Returns whether batches were replayed.
    private func loadProducerStateLocked(upTo limit: Int64) throws -> Bool {
        let leo = activeSegment.nextOffset
        let physicalStart = segments[0].baseOffset
        var usable: [Int64] = []
        var deleted = false
        for s in try ProducerStateSnapshot.list(dir: dir) {
            if s > limit || s > leo || s < physicalStart {
                try ProducerStateSnapshot.delete(offset: s, dir: dir)
                deleted = true
            } else {
                usable.append(s)
            }
        }
        var loaded: ProducerStateManager? = nil
        for s in usable.reversed() {
            do {
                loaded = try ProducerStateSnapshot.read(offset: s, dir: dir)
                break
            } catch {
                logger.warning("ignoring corrupt producer state snapshot", metadata: [
                    "partition": "\(topicPartition)", "file": "\(ProducerStateSnapshot.fileName(s))", "reason": "\(error)",
                ])
                try ProducerStateSnapshot.delete(offset: s, dir: dir)
                deleted = true
            }
        }
        if deleted { try FileSystem.syncDirectory(dir) }
        producers = loaded ?? ProducerStateManager(mapEndOffset: physicalStart)
        let from = producers.mapEndOffset
        guard from < leo else { return false }
        try producers.replay(segments, from: from)
        logger.debug("rebuilt producer state", metadata: [
            "partition": "\(topicPartition)", "snapshot": "\(loaded.map { "\($0.mapEndOffset)" } ?? "none")",
            "replayedFrom": "\(from)", "to": "\(leo)", "producers": "\(producers.count)",
        ])
        return true
    }

    /// Writes the producer state as the snapshot at the log end offset (on roll and close),
    /// then deletes snapshots no longer needed.
    private func writeProducerSnapshotLocked() throws {
        let leo = activeSegment.nextOffset
        producers.mapEndOffset = leo
        try ProducerStateSnapshot.write(producers, offset: leo, dir: dir)
        try deleteStaleProducerSnapshotsLocked()
    }

    /// Keeps the newest `maxProducerSnapshots` snapshots, and of those below the log start
    /// offset only the newest snapshot (the state of producers whose batches retention
    /// removed lives on in it, KIP-360). Deleting these needs no directory sync: an older
    /// snapshot that reappears after a crash is still correct.
    private func deleteStaleProducerSnapshotsLocked() throws {
        let offsets = try ProducerStateSnapshot.list(dir: dir)
        guard let newest = offsets.last else { return }
        for (i, s) in offsets.enumerated() where s != newest {
            if s < _logStartOffset || s < segments[0].baseOffset || i < offsets.count - Self.maxProducerSnapshots {
                try ProducerStateSnapshot.delete(offset: s, dir: dir)
            }
        }
    }

    // MARK: durability

    /// A group commit in progress: the segments to fsync and the recovery point that holds
    /// once they are, valid only if no truncation happened meanwhile.
    struct FlushPlan {
        let segments: [LogSegment]
        let target: Int64
        let generation: UInt64
    }

    /// Group commit: fsyncs every segment holding offsets below `offset` (default: all) and
    /// advances the recovery point. Many appends share one fsync; appends, rolls and
    /// truncations proceed while the fsync runs (it happens outside the lock). If the log was
    /// truncated meanwhile the recovery point is not advanced: offsets below the target may
    /// since have been rewritten by appends this fsync did not cover.
    public func flush(upTo offset: Int64? = nil) throws {
        guard let plan = planFlush(upTo: offset) else { return }
        for s in plan.segments { try s.flush() }
        completeFlush(plan)
    }

    /// First step of `flush(upTo:)`, under the lock.
    func planFlush(upTo offset: Int64?) -> FlushPlan? {
        lock.withLock {
            let leo = activeSegment.nextOffset
            let target = min(offset ?? leo, leo)
            guard target > _recoveryPoint else { return nil }
            if target == leo { unflushedMessages = 0 }
            return FlushPlan(segments: segments.filter { $0.nextOffset > _recoveryPoint && $0.baseOffset < target },
                             target: target, generation: truncationGeneration)
        }
    }

    /// Last step of `flush(upTo:)`, under the lock, after the plan's segments were fsynced.
    func completeFlush(_ plan: FlushPlan) {
        lock.withLock {
            guard plan.generation == truncationGeneration else { return }
            _recoveryPoint = max(_recoveryPoint, min(plan.target, activeSegment.nextOffset))
        }
    }

    /// Applies `flush.ms`: fsyncs if the last flush is older than it.
    public func flushIfDue(nowMs: Int64) throws {
        let due = lock.withLock { _config.flushMs != Int64.max && nowMs - lastFlushMs >= _config.flushMs }
        guard due else { return }
        try flush()
        lock.withLock { lastFlushMs = nowMs }
    }

    /// fsyncs the segments before the active one, so the recovery point reaches the active
    /// segment (Kafka flushes a rolled segment in the background soon after the roll). Then
    /// recovery after a crash scans only the active segment.
    public func flushInactiveSegments() throws {
        try flush(upTo: lock.withLock { activeSegment.baseOffset })
    }

    private func flushAllLocked() throws {
        for s in segments where s.nextOffset > _recoveryPoint || s === activeSegment { try s.flush() }
        _recoveryPoint = activeSegment.nextOffset
        unflushedMessages = 0
    }

    /// Flushes and trims the active segment's indexes (clean shutdown).
    public func close() throws {
        try lock.withLock {
            try flushAllLocked()
            try activeSegment.offsetIndex.trim()
            try activeSegment.timeIndex.trim()
            try writeProducerSnapshotLocked()
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
                try epochCache.truncate(fromStart: offset)
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
            _logStartOffset = max(_logStartOffset, segments[0].baseOffset)
            try epochCache.truncate(fromStart: _logStartOffset)
            for seg in deletable {
                try seg.changeSuffix(from: "", to: ".deleted")
                for f in seg.files { deletedFileTimes[FileSystem.fileName(of: f) + ".deleted"] = nowMs }
            }
            try deleteStaleProducerSnapshotsLocked()
            try FileSystem.syncDirectory(dir)
            return deletable.count
        }
    }

    /// Removes `.deleted` files once `file.delete.delay.ms` has passed since they were
    /// renamed (so reads already holding them finish first); all of them with `force`.
    /// The rename time is the `nowMs` of the retention pass that renamed the file, the same
    /// clock as `nowMs` here; for a file this process did not rename (none normally: loading
    /// a log removes them) it is the file's inode change time.
    public func deleteDeletedFiles(nowMs: Int64, force: Bool = false) throws {
        let due: [String] = try lock.withLock {
            var due: [String] = []
            for name in try FileSystem.list(dir) where name.hasSuffix(".deleted") {
                let renamedAt = deletedFileTimes[name] ?? FileSystem.changeTimeMs(dir + "/" + name)
                if force || nowMs - renamedAt >= _config.fileDeleteDelayMs {
                    due.append(name)
                    deletedFileTimes[name] = nil
                }
            }
            return due
        }
        for name in due { try FileSystem.remove(dir + "/" + name) }
    }

    // MARK: for the cleaner

    /// What a cleaning pass starts from, read at one instant under the lock: the cleaner
    /// then works outside it and never reads a segment's mutable state.
    struct CleanerView {
        /// An inactive segment and its state when the view was taken.
        struct Segment {
            let segment: LogSegment
            let size: Int
            let nextOffset: Int64
            let largestTimestamp: Int64
            var baseOffset: Int64 { segment.baseOffset }
        }

        /// Every segment but the active one, oldest first.
        var inactiveSegments: [Segment]
        var logStartOffset: Int64
        var logEndOffset: Int64
        var highWatermark: Int64
        /// Compared again before anything is published (see `truncationGeneration`).
        var generation: UInt64
    }

    func cleanerView() -> CleanerView {
        lock.withLock {
            CleanerView(inactiveSegments: segments.dropLast().map {
                            CleanerView.Segment(segment: $0, size: $0.size, nextOffset: $0.nextOffset, largestTimestamp: $0.largestTimestamp)
                        },
                        logStartOffset: _logStartOffset, logEndOffset: activeSegment.nextOffset,
                        highWatermark: _highWatermark, generation: truncationGeneration)
        }
    }

    /// Records the end of a cleaning pass that started at `generation`; ignored if the log
    /// was truncated since.
    func commitCleanerCheckpoint(_ offset: Int64, generation: UInt64) {
        lock.withLock {
            guard generation == truncationGeneration else { return }
            _cleanerCheckpoint = min(max(offset, _logStartOffset), activeSegment.nextOffset)
        }
    }

    /// Replaces `old` (an inactive segment) with the cleaned log at `cleanedLog`, under the
    /// lock. Returns false, discarding the cleaned file, if the log was truncated since the
    /// pass began at `generation` (its offset map may hold records that are gone) or `old`
    /// is no longer an inactive segment of the log (deleted by retention meanwhile).
    func swapIn(cleanedLog: String, replacing old: LogSegment, generation: UInt64, crashPoint: CleanerCrashPoint?) throws -> Bool {
        try lock.withLock {
            guard generation == truncationGeneration,
                  let i = segments.firstIndex(where: { $0 === old }), i < segments.count - 1
            else {
                try FileSystem.remove(cleanedLog)
                return false
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
            let fresh = try LogSegment(dir: dir, baseOffset: base, indexIntervalBytes: _config.indexIntervalBytes,
                                       maxIndexSize: _config.segmentIndexBytes, nowMs: old.createdMs)
            _ = try fresh.recover(maxBatchSize: Int(Int32.max))
            try fresh.onBecomeInactive()
            try fresh.flush()
            segments[i] = fresh
            return true
        }
    }
}
