import FjordRaft
import FjordRecords
import NIOCore

/// One record of a committed batch: its offset and value.
public struct CommittedRecord: Sendable {
    public let offset: Int64
    public let value: ByteBuffer
}

/// One committed batch of the metadata log, as a `RaftListener` receives it. Every offset
/// of it is below the high watermark.
public struct CommittedBatch: Sendable {
    public let baseOffset: Int64
    public let lastOffset: Int64
    /// The epoch of the leader that appended it.
    public let epoch: Int32
    /// The batch's max timestamp (the leader's append time).
    public let appendTimestamp: Int64
    public let sizeInBytes: Int
    /// A KRaft control batch (LeaderChangeMessage, snapshot markers, voters): `records`
    /// is empty.
    public let isControl: Bool
    /// The data records with a value, in offset order.
    public let records: [CommittedRecord]
}

/// A snapshot the listener must load in place of its state: every record below
/// `id.endOffset` is in it.
public struct SnapshotReader: Sendable {
    public let id: SnapshotId
    /// The data records' values, in order (header and footer control records left out).
    public let values: [ByteBuffer]
}

/// The state machine above the Raft runtime (Kafka's `RaftClient.Listener`): the
/// controller's metadata image follows the committed log through it. Every call comes on
/// the runtime's loop, in log order: a listener sees each committed batch exactly once,
/// after the snapshot it starts from, and never a batch past the high watermark.
public protocol RaftListener: AnyObject, Sendable {
    /// Batches committed since the last call (or the last snapshot), in offset order.
    func handleCommit(_ batches: [CommittedBatch])
    /// Replace the state with `snapshot`: at registration when the node has one, and when
    /// the log the listener still needs is gone behind one (a snapshot fetched from the
    /// leader, or a log trimmed behind a snapshot). The next batch starts at its end offset.
    func handleLoadSnapshot(_ snapshot: SnapshotReader)
    /// The node learned of a new epoch or leader (`leaderId` -1: none known yet).
    func handleLeaderChange(epoch: Int32, leaderId: Int32)
}

/// A registered listener and the next offset it needs.
final class ListenerState {
    let listener: RaftListener
    var nextOffset: Int64
    var loadedSnapshot: SnapshotId?

    init(_ listener: RaftListener, nextOffset: Int64) {
        self.listener = listener
        self.nextOffset = nextOffset
    }
}

extension CommittedBatch {
    /// The batches of `bytes` (a log read) from `from` that end below `highWatermark`;
    /// stops at the first batch that does not.
    static func decode(_ bytes: ByteBuffer, from: Int64, below highWatermark: Int64) throws -> [CommittedBatch] {
        var out: [CommittedBatch] = []
        for item in RecordBatchReader(bytes) {
            guard case let .batch(batch, _) = item else { break }
            if batch.lastOffset < from { continue }
            if batch.lastOffset >= highWatermark { break }
            var records: [CommittedRecord] = []
            if !batch.isControl {
                try batch.forEachRecord { record in
                    guard record.offset >= from, let value = record.value else { return }
                    records.append(CommittedRecord(offset: record.offset, value: value))
                }
            }
            out.append(CommittedBatch(baseOffset: batch.baseOffset, lastOffset: batch.lastOffset,
                                      epoch: batch.partitionLeaderEpoch, appendTimestamp: batch.maxTimestamp,
                                      sizeInBytes: batch.sizeInBytes, isControl: batch.isControl, records: records))
        }
        return out
    }
}
