import Foundation
import FjordProtocol
import FjordRaft
import FjordRecords
import FjordStorage
import NIOCore

/// The metadata log `__cluster_metadata-0` on disk: a `RaftLog` over a `PartitionLog`.
/// Appends are buffered in the page cache; `flush()` fsyncs them (the recovery point is the
/// durable end).
public final class StorageRaftLog: RaftLog, @unchecked Sendable {
    public let partition: PartitionLog
    private let clock: @Sendable () -> Int64
    /// The directory: the log's segments, `quorum-state` and the snapshots.
    public let dir: String
    /// Complete snapshots, oldest first.
    public private(set) var snapshotIds: [SnapshotId]
    /// A snapshot being fetched from the leader: its `.part` file and bytes written so far.
    private var fetching: (id: SnapshotId, file: StorageFile, written: Int64)?

    /// Opens the snapshots beside `partition`'s log. A log that ends before the newest
    /// snapshot (a crash while installing one fetched from the leader) restarts empty at the
    /// snapshot; a log prefix covered by the oldest snapshot is no longer served.
    public init(partition: PartitionLog, clock: @escaping @Sendable () -> Int64) throws {
        self.partition = partition
        self.clock = clock
        self.dir = partition.dir
        self.snapshotIds = try SnapshotFile.list(dir: partition.dir)
        if let latest = snapshotIds.last, partition.logEndOffset < latest.endOffset {
            try partition.truncateFullyAndStart(at: latest.endOffset, nowMs: clock())
            try deleteSnapshots(before: latest)
        } else if let earliest = snapshotIds.first, earliest.endOffset > partition.logStartOffset {
            partition.highWatermark = max(partition.highWatermark, earliest.endOffset)
            try partition.deleteRecords(before: earliest.endOffset)
        }
    }

    public var startOffset: Int64 { partition.logStartOffset }
    public var endOffset: Int64 { partition.logEndOffset }
    public var flushedEndOffset: Int64 { partition.recoveryPoint }
    public var lastFetchedEpoch: Int32 {
        if let e = partition.leaderEpochCache.latestEpoch { return e }
        // An empty log that starts at a snapshot: the snapshot's epoch.
        if let s = snapshotIds.first(where: { $0.endOffset == partition.logEndOffset }) { return s.epoch }
        return -1
    }

    // MARK: snapshots

    public var latestSnapshotId: SnapshotId? { snapshotIds.last }
    public var earliestSnapshotId: SnapshotId? { snapshotIds.first }

    public func readSnapshot(_ id: SnapshotId, position: Int64, maxBytes: Int) throws -> (bytes: ByteBuffer, size: Int64)? {
        guard snapshotIds.contains(id) else { return nil }
        let f = try StorageFile(path: dir + "/" + id.fileName, readOnly: true)
        let size = Int64(try f.size())
        guard position >= 0, position <= size else { throw StorageError("position \(position) outside snapshot \(id) of \(size) bytes") }
        let n = Int(min(Int64(max(0, maxBytes)), size - position))
        return (try f.read(at: Int(position), count: n), size)
    }

    /// The record values of snapshot `id` (validated: header, CRCs, footer).
    public func readSnapshotValues(_ id: SnapshotId) throws -> [ByteBuffer] {
        try SnapshotFile.decode(try FileSystem.readBytes(dir + "/" + id.fileName))
    }

    public func writeFetchedSnapshot(_ id: SnapshotId, position: Int64, bytes: ByteBuffer) throws {
        if position == 0 || fetching?.id != id {
            let f = try StorageFile(path: dir + "/" + id.fileName + ".part", create: true)
            try f.truncate(to: 0)
            fetching = (id, f, 0)
        }
        guard let cur = fetching, cur.written == position else {
            throw StorageError("snapshot chunk at \(position) does not follow the \(fetching?.written ?? 0) bytes written")
        }
        try cur.file.write(bytes, at: Int(position))
        fetching = (id, cur.file, position + Int64(bytes.readableBytes))
    }

    public func installFetchedSnapshot(_ id: SnapshotId) throws {
        guard let cur = fetching, cur.id == id else { throw StorageError("no snapshot \(id) is being fetched") }
        fetching = nil
        try cur.file.sync()
        // Only a whole, valid snapshot replaces the log.
        _ = try SnapshotFile.decode(try FileSystem.readBytes(dir + "/" + id.fileName + ".part"))
        try FileSystem.rename(dir + "/" + id.fileName + ".part", dir + "/" + id.fileName)
        try FileSystem.syncDirectory(dir)
        if !snapshotIds.contains(id) { snapshotIds.append(id); snapshotIds.sort() }
        try partition.truncateFullyAndStart(at: id.endOffset, nowMs: clock())
        try deleteSnapshots(before: id)
    }

    /// Registers snapshot `id`, which `SnapshotFile.write` made durable (on the Raft loop).
    public func snapshotCreated(_ id: SnapshotId) {
        if !snapshotIds.contains(id) { snapshotIds.append(id); snapshotIds.sort() }
    }

