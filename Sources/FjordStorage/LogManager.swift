#if canImport(Glibc)
import Glibc
#endif
import FjordWire
import Logging
import NIOConcurrencyHelpers

/// An exclusive lock on a log directory's `.lock` file, held while the directory is open,
/// so two processes can never write the same logs.
public final class DirectoryLock: @unchecked Sendable {
    public let path: String
    private let fd: CInt

    public init(dir: String) throws {
        path = dir + "/.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.errno("cannot open", path) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StorageError("Failed to acquire lock on file .lock in \(dir). A Fjord instance in another process or thread is using this directory.")
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// All partition logs of one or more log directories (`log.dirs`): locking, checkpoints,
/// the clean-shutdown marker, creation and deletion of logs, periodic flush, retention and
/// compaction.
public final class LogManager: @unchecked Sendable {
    public static let recoveryPointCheckpoint = "recovery-point-offset-checkpoint"
    public static let logStartOffsetCheckpoint = "log-start-offset-checkpoint"
    public static let replicationOffsetCheckpoint = "replication-offset-checkpoint"
    public static let cleanerOffsetCheckpoint = "cleaner-offset-checkpoint"
    public static let cleanShutdownMarker = ".kafka_cleanshutdown"

    public let logDirs: [String]
    /// Settings below: set them before the manager is shared between threads.
    public var defaultConfig: LogConfig
    /// `log.flush.offset.checkpoint.interval.ms` and `log.flush.start.offset.checkpoint.interval.ms`
    /// (60 s): how often `runMaintenance` writes the recovery-point and log-start checkpoints.
    public var offsetCheckpointIntervalMs: Int64 = 60_000
    /// `replica.high.watermark.checkpoint.interval.ms` (5 s): how often `runMaintenance`
    /// writes `replication-offset-checkpoint`.
    public var highWatermarkCheckpointIntervalMs: Int64 = 5_000
    /// The compactor `runCleaner` uses.
    public var cleaner = LogCleaner()
    private let lock = NIOLock()
    private var logs: [TopicPartition: (log: PartitionLog, dir: String)] = [:]
    private var locks: [DirectoryLock] = []
    private var lastOffsetCheckpointMs: Int64
    private var lastHighWatermarkCheckpointMs: Int64
    /// Per compacted log, the earliest delete horizon of tombstones still in it (from the
    /// cleaner): once passed, the log is cleaned even if not dirty enough (in memory only).
    private var pendingDeleteHorizons: [TopicPartition: Int64] = [:]
    private let logger: Logger
    /// Partition directories managed elsewhere (the KRaft metadata log).
    private let reserved: Set<String>

    /// Opens every log directory: takes its lock, reads checkpoints, recovers each partition
    /// (fully after an unclean shutdown, from the recovery point otherwise).
    public init(logDirs: [String], defaultConfig: LogConfig, topicConfigs: (String) -> LogConfig? = { _ in nil },
                reserved: Set<String> = ["__cluster_metadata-0"], nowMs: Int64, logger: Logger = Logger(label: "fjord.logmanager")) throws {
        self.logDirs = logDirs
        self.defaultConfig = defaultConfig
        self.logger = logger
        self.reserved = reserved
        self.lastOffsetCheckpointMs = nowMs
        self.lastHighWatermarkCheckpointMs = nowMs
        for dir in logDirs {
            try FileSystem.createDirectory(dir)
            locks.append(try DirectoryLock(dir: dir))
            let marker = dir + "/" + Self.cleanShutdownMarker
            let clean = FileSystem.exists(marker)
            let recovery = try OffsetCheckpointFile.read(dir + "/" + Self.recoveryPointCheckpoint)
            let starts = try OffsetCheckpointFile.read(dir + "/" + Self.logStartOffsetCheckpoint)
            let highWatermarks = try OffsetCheckpointFile.read(dir + "/" + Self.replicationOffsetCheckpoint)
            let cleaned = try OffsetCheckpointFile.read(dir + "/" + Self.cleanerOffsetCheckpoint)
            var loaded = 0
            for name in try FileSystem.list(dir) where FileSystem.isDirectory(dir + "/" + name) && !reserved.contains(name) {
                if name.hasSuffix("-delete") {
                    try FileSystem.removeTree(dir + "/" + name)
                    continue
                }
                guard let tp = TopicPartition(directoryName: name) else { continue }
                let cfg = topicConfigs(tp.topic) ?? defaultConfig
                let log = try PartitionLog(dir: dir + "/" + name, topicPartition: tp, config: cfg,
                                           recoveryPoint: recovery[tp] ?? 0, logStartOffset: starts[tp] ?? 0,
                                           highWatermark: highWatermarks[tp], cleanerCheckpoint: cleaned[tp],
                                           hadCleanShutdown: clean, nowMs: nowMs, logger: logger)
                logs[tp] = (log, dir)
                loaded += 1
            }
            if clean {
                // Durably consumed: a crash from here on must not be taken for a clean shutdown.
                try FileSystem.remove(marker)
                try FileSystem.syncDirectory(dir)
            }
            logger.info("loaded log directory", metadata: ["dir": "\(dir)", "partitions": "\(loaded)", "cleanShutdown": "\(clean)"])
        }
    }

    public func log(for tp: TopicPartition) -> PartitionLog? {
        lock.withLock { logs[tp]?.log }
    }

    public var allLogs: [TopicPartition: PartitionLog] {
        lock.withLock { logs.mapValues(\.log) }
    }

    /// Returns the log, creating it (in the directory with the fewest partitions) if needed.
    public func getOrCreateLog(_ tp: TopicPartition, topicId: KafkaUUID?, config: LogConfig? = nil, nowMs: Int64) throws -> PartitionLog {
        try lock.withLock {
            if let l = logs[tp] { return l.log }
            let counts = Dictionary(grouping: logs.values, by: \.dir).mapValues(\.count)
            let dir = logDirs.min { counts[$0, default: 0] < counts[$1, default: 0] }!
            let path = dir + "/" + tp.description
            let log = try PartitionLog(dir: path, topicPartition: tp, config: config ?? defaultConfig, nowMs: nowMs, logger: logger)
            if let topicId { try PartitionMetadataFile.write(dir: path, topicId: topicId) }
            try FileSystem.syncDirectory(dir)
            logs[tp] = (log, dir)
            return log
        }
    }

    /// Removes a partition's log: renamed `<tp>.<uuid>-delete` at once, files removed after.
    public func deleteLog(_ tp: TopicPartition) throws {
        let entry = lock.withLock {
            pendingDeleteHorizons[tp] = nil
            return logs.removeValue(forKey: tp)
        }
        guard let (log, dir) = entry else { return }
        let tomb = "\(dir)/\(tp).\(KafkaUUID.random().description.filter { $0 != "-" && $0 != "_" })-delete"
        try FileSystem.rename(log.dir, tomb)
        try FileSystem.syncDirectory(dir)
        try FileSystem.removeTree(tomb)
    }

    /// Writes every checkpoint file of every directory: recovery points, log start offsets,
    /// high watermarks (`replication-offset-checkpoint`) and cleaner positions.
    public func checkpoint() throws {
        try checkpointOffsets()
        try checkpointHighWatermarks()
        try checkpointCleaner()
    }

    /// `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint`.
    private func checkpointOffsets() throws {
        try writeCheckpoint(Self.recoveryPointCheckpoint) { $0.recoveryPoint }
        try writeCheckpoint(Self.logStartOffsetCheckpoint) { $0.logStartOffset }
    }

    /// `replication-offset-checkpoint`: the high watermarks.
    private func checkpointHighWatermarks() throws {
        try writeCheckpoint(Self.replicationOffsetCheckpoint) { $0.highWatermark }
    }

    /// `cleaner-offset-checkpoint`: where the cleaner resumes, for compacted logs.
    private func checkpointCleaner() throws {
        try writeCheckpoint(Self.cleanerOffsetCheckpoint, only: { $0.config.isCompacted }) { $0.cleanerCheckpoint }
    }

    private func writeCheckpoint(_ name: String, only include: (PartitionLog) -> Bool = { _ in true },
                                 _ value: (PartitionLog) -> Int64) throws {
        let snapshot = lock.withLock { logs }
        for dir in logDirs {
            var offsets: [TopicPartition: Int64] = [:]
            for (tp, entry) in snapshot where entry.dir == dir && include(entry.log) { offsets[tp] = value(entry.log) }
            try OffsetCheckpointFile.write(dir + "/" + name, offsets)
        }
    }

    /// Periodic work: `flush.ms`, the flush of rolled segments, retention, removal of
    /// `.deleted` files, and the checkpoints when their interval has passed (so DeleteRecords,
    /// the recovery point and the high watermark survive a crash).
    public func runMaintenance(nowMs: Int64) throws {
        for (_, log) in allLogs {
            try log.flushIfDue(nowMs: nowMs)
            try log.flushInactiveSegments()
            try log.deleteOldSegments(nowMs: nowMs)
            try log.deleteDeletedFiles(nowMs: nowMs)
        }
        let (offsetsDue, highWatermarksDue) = lock.withLock {
            (nowMs - lastOffsetCheckpointMs >= offsetCheckpointIntervalMs,
             nowMs - lastHighWatermarkCheckpointMs >= highWatermarkCheckpointIntervalMs)
        }
        if offsetsDue {
            try checkpointOffsets()
            lock.withLock { lastOffsetCheckpointMs = nowMs }
        }
        if highWatermarksDue {
            try checkpointHighWatermarks()
            lock.withLock { lastHighWatermarkCheckpointMs = nowMs }
        }
    }

    /// One round of compaction: cleans every compacted log whose dirty ratio is over its
    /// `min.cleanable.dirty.ratio`, or whose tombstones' delete horizon has passed, from its
    /// cleaner checkpoint; then writes `cleaner-offset-checkpoint`. Returns what was done.
    @discardableResult
    public func runCleaner(nowMs: Int64) throws -> [TopicPartition: CleanerStats] {
        var done: [TopicPartition: CleanerStats] = [:]
        for (tp, log) in allLogs.sorted(by: { $0.key < $1.key }) where log.config.isCompacted {
            let horizonPassed = lock.withLock { pendingDeleteHorizons[tp].map { $0 <= nowMs } ?? false }
            guard let stats = try cleaner.cleanIfNeeded(log, firstDirtyOffset: log.cleanerCheckpoint, nowMs: nowMs, force: horizonPassed) else {
                continue
            }
            lock.withLock { pendingDeleteHorizons[tp] = stats.earliestDeleteHorizonMs }
            done[tp] = stats
        }
        if !done.isEmpty { try checkpointCleaner() }
        return done
    }

    /// Clean shutdown: flush and close every log, checkpoint, then leave the marker that
    /// lets the next start skip recovery.
    public func shutdown() throws {
        for (_, log) in allLogs { try log.close() }
        try checkpoint()
        for dir in logDirs {
            try FileSystem.writeAtomically(dir + "/" + Self.cleanShutdownMarker, contents: "")
        }
        lock.withLock { logs.removeAll(); locks.removeAll() }
    }
}
