import FjordProtocol
import FjordRecords
import NIOCore

/// An in-memory `RaftLog` of real record batches, with an explicit durable prefix: the
/// simulation's disk. `crash()` drops what was not flushed (optionally leaving part of it,
/// as a torn write may), so lost unsynced writes are part of every run.
public final class MemoryRaftLog: RaftLog {
    public struct Entry: Equatable, Sendable {
        public var baseOffset: Int64
        public var lastOffset: Int64
        public var epoch: Int32
        public var bytes: ByteBuffer
    }

    public private(set) var entries: [Entry] = []
    public private(set) var startOffset: Int64 = 0
    /// How many leading entries are durable.
    private var durableCount = 0
    /// Appends to refuse (simulated full disk / I/O error), for fault tests.
    public var failAppends = false
    /// Complete snapshots (durable: written and synced before they are registered).
    public private(set) var snapshots: [SnapshotId: ByteBuffer] = [:]
    /// A snapshot being fetched (lost on a crash).
    private var partial: (id: SnapshotId, bytes: ByteBuffer)?

    public init() {}

    public var endOffset: Int64 { entries.last.map { $0.lastOffset + 1 } ?? startOffset }
    public var flushedEndOffset: Int64 { durableCount == 0 ? startOffset : entries[durableCount - 1].lastOffset + 1 }
    public var lastFetchedEpoch: Int32 {
        if let e = entries.last?.epoch { return e }
        if startOffset > 0, let s = earliestSnapshotId, s.endOffset == startOffset { return s.epoch }
        return -1
    }

    public var latestSnapshotId: SnapshotId? { snapshots.keys.max() }
    public var earliestSnapshotId: SnapshotId? { snapshots.keys.min() }

    public func readSnapshot(_ id: SnapshotId, position: Int64, maxBytes: Int) throws -> (bytes: ByteBuffer, size: Int64)? {
        guard let b = snapshots[id] else { return nil }
        let size = Int64(b.readableBytes)
        guard position >= 0, position <= size else { throw RecordBatchError.invalidRecord(reason: "position \(position) outside snapshot of \(size) bytes") }
        let n = Int(min(Int64(maxBytes), size - position))
        return (b.getSlice(at: b.readerIndex + Int(position), length: n) ?? ByteBuffer(), size)
    }

    public func writeFetchedSnapshot(_ id: SnapshotId, position: Int64, bytes: ByteBuffer) throws {
        if failAppends { throw RecordBatchError.invalidRecord(reason: "simulated disk failure") }
        if position == 0 || partial?.id != id { partial = (id, ByteBuffer()) }
        guard var p = partial, Int64(p.bytes.readableBytes) == position else {
            throw RecordBatchError.invalidRecord(reason: "snapshot chunk at \(position) does not follow the \(partial?.bytes.readableBytes ?? 0) bytes written")
        }
        var b = bytes
        p.bytes.writeBuffer(&b)
        partial = p
    }

    public func installFetchedSnapshot(_ id: SnapshotId) throws {
        guard let p = partial, p.id == id else { throw RecordBatchError.invalidRecord(reason: "no fetched snapshot \(id)") }
        partial = nil
        snapshots[id] = p.bytes
        entries = []
        durableCount = 0
        startOffset = id.endOffset
        for old in snapshots.keys where old < id { snapshots[old] = nil }
    }

    /// The state machine's own snapshot at `id` (committed state only), written durably.
    public func createSnapshot(_ id: SnapshotId, bytes: ByteBuffer) {
        snapshots[id] = bytes
    }

    /// Deletes the log before the latest snapshot and every older snapshot (what a
    /// retention pass does once the log has grown past its limits).
    public func deleteBeforeLatestSnapshot() {
        guard let latest = latestSnapshotId, latest.endOffset > startOffset, latest.endOffset <= flushedEndOffset else { return }
        entries.removeAll { $0.lastOffset < latest.endOffset }
        durableCount = entries.count
        startOffset = latest.endOffset
        for old in snapshots.keys where old < latest { snapshots[old] = nil }
    }

    public func endOffset(forEpoch epoch: Int32) -> (epoch: Int32, endOffset: Int64) {
        guard let i = entries.lastIndex(where: { $0.epoch <= epoch }) else { return (-1, -1) }
        let e = entries[i].epoch
        if let next = entries[(i + 1)...].first(where: { $0.epoch > e }) { return (e, next.baseOffset) }
        return (e, endOffset)
    }