    /// KRaft's retention (`metadata.max.retention.bytes`, `metadata.max.retention.ms`): once
    /// the log and snapshots together exceed the size, or the oldest snapshot the age, the
    /// log before the newest snapshot and the older snapshots are deleted. Lagging replicas
    /// then catch up with FetchSnapshot. Returns the new log start offset if it moved.
    @discardableResult
    public func applyRetention(maxBytes: Int64, maxAgeMs: Int64, committed: Int64, nowMs: Int64) throws -> Int64? {
        guard let latest = snapshotIds.last, latest.endOffset > partition.logStartOffset, latest.endOffset <= committed else { return nil }
        var total = Int64(partition.sizeInBytes)
        var oldestMs = nowMs
        for id in snapshotIds {
            let path = dir + "/" + id.fileName
            total += Int64((try? StorageFile(path: path, readOnly: true).size()) ?? 0)
            oldestMs = min(oldestMs, FileSystem.changeTimeMs(path))
        }
        let tooBig = maxBytes >= 0 && total > maxBytes
        let tooOld = maxAgeMs >= 0 && snapshotIds.count > 1 && nowMs - oldestMs > maxAgeMs
        guard tooBig || tooOld else { return nil }
        partition.highWatermark = max(partition.highWatermark, latest.endOffset)
        try partition.deleteRecords(before: latest.endOffset)
        try partition.deleteOldSegments(nowMs: nowMs)
        try partition.deleteDeletedFiles(nowMs: nowMs, force: true)
        try deleteSnapshots(before: latest)
        return partition.logStartOffset
    }

    private func deleteSnapshots(before id: SnapshotId) throws {
        let old = snapshotIds.filter { $0 < id }
        for o in old { try FileSystem.remove(dir + "/" + o.fileName) }
        snapshotIds.removeAll { $0 < id }
        if !old.isEmpty { try FileSystem.syncDirectory(dir) }
    }

    public func endOffset(forEpoch epoch: Int32) -> (epoch: Int32, endOffset: Int64) {
        guard epoch >= 0 else { return (-1, -1) }
        let r = partition.endOffset(forLeaderEpoch: epoch)
        // Raft wants the largest epoch ≤ the requested one; an epoch below every known one
        // has none (Kafka's cache answers with the requested epoch and the first start).
        if r.epoch < 0 || r.epoch > epoch { return (-1, -1) }
        return r
    }

    public func appendAsLeader(_ records: [ByteBuffer], epoch: Int32, nowMs: Int64) throws -> ClosedRange<Int64> {
        var b = RecordBatchBuilder(partitionLeaderEpoch: epoch)
        for r in records { b.append(key: nil, value: r, timestamp: nowMs) }
        let info = try partition.appendAsLeader(try b.build().buffer, leaderEpoch: epoch, nowMs: nowMs, origin: .raftLeader)
        return info.firstOffset...info.lastOffset
    }

    public func appendLeaderChange(epoch: Int32, leaderId: Int32, voters: [Int32], nowMs: Int64) throws -> Int64 {
        var msg = LeaderChangeMessage()
        msg.leaderId = leaderId
        msg.voters = voters.map { var v = LeaderChangeMessage.Voter(); v.voterId = $0; return v }
        msg.grantingVoters = msg.voters
        let batch = try RecordBatchBuilder.controlBatch(type: .leaderChange, value: try msg.encoded(version: 0),
                                                        partitionLeaderEpoch: epoch, timestamp: nowMs)
        return try partition.appendAsLeader(batch.buffer, leaderEpoch: epoch, nowMs: nowMs, origin: .raftLeader).firstOffset
    }

    public func appendAsFollower(_ batches: ByteBuffer) throws {
        try partition.appendAsFollower(batches, nowMs: clock())
    }

    public func read(from offset: Int64, maxBytes: Int) throws -> ByteBuffer {
        try partition.readBytes(from: offset, maxBytes: maxBytes)
    }

    public func truncate(to offset: Int64) throws {
        try partition.truncate(to: offset)
    }

    public func flush() throws {
        try partition.flush()
    }
}

/// The `quorum-state` file: the election state, written atomically and fsynced before any
/// message that depends on it leaves. Kafka writes `QuorumStateData` as JSON; so do we.
public struct QuorumStateFile: Sendable {
    public let path: String

    public init(dir: String) { path = dir + "/quorum-state" }

    public func read() throws -> ElectionState? {
        guard FileSystem.exists(path) else { return nil }
        let text = try FileSystem.readString(path)
        func int(_ key: String) -> Int64? {
            guard let r = text.range(of: "\"\(key)\":") else { return nil }
            let digits = text[r.upperBound...].drop(while: { $0 == " " }).prefix(while: { $0 == "-" || $0.isNumber })
            return Int64(digits)
        }
        guard let epoch = int("leaderEpoch") else { throw StorageError("malformed quorum-state file \(path)") }
        return ElectionState(epoch: Int32(max(0, epoch)), votedId: Int32(int("votedId") ?? -1), leaderId: Int32(int("leaderId") ?? -1))
    }

    public func write(_ s: ElectionState) throws {
        let json = "{\"leaderId\":\(s.leaderId),\"leaderEpoch\":\(s.epoch),\"votedId\":\(s.votedId),"
            + "\"votedDirectoryId\":\"\(KafkaUUIDText.zero)\",\"data_version\":1}"
        try FileSystem.writeAtomically(path, contents: json)
    }
}

enum KafkaUUIDText {
    static let zero = "AAAAAAAAAAAAAAAAAAAAAA"
}
