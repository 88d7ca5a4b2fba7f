import FjordProtocol
import FjordRecords
@testable import FjordStorage
import FjordTestSupport
import NIOCore
import XCTest

/// A batch of an idempotent producer: `count` records, sequences from `seq`.
func producerBatch(pid: Int64, epoch: Int16, seq: Int32, count: Int = 3, baseOffset: Int64 = 0,
                   timestamp: Int64 = 1_700_000_000_000, valueSize: Int = 40) throws -> ByteBuffer {
    var b = RecordBatchBuilder(baseOffset: baseOffset, producerId: pid, producerEpoch: epoch, baseSequence: seq)
    for i in 0..<count {
        var v = ByteBuffer(string: "p\(pid)-e\(epoch)-s\(seq)-\(i)-")
        v.writeRepeatingByte(UInt8(ascii: "x"), count: max(0, valueSize - v.readableBytes))
        b.append(key: ByteBuffer(string: "k\(i)"), value: v, timestamp: timestamp + Int64(i))
    }
    return try b.build().buffer
}

private func code(_ body: @autoclosure () throws -> Any) -> ErrorCode? {
    do { _ = try body(); return nil } catch { return (error as? LogAppendError)?.code }
}

/// Leader-side validation of idempotent producers (KIP-98): retries answered with the
/// original offsets, sequence order, epoch fencing, unknown producers, sequence wrap-around.
final class ProducerStateValidationTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000
    var dir = ""

    override func setUpWithError() throws { dir = try tempDir("fjord-pstate") }
    override func tearDownWithError() throws { try? FileSystem.removeTree(dir) }

    private func open(_ cfg: LogConfig = LogConfig(), name: String = "p-0") throws -> PartitionLog {
        try PartitionLog(dir: dir + "/" + name, topicPartition: TopicPartition("p", 0), config: cfg, nowMs: now)
    }

    func testRetriesWithinTheLastFiveBatchesReturnTheOriginalOffsets() throws {
        let log = try open()
        var originals: [(seq: Int32, first: Int64, last: Int64)] = []
        for i in 0..<7 {
            // Interleave a non-idempotent batch and another producer: neither disturbs producer 1.
            try log.appendAsLeader(try makeBatch(first: i, count: 1), leaderEpoch: 0, nowMs: now)
            try log.appendAsLeader(try producerBatch(pid: 2, epoch: 0, seq: Int32(i * 2), count: 2), leaderEpoch: 0, nowMs: now)
            let info = try log.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: Int32(i * 3)), leaderEpoch: 0, nowMs: now)
            XCTAssertNil(info.duplicateOf)
            originals.append((Int32(i * 3), info.firstOffset, info.lastOffset))
        }
        let leo = log.logEndOffset
        XCTAssertEqual(log.activeProducerCount, 2)
        let state = try XCTUnwrap(log.producerState(for: 1))
        XCTAssertEqual(state.epoch, 0)
        XCTAssertEqual(state.lastSequence, 20)
        XCTAssertEqual(state.lastOffset, originals.last!.last)
        // The last 5 batches (seq 6... ) are recognised, in any order.
        for o in originals[2...].reversed() {
            let info = try log.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: o.seq), leaderEpoch: 0, nowMs: now)
            XCTAssertEqual(info.firstOffset, o.first)
            XCTAssertEqual(info.lastOffset, o.last)
            XCTAssertEqual(info.duplicateOf?.firstOffset, o.first)
            XCTAssertEqual(info.duplicateOf?.lastOffset, o.last)
            XCTAssertEqual(info.duplicateOf?.firstSequence, o.seq)
            XCTAssertEqual(info.batchCount, 0)
            XCTAssertEqual(info.recordCount, 0)
            XCTAssertEqual(info.logAppendTime, -1)
            XCTAssertEqual(log.logEndOffset, leo, "a retry appends nothing")
        }
        // Older than the window: DUPLICATE_SEQUENCE_NUMBER, still nothing appended.
        for o in originals[..<2] {
            XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: o.seq), leaderEpoch: 0, nowMs: now)),
                           .duplicateSequenceNumber)
        }
        XCTAssertEqual(log.logEndOffset, leo)
        // The producer goes on where it was.
        let next = try log.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: 21), leaderEpoch: 0, nowMs: now)
        XCTAssertNil(next.duplicateOf)
        XCTAssertEqual(next.firstOffset, leo)
        XCTAssertEqual(log.producerState(for: 1)?.lastSequence, 23)
    }

    func testRetryOnLogAppendTimeTopicReportsTheOriginalAppendTime() throws {
        var cfg = LogConfig()
        cfg.messageTimestampType = .logAppendTime
        let log = try open(cfg)
        let first = try log.appendAsLeader(try producerBatch(pid: 5, epoch: 1, seq: 0), leaderEpoch: 0, nowMs: now)
        XCTAssertEqual(first.logAppendTime, now)
        let retry = try log.appendAsLeader(try producerBatch(pid: 5, epoch: 1, seq: 0), leaderEpoch: 0, nowMs: now + 5000)
        XCTAssertEqual(retry.logAppendTime, now)
        XCTAssertEqual(retry.duplicateOf?.maxTimestamp, now)
        XCTAssertEqual(retry.lastOffset, first.lastOffset)
    }

    func testOutOfOrderSequencesAreRejected() throws {
        let log = try open()
        try log.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: 0), leaderEpoch: 0, nowMs: now)  // 0...2
        try log.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: 3), leaderEpoch: 0, nowMs: now)  // 3...5
        let leo = log.logEndOffset
        // A gap, a batch overlapping the last one, a retry cut differently: all out of order.
        for (seq, count) in [(7, 3), (5, 3), (4, 2), (3, 2)] as [(Int32, Int)] {
            XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: seq, count: count), leaderEpoch: 0, nowMs: now)),
                           .outOfOrderSequenceNumber, "seq \(seq) count \(count)")
        }
        XCTAssertEqual(log.logEndOffset, leo)
        XCTAssertEqual(log.producerState(for: 1)?.lastSequence, 5)
        try log.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: 6), leaderEpoch: 0, nowMs: now)
        XCTAssertEqual(log.producerState(for: 1)?.lastSequence, 8)
    }

    func testEpochFencingAndBump() throws {
        let log = try open()
        try log.appendAsLeader(try producerBatch(pid: 9, epoch: 3, seq: 0), leaderEpoch: 0, nowMs: now)
        try log.appendAsLeader(try producerBatch(pid: 9, epoch: 3, seq: 3), leaderEpoch: 0, nowMs: now)
        // An older epoch is fenced.
        XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 9, epoch: 2, seq: 6), leaderEpoch: 0, nowMs: now)),
                       .invalidProducerEpoch)
        // A newer epoch must start at sequence 0.
        XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 9, epoch: 4, seq: 6), leaderEpoch: 0, nowMs: now)),
                       .outOfOrderSequenceNumber)
        XCTAssertEqual(log.logEndOffset, 6)
        let bumped = try log.appendAsLeader(try producerBatch(pid: 9, epoch: 4, seq: 0), leaderEpoch: 0, nowMs: now)
        XCTAssertNil(bumped.duplicateOf, "sequence 0 of a new epoch is not a retry of epoch 3's")
        XCTAssertEqual(bumped.firstOffset, 6)
        let s = try XCTUnwrap(log.producerState(for: 9))
        XCTAssertEqual(s.epoch, 4)
        XCTAssertEqual(s.lastSequence, 2)
        XCTAssertEqual(s.lastOffset, 8)
        // The old epoch, even a retry of its batches, is now fenced.
        XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 9, epoch: 3, seq: 3), leaderEpoch: 0, nowMs: now)),
                       .invalidProducerEpoch)
        // The new epoch's retry is a duplicate; its cache starts afresh.
        XCTAssertEqual(try log.appendAsLeader(try producerBatch(pid: 9, epoch: 4, seq: 0), leaderEpoch: 0, nowMs: now).duplicateOf?.firstOffset, 6)
        XCTAssertEqual(log.producerStateManager[9]?.batches.count, 1)
    }

    func testUnknownProducers() throws {
        let log = try open()
        // Not starting at 0, log never truncated at its start: out of order.
        XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 4, epoch: 0, seq: 12), leaderEpoch: 0, nowMs: now)),
                       .outOfOrderSequenceNumber)
        XCTAssertEqual(log.logEndOffset, 0)
        XCTAssertNil(log.producerState(for: 4))
        try log.appendAsLeader(try producerBatch(pid: 4, epoch: 0, seq: 0), leaderEpoch: 0, nowMs: now)
        log.highWatermark = log.logEndOffset
        try log.deleteRecords(before: 2)
        // Now the state of an unknown producer may have gone with the log's head.
        XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 6, epoch: 0, seq: 12), leaderEpoch: 0, nowMs: now)),
                       .unknownProducerId)
        // A known one is unaffected by the moved log start (KIP-360 keeps its state).
        try log.appendAsLeader(try producerBatch(pid: 4, epoch: 0, seq: 3), leaderEpoch: 0, nowMs: now)
        try log.appendAsLeader(try producerBatch(pid: 6, epoch: 0, seq: 0), leaderEpoch: 0, nowMs: now)
        XCTAssertEqual(log.activeProducerCount, 2)
    }

    func testProducerIdWithoutSequenceIsAnInvalidRecord() throws {
        let log = try open()
        XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 4, epoch: 0, seq: -1), leaderEpoch: 0, nowMs: now)),
                       .invalidRecord)
        // A coordinator may write such batches (transactional offset commits); they are tracked
        // for the epoch, without a sequence.
        try log.appendAsLeader(try producerBatch(pid: 4, epoch: 2, seq: -1), leaderEpoch: 0, nowMs: now, origin: .coordinator)
        let s = try XCTUnwrap(log.producerState(for: 4))
        XCTAssertEqual(s.epoch, 2)
        XCTAssertEqual(s.lastSequence, -1)
        XCTAssertEqual(s.lastOffset, 2)
    }

    func testSequenceWrapsToZeroAfterInt32Max() throws {
        let log = try open()
        // A follower append sets any state (the leader validated it): last sequence max - 2.
        try log.appendAsFollower(try producerBatch(pid: 3, epoch: 0, seq: Int32.max - 4, count: 3), nowMs: now)
        XCTAssertEqual(log.producerState(for: 3)?.lastSequence, Int32.max - 2)
        // max-1, max, 0: the batch wraps inside.
        let wrap = try log.appendAsLeader(try producerBatch(pid: 3, epoch: 0, seq: Int32.max - 1, count: 3), leaderEpoch: 1, nowMs: now)
        XCTAssertEqual(log.producerState(for: 3)?.lastSequence, 0)
        XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 3, epoch: 0, seq: 2), leaderEpoch: 1, nowMs: now)),
                       .outOfOrderSequenceNumber)
        try log.appendAsLeader(try producerBatch(pid: 3, epoch: 0, seq: 1, count: 2), leaderEpoch: 1, nowMs: now)
        XCTAssertEqual(try log.appendAsLeader(try producerBatch(pid: 3, epoch: 0, seq: Int32.max - 1, count: 3), leaderEpoch: 1, nowMs: now).duplicateOf?.firstOffset,
                       wrap.firstOffset)
        // Ending exactly at max: the next batch starts at 0.
        try log.appendAsFollower(try producerBatch(pid: 8, epoch: 0, seq: Int32.max - 2, count: 3, baseOffset: log.logEndOffset), nowMs: now)
        XCTAssertEqual(code(try log.appendAsLeader(try producerBatch(pid: 8, epoch: 0, seq: Int32.max), leaderEpoch: 1, nowMs: now)),
                       .outOfOrderSequenceNumber)
        try log.appendAsLeader(try producerBatch(pid: 8, epoch: 0, seq: 0), leaderEpoch: 1, nowMs: now)
        XCTAssertEqual(log.producerState(for: 8)?.lastSequence, 2)
    }

    func testSeveralBatchesInOneAppend() throws {
        let log = try open()
        var two = try producerBatch(pid: 1, epoch: 0, seq: 0)
        var second = try producerBatch(pid: 1, epoch: 0, seq: 3)
        two.writeBuffer(&second)
        let info = try log.appendAsLeader(two, leaderEpoch: 0, nowMs: now)
        XCTAssertEqual(info.batchCount, 2)
        XCTAssertEqual(log.producerState(for: 1)?.lastSequence, 5)
        // The same request again: both batches are retries, answered with the original range.
        let retry = try log.appendAsLeader(two, leaderEpoch: 0, nowMs: now)
        XCTAssertEqual(retry.duplicateOf?.firstOffset, 0)
        XCTAssertEqual(retry.duplicateOf?.lastOffset, 5)
        XCTAssertEqual(log.logEndOffset, 6)
        // A retry with a new batch behind it: refused, nothing appended.
        var mixed = try producerBatch(pid: 1, epoch: 0, seq: 3)
        var new = try producerBatch(pid: 1, epoch: 0, seq: 6)
        mixed.writeBuffer(&new)
        XCTAssertEqual(code(try log.appendAsLeader(mixed, leaderEpoch: 0, nowMs: now)), .outOfOrderSequenceNumber)
        // Within one append, later batches are checked against the earlier ones.
        var gap = try producerBatch(pid: 1, epoch: 0, seq: 6)
        var bad = try producerBatch(pid: 1, epoch: 0, seq: 10)
        gap.writeBuffer(&bad)
        XCTAssertEqual(code(try log.appendAsLeader(gap, leaderEpoch: 0, nowMs: now)), .outOfOrderSequenceNumber)
        XCTAssertEqual(log.logEndOffset, 6)
        XCTAssertEqual(log.producerState(for: 1)?.lastSequence, 5)
    }

    func testFollowerAppendsTrackStateWithoutValidation() throws {
        let leader = try open(name: "l-0")
        let follower = try open(name: "f-0")
        for i in 0..<8 {
            try leader.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: Int32(i * 3)), leaderEpoch: 2, nowMs: now)
            try leader.appendAsLeader(try producerBatch(pid: 2, epoch: 5, seq: Int32(i), count: 1), leaderEpoch: 2, nowMs: now)
        }
        try follower.appendAsFollower(try leader.readBytes(from: 0, maxBytes: 1 << 20), nowMs: now)
        XCTAssertEqual(follower.activeProducers, leader.activeProducers)
        // The follower takes what the leader wrote, even what a leader would refuse.
        let end = follower.logEndOffset
        try follower.appendAsFollower(try producerBatch(pid: 2, epoch: 1, seq: 40, baseOffset: end), nowMs: now)
        XCTAssertEqual(follower.producerState(for: 2)?.epoch, 1)
        XCTAssertEqual(follower.producerState(for: 2)?.lastSequence, 42)
        // Promoted, it recognises the leader's last batches of producer 1 as retries.
        let last = try XCTUnwrap(leader.producerStateManager[1]?.batches.last)
        let retry = try follower.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: last.firstSequence), leaderEpoch: 3, nowMs: now)
        XCTAssertEqual(retry.duplicateOf, last)
    }

    func testExpiredProducersAreForgotten() throws {
        let log = try open()
        try log.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: 0, timestamp: now - 10_000), leaderEpoch: 0, nowMs: now)
        try log.appendAsLeader(try producerBatch(pid: 2, epoch: 0, seq: 0, timestamp: now), leaderEpoch: 0, nowMs: now)
        XCTAssertEqual(log.removeExpiredProducers(nowMs: now + 5_000, expirationMs: 10_000), 1)
        XCTAssertNil(log.producerState(for: 1))
        XCTAssertNotNil(log.producerState(for: 2))
    }
}