    public func appendAsLeader(_ records: [ByteBuffer], epoch: Int32, nowMs: Int64) throws -> ClosedRange<Int64> {
        if failAppends { throw RecordBatchError.invalidRecord(reason: "simulated disk failure") }
        var b = RecordBatchBuilder(baseOffset: endOffset, partitionLeaderEpoch: epoch)
        for r in records { b.append(key: nil, value: r, timestamp: nowMs) }
        let batch = try b.build()
        entries.append(Entry(baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, epoch: epoch, bytes: batch.buffer))
        return batch.baseOffset...batch.lastOffset
    }

    public func appendLeaderChange(epoch: Int32, leaderId: Int32, voters: [Int32], nowMs: Int64) throws -> Int64 {
        if failAppends { throw RecordBatchError.invalidRecord(reason: "simulated disk failure") }
        var msg = LeaderChangeMessage()
        msg.version = 0
        msg.leaderId = leaderId
        msg.voters = voters.map { var v = LeaderChangeMessage.Voter(); v.voterId = $0; return v }
        msg.grantingVoters = msg.voters
        let value = try msg.encoded(version: 0)
        let batch = try RecordBatchBuilder.controlBatch(type: .leaderChange, value: value, baseOffset: endOffset,
                                                        partitionLeaderEpoch: epoch, timestamp: nowMs)
        entries.append(Entry(baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, epoch: epoch, bytes: batch.buffer))
        return batch.baseOffset
    }

    public func appendAsFollower(_ batches: ByteBuffer) throws {
        if failAppends { throw RecordBatchError.invalidRecord(reason: "simulated disk failure") }
        var next = endOffset
        var staged: [Entry] = []
        for batch in try RecordBatchReader.batches(in: batches) {
            try batch.validate()
            guard batch.baseOffset == next else {
                throw RecordBatchError.invalidRecord(reason: "replicated batch at \(batch.baseOffset), expected \(next)")
            }
            staged.append(Entry(baseOffset: batch.baseOffset, lastOffset: batch.lastOffset,
                                epoch: batch.partitionLeaderEpoch, bytes: batch.buffer))
            next = batch.lastOffset + 1
        }
        entries.append(contentsOf: staged)
    }

    public func read(from offset: Int64, maxBytes: Int) throws -> ByteBuffer {
        var out = ByteBuffer()
        guard let i = entries.firstIndex(where: { $0.lastOffset >= offset }) else { return out }
        for e in entries[i...] {
            if out.readableBytes > 0 && out.readableBytes + e.bytes.readableBytes > maxBytes { break }
            out.writeImmutableBuffer(e.bytes)
        }
        return out
    }

    public func truncate(to offset: Int64) throws {
        entries.removeAll { $0.baseOffset >= offset }
        // Whole batches only: a batch straddling `offset` goes too (Kafka truncates by batch).
        if let last = entries.last, last.lastOffset >= offset { entries.removeLast() }
        durableCount = min(durableCount, entries.count)
    }

    public func flush() throws {
        durableCount = entries.count
    }

    /// A crash: unflushed entries are lost; with `keepUnflushed` > 0 that many of them
    /// survive (the OS wrote them before the crash without an fsync).
    public func crash(keepUnflushed: Int = 0) {
        let keep = min(entries.count, durableCount + keepUnflushed)
        entries.removeSubrange(keep...)
        durableCount = entries.count
        partial = nil
        // A snapshot may cover records that were never flushed: the log restarts at it (the
        // on-disk log does the same when it opens behind its newest snapshot).
        if let latest = latestSnapshotId, endOffset < latest.endOffset {
            entries = []
            durableCount = 0
            startOffset = latest.endOffset
            for old in snapshots.keys where old < latest { snapshots[old] = nil }
        }
    }

    /// (offset, epoch) of every record offset's batch, for invariant checks.
    public func epochs(upTo end: Int64) -> [(offset: Int64, epoch: Int32, baseOffset: Int64)] {
        entries.filter { $0.baseOffset < end }.map { ($0.lastOffset, $0.epoch, $0.baseOffset) }
    }
}
