import FjordRecords
import FjordStorage
import NIOCore
import XCTest

/// Time index limits, all-or-nothing segment appends, and rolling for offsets a segment
/// cannot hold.
final class SegmentTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000
    var dir = ""

    override func setUpWithError() throws { dir = try tempDir("fjord-segment") }
    override func tearDownWithError() throws { try? FileSystem.removeTree(dir) }

    private func batch(base: Int64 = 0, count: Int, timestamp: Int64, epoch: Int32 = -1) throws -> ByteBuffer {
        var b = RecordBatchBuilder(baseOffset: base, partitionLeaderEpoch: epoch)
        for i in 0..<count {
            b.append(key: ByteBuffer(string: "k\(base + Int64(i))"), value: ByteBuffer(string: "v\(base + Int64(i))-x"),
                     timestamp: timestamp)
        }
        return try b.build().buffer
    }

    /// As Kafka's, the time index is full one entry early: the last slot is kept for the
    /// entry a roll adds, which must always fit.
    func testTimeIndexReservesTheLastSlotForTheRoll() throws {
        let index = try TimeIndex(path: dir + "/0.timeindex", baseOffset: 100, maxIndexSize: 3 * TimeIndex.entrySize)
        try index.maybeAppend(timestamp: 10, offset: 100)
        XCTAssertFalse(index.isFull)
        try index.maybeAppend(timestamp: 20, offset: 105)
        XCTAssertTrue(index.isFull, "2 of 3 entries: the third is reserved")
        XCTAssertThrowsError(try index.maybeAppend(timestamp: 30, offset: 110))
        try index.maybeAppend(timestamp: 30, offset: 110, skipFullCheck: true)
        XCTAssertEqual(index.entries, 3)
        XCTAssertEqual(index.lastEntry?.timestamp, 30)
    }

    /// Offsets that do not fit a relative Int32 are an error, never a trap.
    func testTimeIndexRejectsOffsetsOutOfRange() throws {
        let index = try TimeIndex(path: dir + "/0.timeindex", baseOffset: 0, maxIndexSize: 1024)
        XCTAssertThrowsError(try index.maybeAppend(timestamp: 10, offset: Int64(Int32.max) + 1))
        XCTAssertThrowsError(try index.maybeAppend(timestamp: 10, offset: -1))
        XCTAssertEqual(index.entries, 0)
        try index.maybeAppend(timestamp: 10, offset: Int64(Int32.max))
        XCTAssertEqual(index.lastEntry?.offset, Int64(Int32.max))
    }

    /// Batches without timestamps (-1) add no time index entry, not even on roll: the empty
    /// index compares against (-1, baseOffset), as Kafka's.
    func testSegmentWithoutTimestampsHasAnEmptyTimeIndex() throws {
        let seg = try LogSegment(dir: dir, baseOffset: 0, indexIntervalBytes: 0, maxIndexSize: 1024, nowMs: now)
        for i in 0..<3 {
            try seg.append(try batch(base: Int64(i * 2), count: 2, timestamp: -1), lastOffset: Int64(i * 2 + 1),
                           maxTimestamp: -1, offsetOfMaxTimestamp: -1)
        }
        try seg.onBecomeInactive()
        XCTAssertEqual(seg.timeIndex.entries, 0)
        XCTAssertEqual(seg.offsetIndex.entries, 2)
    }

    /// An append whose index update fails leaves the segment exactly as before: same size,
    /// same next offset, no stray bytes that a recovery would turn into extra offsets.
    func testFailedIndexUpdateLeavesTheSegmentUnchanged() throws {
        // Three offset index slots, two time index slots (one reserved): index updates fail soon.
        let seg = try LogSegment(dir: dir, baseOffset: 0, indexIntervalBytes: 0, maxIndexSize: 2 * TimeIndex.entrySize, nowMs: now)
        var next: Int64 = 0
        var failed = false
        for i in 0..<10 {
            let (size, offsetEntries, timeEntries) = (seg.size, seg.offsetIndex.entries, seg.timeIndex.entries)
            do {
                try seg.append(try batch(base: next, count: 2, timestamp: now + Int64(i)), lastOffset: next + 1,
                               maxTimestamp: now + Int64(i), offsetOfMaxTimestamp: next + 1)
                next += 2
            } catch {
                failed = true
                XCTAssertEqual(seg.size, size, "append \(i): size rolled back")
                XCTAssertEqual(try seg.log.size(), size, "append \(i): the file is cut back")
                XCTAssertEqual(seg.nextOffset, next)
                XCTAssertEqual(seg.offsetIndex.entries, offsetEntries)
                XCTAssertEqual(seg.timeIndex.entries, timeEntries)
                break
            }
        }
        XCTAssertTrue(failed, "an index update failed")
        // What a reopen would recover is what the segment reported.
        let reopened = try LogSegment(dir: dir, baseOffset: 0, indexIntervalBytes: 0, maxIndexSize: 1024, nowMs: now)
        _ = try reopened.recover(maxBatchSize: 1 << 20)
        XCTAssertEqual(reopened.nextOffset, next)
    }

    /// A follower appending far past an empty segment's base (more than Int32.max offsets)
    /// rolls to a segment based at the batch, and everything stays readable and reopens.
    func testFollowerAppendFarPastAnEmptySegmentRolls() throws {
        var cfg = LogConfig()
        cfg.indexIntervalBytes = 1
        let path = dir + "/f-0"
        let far: Int64 = 3_000_000_000
        let leo: Int64
        do {
            let log = try PartitionLog(dir: path, topicPartition: TopicPartition("f", 0), config: cfg, nowMs: now)
            for i in 0..<5 {
                try log.appendAsFollower(try batch(base: far + Int64(i * 3), count: 3, timestamp: now, epoch: 4), nowMs: now)
            }
            XCTAssertEqual(log.segmentBaseOffsets, [0, far])
            leo = log.logEndOffset
            XCTAssertEqual(leo, far + 15)
            for off in far..<leo {
                XCTAssertEqual(try log.read(from: off, maxBytes: 1).firstBatchBaseOffset, off - (off - far) % 3)
            }
            XCTAssertEqual(log.leaderEpochCache.entries, [EpochEntry(epoch: 4, startOffset: far)])
        }
        let log = try PartitionLog(dir: path, topicPartition: TopicPartition("f", 0), config: cfg, nowMs: now)
        XCTAssertEqual(log.logEndOffset, leo)
        XCTAssertEqual(try readAll(log, from: far).map(\.0), Array(far..<leo))
    }
}