/// Producer state across truncation, snapshots, restarts and crashes: it always equals what a
/// replay of the log gives.
final class ProducerStateRecoveryTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000
    var dir = ""
    var path: String { dir + "/r-0" }

    override func setUpWithError() throws { dir = try tempDir("fjord-psnap") }
    override func tearDownWithError() throws { try? FileSystem.removeTree(dir) }

    private func config() -> LogConfig {
        var c = LogConfig()
        c.segmentBytes = 4 * 1024
        c.indexIntervalBytes = 256
        c.segmentIndexBytes = 4096
        return c
    }

    private func open(clean: Bool = false, recoveryPoint: Int64 = 0, logStartOffset: Int64 = 0) throws -> PartitionLog {
        try PartitionLog(dir: path, topicPartition: TopicPartition("r", 0), config: config(), recoveryPoint: recoveryPoint,
                         logStartOffset: logStartOffset, hadCleanShutdown: clean, nowMs: now)
    }

    private func snapshots() throws -> [Int64] { try ProducerStateSnapshot.list(dir: path) }

    /// Appends `batches` batches round-robin from 4 producers (one bumps its epoch halfway,
    /// some batches have no producer); returns the producer state after every batch, by log
    /// end offset.
    @discardableResult
    private func workload(_ log: PartitionLog, batches: Int, from: Int = 0,
                          states: inout [Int64: [ProducerStateEntry]], seqs: inout [Int64: (Int16, Int32)]) throws -> [Int64: [ProducerStateEntry]] {
        for i in from..<(from + batches) {
            let pid = Int64(i % 5)
            if pid == 0 {
                try log.appendAsLeader(try makeBatch(first: i, count: 2), leaderEpoch: 0, nowMs: now)
            } else {
                var (epoch, seq) = seqs[pid] ?? (0, 0)
                if pid == 3 && i == from + batches / 2 { (epoch, seq) = (epoch + 1, 0) }
                let count = 1 + i % 4
                try log.appendAsLeader(try producerBatch(pid: pid, epoch: epoch, seq: seq, count: count, timestamp: now + Int64(i)),
                                       leaderEpoch: 0, nowMs: now)
                seqs[pid] = (epoch, RecordBatch.incrementSequence(seq, by: Int32(count)))
            }
            states[log.logEndOffset] = log.activeProducers
        }
        return states
    }

    func testSnapshotsAreWrittenOnRollAndCloseAndUsedOnReopen() throws {
        var states: [Int64: [ProducerStateEntry]] = [:]
        var seqs: [Int64: (Int16, Int32)] = [:]
        let log = try open()
        try workload(log, batches: 120, states: &states, seqs: &seqs)
        let bases = log.segmentBaseOffsets
        XCTAssertGreaterThan(bases.count, 5)
        // One per roll, at the new segment's base; the newest few are kept.
        XCTAssertEqual(try snapshots(), Array(bases.suffix(PartitionLog.maxProducerSnapshots)))
        for s in try snapshots() {
            XCTAssertEqual(try ProducerStateSnapshot.read(offset: s, dir: path).producers.values.sorted { $0.producerId < $1.producerId },
                           states[s], "snapshot \(s)")
        }
        let before = log.activeProducers
        let leo = log.logEndOffset
        try log.close()
        XCTAssertEqual(try snapshots().last, leo)
        XCTAssertEqual(try snapshots().count, PartitionLog.maxProducerSnapshots)

        let reopened = try open(clean: true, recoveryPoint: leo)
        XCTAssertEqual(reopened.activeProducers, before)
        // The snapshot at the log end is what was loaded (a replay could not invent producer 77).
        var fake = reopened.producerStateManager
        fake.apply(ProducerBatchInfo(producerId: 77, producerEpoch: 1, baseSequence: 0, lastOffsetDelta: 0, firstOffset: leo - 1,
                                     maxTimestamp: now, isControl: false))
        try ProducerStateSnapshot.write(fake, offset: leo, dir: path)
        let again = try open(clean: true, recoveryPoint: leo)
        XCTAssertEqual(again.producerState(for: 77)?.epoch, 1)
        // A retry of each producer's oldest cached batch is still recognised after the restarts.
        for e in before where e.batches.count == ProducerStateEntry.maxCachedBatches {
            let b = e.batches[0]
            let info = try again.appendAsLeader(try producerBatch(pid: e.producerId, epoch: e.producerEpoch, seq: b.firstSequence,
                                                                  count: Int(b.lastOffset - b.firstOffset) + 1),
                                                leaderEpoch: 0, nowMs: now)
            XCTAssertEqual(info.duplicateOf, b)
        }
    }

    func testCorruptSnapshotsAreIgnoredAndTheStateRebuilt() throws {
        var states: [Int64: [ProducerStateEntry]] = [:]
        var seqs: [Int64: (Int16, Int32)] = [:]
        let log = try open()
        try workload(log, batches: 100, states: &states, seqs: &seqs)
        let before = log.activeProducers
        let leo = log.logEndOffset
        try log.close()
        // Damage the newest: the one before it and a replay give the same state.
        let newest = try XCTUnwrap(try snapshots().last)
        let f = try StorageFile(path: path + "/" + ProducerStateSnapshot.fileName(newest))
        var byte = try f.read(at: 20, count: 1)
        try f.write(ByteBuffer(bytes: [byte.readInteger(as: UInt8.self)! ^ 0x40]), at: 20)
        var reopened = try open(clean: true, recoveryPoint: leo)
        XCTAssertEqual(reopened.activeProducers, before)
        // The corrupt file was deleted, the state rebuilt from the older snapshot and the log,
        // and written again at the log end.
        XCTAssertEqual(newest, leo)
        XCTAssertEqual(try snapshots().last, leo)
        XCTAssertEqual(try ProducerStateSnapshot.read(offset: leo, dir: path).producers.values.sorted { $0.producerId < $1.producerId },
                       before)
        try reopened.close()
        // Every snapshot damaged (truncated, garbage, wrong name): a full scan of the log.
        let all = try snapshots()
        for (i, s) in all.enumerated() {
            let p = path + "/" + ProducerStateSnapshot.fileName(s)
            switch i % 3 {
            case 0: try StorageFile(path: p).truncate(to: 9)
            case 1: try FileSystem.writeAtomically(p, contents: "garbage that is not a snapshot")
            default: try FileSystem.writeAtomically(p, bytes: ProducerStateSnapshot.encode(ProducerStateManager(), offset: s + 1))
            }
        }
        reopened = try open(clean: true, recoveryPoint: leo)
        XCTAssertEqual(reopened.activeProducers, before)
        XCTAssertEqual(try snapshots(), [leo])
    }

    func testCrashRebuildsFromASnapshotAtOrBelowTheRecoveryPoint() throws {
        var states: [Int64: [ProducerStateEntry]] = [:]
        var seqs: [Int64: (Int16, Int32)] = [:]
        var log = try open()
        try workload(log, batches: 60, states: &states, seqs: &seqs)
        try log.flush()
        let recoveryPoint = log.recoveryPoint
        try workload(log, batches: 60, from: 60, states: &states, seqs: &seqs)
        let before = log.activeProducers
        let leo = log.logEndOffset
        let snapsAtCrash = try snapshots()
        XCTAssertTrue(snapsAtCrash.contains { $0 > recoveryPoint })
        // No close(): the process dies (the page cache survives, as in a process crash).
        log = try open(clean: false, recoveryPoint: recoveryPoint)
        XCTAssertEqual(log.logEndOffset, leo)
        XCTAssertEqual(log.activeProducers, before)
        // Snapshots above the old recovery point were not trusted; the replay ends in a new one.
        XCTAssertEqual(try snapshots().last, leo)
        XCTAssertTrue(try snapshots().allSatisfy { $0 <= recoveryPoint || $0 == leo })

        // The producers go on with their next sequences.
        for (pid, (epoch, seq)) in seqs {
            try log.appendAsLeader(try producerBatch(pid: pid, epoch: epoch, seq: seq), leaderEpoch: 0, nowMs: now)
        }
    }

    func testCrashWithoutAnySnapshotRebuildsByScanningTheLog() throws {
        var states: [Int64: [ProducerStateEntry]] = [:]
        var seqs: [Int64: (Int16, Int32)] = [:]
        var log = try open()
        try workload(log, batches: 90, states: &states, seqs: &seqs)
        let before = log.activeProducers
        let leo = log.logEndOffset
        for s in try snapshots() { try ProducerStateSnapshot.delete(offset: s, dir: path) }
        log = try open(clean: false, recoveryPoint: 0)
        XCTAssertEqual(log.activeProducers, before)
        XCTAssertEqual(try snapshots(), [leo])
        // And a torn tail: the state is that of the surviving prefix.
        try log.close()
        let active = path + "/" + LogSegment.fileName(log.segmentBaseOffsets.last!, ".log")
        let f = try StorageFile(path: active)
        let size = try f.size()
        XCTAssertGreaterThan(size, 30)
        try f.truncate(to: size - 7)
        for s in try snapshots() { try ProducerStateSnapshot.delete(offset: s, dir: path) }
        log = try open(clean: false, recoveryPoint: log.segmentBaseOffsets.last!)
        XCTAssertLessThan(log.logEndOffset, leo)
        XCTAssertEqual(log.activeProducers, states[log.logEndOffset])
    }

    func testTruncationRebuildsTheState() throws {
        var states: [Int64: [ProducerStateEntry]] = [:]
        var seqs: [Int64: (Int16, Int32)] = [:]
        let log = try open()
        try workload(log, batches: 150, states: &states, seqs: &seqs)
        var rng = SplitMix64(seed: 0x5EC)
        // Truncate to random batch boundaries, deeper and deeper (some below every snapshot).
        var ends = states.keys.sorted()
        for _ in 0..<6 {
            let target = ends[Int(rng.next() % UInt64(ends.count))]
            try log.truncate(to: target)
            XCTAssertEqual(log.logEndOffset, target)
            XCTAssertEqual(log.activeProducers, states[target] ?? [], "after truncation to \(target)")
            XCTAssertTrue(try snapshots().allSatisfy { $0 <= target })
            ends = ends.filter { $0 <= target }
        }
        // Truncating inside a batch removes the whole batch.
        let t = log.logEndOffset
        if let prev = ends.dropLast().last, t - prev > 1 {
            try log.truncate(to: t - 1)
            XCTAssertEqual(log.activeProducers, states[prev] ?? [])
        }
        // The log, and its state, go on consistently after a reopen.
        try log.close()
        let reopened = try open(clean: true, recoveryPoint: log.logEndOffset)
        XCTAssertEqual(reopened.activeProducers, log.activeProducers)
        // Fully: no state, no snapshots.
        try reopened.truncateFullyAndStart(at: 1000, nowMs: now)
        XCTAssertEqual(reopened.activeProducerCount, 0)
        XCTAssertEqual(try snapshots(), [])
        try reopened.appendAsLeader(try producerBatch(pid: 1, epoch: 0, seq: 0), leaderEpoch: 5, nowMs: now)
        XCTAssertEqual(reopened.producerState(for: 1)?.lastOffset, 1002)
    }

    func testRetentionKeepsTheStateAndTrimsSnapshots() throws {
        var states: [Int64: [ProducerStateEntry]] = [:]
        var seqs: [Int64: (Int16, Int32)] = [:]
        let log = try open()
        try workload(log, batches: 120, states: &states, seqs: &seqs)
        let before = log.activeProducers
        let bases = log.segmentBaseOffsets
        log.highWatermark = log.logEndOffset
        try log.deleteRecords(before: bases[bases.count - 1])
        XCTAssertGreaterThan(try log.deleteOldSegments(nowMs: now), 0)
        XCTAssertEqual(log.activeProducers, before, "retention does not remove producers (KIP-360)")
        XCTAssertTrue(try snapshots().allSatisfy { $0 >= log.logStartOffset })
        // A restart after a crash still knows them, from the snapshot at the active segment.
        let reopened = try open(clean: false, recoveryPoint: log.logEndOffset, logStartOffset: log.logStartOffset)
        XCTAssertEqual(reopened.activeProducers, before)
    }
}

