import FjordRecords

/// `cleanup.policy` values.
public enum CleanupPolicy: String, Sendable, CaseIterable {
    case delete
    case compact
}

/// Per-log settings, with Kafka's topic-level keys and defaults.
public struct LogConfig: Sendable, Equatable {
    /// `segment.bytes`: roll the active segment at this size (1 GiB).
    public var segmentBytes: Int = 1 << 30
    /// `segment.ms`: roll after this long even if not full (7 days).
    public var segmentMs: Int64 = 7 * 24 * 3600 * 1000
    /// `segment.index.bytes`: preallocated size of each index file (10 MiB).
    public var segmentIndexBytes: Int = 10 * 1024 * 1024
    /// `index.interval.bytes`: bytes of log between offset index entries (4096).
    public var indexIntervalBytes: Int = 4096
    /// `max.message.bytes`: largest record batch accepted (1048588).
    public var maxMessageBytes: Int = 1_048_588
    /// `message.timestamp.type`: CreateTime or LogAppendTime.
    public var messageTimestampType: TimestampType = .createTime
    /// `flush.messages`: fsync after this many messages (effectively never by default).
    public var flushMessages: Int64 = Int64.max
    /// `flush.ms`: fsync at least this often (effectively never by default).
    public var flushMs: Int64 = Int64.max
    /// `retention.ms`: delete segments whose newest record is older (7 days; -1 = forever).
    public var retentionMs: Int64 = 7 * 24 * 3600 * 1000
    /// `retention.bytes`: delete oldest segments beyond this total size (-1 = no limit).
    public var retentionBytes: Int64 = -1
    /// `cleanup.policy`: delete, compact, or both.
    public var cleanupPolicy: Set<CleanupPolicy> = [.delete]
    /// `min.cleanable.dirty.ratio` (0.5).
    public var minCleanableDirtyRatio: Double = 0.5
    /// `delete.retention.ms`: how long tombstones survive compaction (1 day).
    public var deleteRetentionMs: Int64 = 24 * 3600 * 1000
    /// `min.compaction.lag.ms` (0).
    public var minCompactionLagMs: Int64 = 0
    /// `file.delete.delay.ms`: delay before `.deleted` files are removed (60 s).
    public var fileDeleteDelayMs: Int64 = 60_000
    /// Bound on a batch's decompressed size during validation.
    public var maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes

    public init() {}

    public var isCompacted: Bool { cleanupPolicy.contains(.compact) }

    /// Applies topic-level overrides (`segment.bytes=...`); unknown keys are ignored here
    /// (the config layer validates names), bad values throw.
    public init(overrides: [String: String], base: LogConfig = LogConfig()) throws {
        self = base
        func int(_ k: String, _ v: String) throws -> Int64 {
            guard let n = Int64(v) else { throw StorageError("invalid value \(v) for configuration \(k)") }
            return n
        }
        for (k, v) in overrides {
            switch k {
            case "segment.bytes": segmentBytes = Int(try int(k, v))
            case "segment.ms": segmentMs = try int(k, v)
            case "segment.index.bytes": segmentIndexBytes = Int(try int(k, v))
            case "index.interval.bytes": indexIntervalBytes = Int(try int(k, v))
            case "max.message.bytes": maxMessageBytes = Int(try int(k, v))
            case "flush.messages": flushMessages = try int(k, v)
            case "flush.ms": flushMs = try int(k, v)
            case "retention.ms": retentionMs = try int(k, v)
            case "retention.bytes": retentionBytes = try int(k, v)
            case "delete.retention.ms": deleteRetentionMs = try int(k, v)
            case "min.compaction.lag.ms": minCompactionLagMs = try int(k, v)
            case "file.delete.delay.ms": fileDeleteDelayMs = try int(k, v)
            case "min.cleanable.dirty.ratio":
                guard let d = Double(v), d >= 0, d <= 1 else { throw StorageError("invalid value \(v) for configuration \(k)") }
                minCleanableDirtyRatio = d
            case "message.timestamp.type":
                switch v {
                case "CreateTime": messageTimestampType = .createTime
                case "LogAppendTime": messageTimestampType = .logAppendTime
                default: throw StorageError("invalid value \(v) for configuration \(k)")
                }
            case "cleanup.policy":
                var set: Set<CleanupPolicy> = []
                for p in v.split(separator: ",") {
                    guard let c = CleanupPolicy(rawValue: String(p.filter { $0 != " " })) else {
                        throw StorageError("invalid value \(v) for configuration \(k)")
                    }
                    set.insert(c)
                }
                cleanupPolicy = set
            default: break
            }
        }
        guard segmentBytes >= 14 else { throw StorageError("segment.bytes must be at least 14") }
    }
}
