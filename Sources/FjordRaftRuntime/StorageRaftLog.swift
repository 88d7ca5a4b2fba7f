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

    public init(partition: PartitionLog, clock: @escaping @Sendable () -> Int64) {
        self.partition = partition
        self.clock = clock
    }

    public var startOffset: Int64 { partition.logStartOffset }
    public var endOffset: Int64 { partition.logEndOffset }
    public var flushedEndOffset: Int64 { partition.recoveryPoint }
    public var lastFetchedEpoch: Int32 { partition.leaderEpochCache.latestEpoch ?? -1 }

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
