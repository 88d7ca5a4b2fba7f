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
}