/// The snapshot file format.
final class ProducerStateSnapshotFormatTests: XCTestCase {
    func testRoundTripAndRejection() throws {
        var s = ProducerStateManager()
        for i in 0..<7 {
            s.apply(ProducerBatchInfo(producerId: 42, producerEpoch: 3, baseSequence: Int32(i * 2), lastOffsetDelta: 1,
                                      firstOffset: Int64(i * 10), maxTimestamp: 1000 + Int64(i), isControl: false))
        }
        s.apply(ProducerBatchInfo(producerId: 7, producerEpoch: 0, baseSequence: -1, lastOffsetDelta: 0,
                                  firstOffset: 80, maxTimestamp: 5, isControl: true))
        let bytes = ProducerStateSnapshot.encode(s, offset: 100)
        let back = try ProducerStateSnapshot.decode(bytes, expectedOffset: 100)
        XCTAssertEqual(back.producers, s.producers)
        XCTAssertEqual(back.mapEndOffset, 100)
        XCTAssertEqual(back[42]?.batches.count, 5)
        XCTAssertEqual(back[42]?.batches.first?.firstSequence, 4)
        XCTAssertEqual(back[7]?.lastDataOffset, -1)
        XCTAssertEqual(bytes.getInteger(at: 0, as: Int16.self), 1, "version")
        XCTAssertThrowsError(try ProducerStateSnapshot.decode(bytes, expectedOffset: 99))
        for cut in [0, 5, 6, 20, bytes.readableBytes - 1] {
            XCTAssertThrowsError(try ProducerStateSnapshot.decode(bytes.getSlice(at: 0, length: cut)!, expectedOffset: 100), "cut at \(cut)")
        }
        var longer = bytes
        longer.writeInteger(UInt8(0))
        XCTAssertThrowsError(try ProducerStateSnapshot.decode(longer, expectedOffset: 100))
        for i in 0..<bytes.readableBytes {
            var flipped = bytes
            flipped.setInteger(bytes.getInteger(at: i, as: UInt8.self)! ^ 0x01, at: i)
            XCTAssertThrowsError(try ProducerStateSnapshot.decode(flipped, expectedOffset: 100), "flip at \(i)")
        }
    }
}
