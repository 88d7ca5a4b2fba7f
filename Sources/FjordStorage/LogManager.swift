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
/// the clean-shutdown marker, creation and deletion of logs, periodic flush and retention.
public final class LogManager: @unchecked Sendable {
    public static let recoveryPointCheckpoint = "recovery-point-offset-checkpoint"
    public static let logStartOffsetCheckpoint = "log-start-offset-checkpoint"
    public static let replicationOffsetCheckpoint = "replication-offset-checkpoint"
    public static let cleanShutdownMarker = ".kafka_cleanshutdown"

    public let logDirs: [String]
    public var defaultConfig: LogConfig
    private let lock = NIOLock()
    private var logs: [TopicPartition: (log: PartitionLog, dir: String)] = [:]
    private var locks: [DirectoryLock] = []
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
        for dir in logDirs {
            try FileSystem.createDirectory(dir)
            locks.append(try DirectoryLock(dir: dir))
            let marker = dir + "/" + Self.cleanShutdownMarker
            let clean = FileSystem.exists(marker)
            let recovery = try OffsetCheckpointFile.read(dir + "/" + Self.recoveryPointCheckpoint)
            let starts = try OffsetCheckpointFile.read(dir + "/" + Self.logStartOffsetCheckpoint)
            for name in try FileSystem.list(dir) where FileSystem.isDirectory(dir + "/" + name) && !reserved.contains(name) {
                if name.hasSuffix("-delete") {
                    try FileSystem.removeTree(dir + "/" + name)
                    continue
                }
                guard let tp = TopicPartition(directoryName: name) else { continue }
                let cfg = topicConfigs(tp.topic) ?? defaultConfig
                let log = try PartitionLog(dir: dir + "/" + name, topicPartition: tp, config: cfg,
                                           recoveryPoint: recovery[tp] ?? 0, logStartOffset: starts[tp] ?? 0,
                                           hadCleanShutdown: clean, nowMs: nowMs, logger: logger)
                logs[tp] = (log, dir)
            }
            if clean { try FileSystem.remove(marker) }
            logger.info("loaded log directory", metadata: ["dir": "\(dir)", "partitions": "\(logs.count)", "cleanShutdown": "\(clean)"])
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
        let entry = lock.withLock { logs.removeValue(forKey: tp) }
        guard let (log, dir) = entry else { return }
        let tomb = "\(dir)/\(tp).\(KafkaUUID.random().description.filter { $0 != "-" && $0 != "_" })-delete"
        try FileSystem.rename(log.dir, tomb)
        try FileSystem.syncDirectory(dir)
        try FileSystem.removeTree(tomb)
    }

    /// Writes the recovery-point and log-start-offset checkpoints of every directory.
    public func checkpoint() throws {
        let snapshot = lock.withLock { logs }
        for dir in logDirs {
            let mine = snapshot.filter { $0.value.dir == dir }
            try OffsetCheckpointFile.write(dir + "/" + Self.recoveryPointCheckpoint, mine.mapValues { $0.log.recoveryPoint })
            try OffsetCheckpointFile.write(dir + "/" + Self.logStartOffsetCheckpoint, mine.mapValues { $0.log.logStartOffset })
        }
    }

    /// Periodic work: `flush.ms`, retention, removal of `.deleted` files.
    public func runMaintenance(nowMs: Int64) throws {
        for (_, log) in allLogs {
            try log.flushIfDue(nowMs: nowMs)
            try log.deleteOldSegments(nowMs: nowMs)
            try log.deleteDeletedFiles()
        }
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
