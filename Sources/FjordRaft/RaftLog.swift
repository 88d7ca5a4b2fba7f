import FjordRecords
import NIOCore

/// The replicated log as the Raft core sees it. Appends and truncations are buffered by the
/// implementation; they are durable only up to `flushedEndOffset`, which advances when the
/// shell executes a `RaftReady` that asks for a flush. Reads see unflushed data.
public protocol RaftLog: AnyObject {
    /// The first offset in the log (after a snapshot or deleted prefix).
    var startOffset: Int64 { get }
    /// The offset after the last entry.
    var endOffset: Int64 { get }
    /// The offset up to which entries are known durable.
    var flushedEndOffset: Int64 { get }
    /// The epoch of the last entry; -1 for an empty log.
    var lastFetchedEpoch: Int32 { get }
    /// The largest epoch ≤ `epoch` held in the log, and the offset where it ends (the start of
    /// the next epoch, or the end offset). (-1, -1) if the log has no such epoch.
    func endOffset(forEpoch epoch: Int32) -> (epoch: Int32, endOffset: Int64)
    /// Appends a batch of `records` (each a record value) as the leader of `epoch`; returns
    /// the offsets it took.
    func appendAsLeader(_ records: [ByteBuffer], epoch: Int32, nowMs: Int64) throws -> ClosedRange<Int64>
    /// Appends a control batch (LeaderChangeMessage) at the start of a leader's epoch.
    func appendLeaderChange(epoch: Int32, leaderId: Int32, voters: [Int32], nowMs: Int64) throws -> Int64
    /// Appends batches replicated from the leader (offsets and epochs kept).
    func appendAsFollower(_ batches: ByteBuffer) throws
    /// Up to `maxBytes` of batches from `offset` (at least one batch if any).
    func read(from offset: Int64, maxBytes: Int) throws -> ByteBuffer
    /// Removes entries at and after `offset`.
    func truncate(to offset: Int64) throws
    /// Makes everything appended so far durable.
    func flush() throws

    // MARK: snapshots (KIP-630)

    /// The newest complete snapshot, if any. A snapshot covers every record below its end
    /// offset and holds only committed state.
    var latestSnapshotId: SnapshotId? { get }
    /// The oldest snapshot kept. Once the log's prefix has been deleted (start offset > 0),
    /// a snapshot ending exactly at the start offset exists: it tells the epoch there.
    var earliestSnapshotId: SnapshotId? { get }
    /// Up to `maxBytes` of snapshot `id` from byte `position`, and its total size; nil if
    /// this node has no such snapshot (any more).
    func readSnapshot(_ id: SnapshotId, position: Int64, maxBytes: Int) throws -> (bytes: ByteBuffer, size: Int64)?
    /// Writes `bytes` at `position` of snapshot `id`, which is being fetched from the leader
    /// (position 0 starts it afresh).
    func writeFetchedSnapshot(_ id: SnapshotId, position: Int64, bytes: ByteBuffer) throws
    /// The fetched snapshot `id` is complete: make it durable and the newest snapshot, and
    /// restart the log empty at its end offset (the snapshot replaces everything before).
    func installFetchedSnapshot(_ id: SnapshotId) throws
}

/// A snapshot's identity: the offset it ends at (exclusive) and the epoch of the record
/// before that offset (Kafka's `OffsetAndEpoch` of a snapshot).
public struct SnapshotId: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var endOffset: Int64
    public var epoch: Int32

    public init(endOffset: Int64, epoch: Int32) {
        self.endOffset = endOffset
        self.epoch = epoch
    }

    public static func < (a: SnapshotId, b: SnapshotId) -> Bool { (a.endOffset, a.epoch) < (b.endOffset, b.epoch) }

    /// Kafka's file name: `%020d-%010d.checkpoint`.
    public var fileName: String {
        func pad(_ v: Int64, _ n: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, n - s.count)) + s }
        return "\(pad(endOffset, 20))-\(pad(Int64(epoch), 10)).checkpoint"
    }

    /// Parses a `%020d-%010d.checkpoint` file name.
    public init?(fileName: String) {
        guard fileName.hasSuffix(".checkpoint") else { return nil }
        let parts = fileName.dropLast(".checkpoint".count).split(separator: "-")
        guard parts.count == 2, parts[0].count == 20, parts[1].count == 10,
              let o = Int64(parts[0]), let e = Int32(parts[1]) else { return nil }
        self.init(endOffset: o, epoch: e)
    }

    public var description: String { "\(endOffset)-\(epoch)" }
}
