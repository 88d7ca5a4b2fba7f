import FjordProtocol
import FjordRecords
@testable import FjordStorage
import NIOCore
import XCTest

/// Truncation below the log start, and the leader epoch cache against Kafka's
/// `LeaderEpochFileCache` (OffsetForLeaderEpoch, KIP-101 / KIP-279).
final class TruncationAndEpochTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000
    var dir = ""

    override func setUpWithError() throws { dir = try tempDir("fjord-epoch") }
    override func tearDownWithError() throws { try? FileSystem.removeTree(dir) }

    private func open(_ name: String = "t-0") throws -> PartitionLog {
        var c = LogConfig()
        c.segmentBytes = 4096
        c.indexIntervalBytes = 256
        c.segmentIndexBytes = 1024
        return try PartitionLog(dir: dir + "/" + name, topicPartition: TopicPartition("t", 0), config: c, nowMs: now)
    }

    /// Kafka's `truncateTo`: below the first segment everything goes; between it and the log
    /// start offset, the segments stay and the log start offset comes down to the target.
    func testTruncateBelowTheLogStartKeepsSegmentsAboveTheFirstBase() throws {
        let log = try open()
        for i in 0..<60 { try log.appendAsLeader(try makeBatch(first: i * 3, count: 3), leaderEpoch: 1, nowMs: now) }
        log.highWatermark = log.logEndOffset
        try log.deleteRecords(before: 120)
        XCTAssertEqual(log.logStartOffset, 120)
        XCTAssertEqual(log.segmentBaseOffsets.first, 0, "DeleteRecords alone deletes no segment")
        try log.truncate(to: 90)
        XCTAssertEqual(log.logEndOffset, 90)
        XCTAssertEqual(log.logStartOffset, 90)
        XCTAssertEqual(log.segmentBaseOffsets.first, 0, "segments below the target are kept")
        XCTAssertEqual(log.highWatermark, 90)
        try log.appendAsLeader(try makeBatch(first: 90, count: 3), leaderEpoch: 2, nowMs: now)
        XCTAssertEqual(try readAll(log).map(\.0), [90, 91, 92])

        // Below the first segment's base: the log restarts empty at the target.
        let other = try open("u-0")
        for i in 0..<60 { try other.appendAsLeader(try makeBatch(first: i * 3, count: 3), leaderEpoch: 1, nowMs: now) }
        other.highWatermark = other.logEndOffset
        try other.deleteRecords(before: 150)
        XCTAssertGreaterThan(try other.deleteOldSegments(nowMs: now), 0)
        let firstBase = try XCTUnwrap(other.segmentBaseOffsets.first)
        XCTAssertGreaterThan(firstBase, 20)
        try other.truncate(to: 20)
        XCTAssertEqual(other.segmentBaseOffsets, [20])
        XCTAssertEqual(other.logStartOffset, 20)
        XCTAssertEqual(other.logEndOffset, 20)
        XCTAssertEqual(other.leaderEpochCache.entries, [])
    }

    /// Epochs 2, 5, 7 starting at 0, 30, 60; log end 90.
    private func logWithEpochs() throws -> PartitionLog {
        let log = try open()
        for i in 0..<30 {
            let epoch: Int32 = i < 10 ? 2 : i < 20 ? 5 : 7
            try log.appendAsLeader(try makeBatch(first: i * 3, count: 3), leaderEpoch: epoch, nowMs: now)
        }
        XCTAssertEqual(log.leaderEpochCache.entries,
                       [EpochEntry(epoch: 2, startOffset: 0), EpochEntry(epoch: 5, startOffset: 30), EpochEntry(epoch: 7, startOffset: 60)])
        return log
    }

    func testEndOffsetForLeaderEpochMatchesKafka() throws {
        let log = try logWithEpochs()
        func end(_ e: Int32) -> [Int64] { let r = log.endOffset(forLeaderEpoch: e); return [Int64(r.epoch), r.endOffset] }
        XCTAssertEqual(end(-1), [-1, -1], "undefined epoch")
        XCTAssertEqual(end(1), [1, 0], "older than any known: the requested epoch, ending at the first known start")
        XCTAssertEqual(end(2), [2, 30])
        XCTAssertEqual(end(3), [2, 30], "unknown epoch between: the largest known below it")
        XCTAssertEqual(end(5), [5, 60])
        XCTAssertEqual(end(6), [5, 60])
        XCTAssertEqual(end(7), [7, 90], "the latest epoch ends at the log end")
        XCTAssertEqual(end(8), [-1, -1], "newer than the latest: undefined")
        // The epoch cache agrees, given the same log end.
        XCTAssertEqual(log.leaderEpochCache.endOffset(for: 1, logEndOffset: 90).endOffset, 0)
        // An empty cache knows nothing.
        XCTAssertEqual(try open("e-0").endOffset(forLeaderEpoch: 0).endOffset, -1)
    }

    /// A leader appending with an epoch older than the log's latest has been deposed: the
    /// append is refused (NOT_LEADER_OR_FOLLOWER, what a produce to a deposed leader gets) and
    /// nothing is written or stamped.
    func testLeaderAppendWithAStaleEpochIsRefused() throws {
        let log = try logWithEpochs()
        XCTAssertThrowsError(try log.appendAsLeader(try makeBatch(first: 90, count: 3), leaderEpoch: 6, nowMs: now)) {
            XCTAssertEqual(($0 as? LogAppendError)?.code, .notLeaderOrFollower, "\($0)")
        }
        XCTAssertEqual(log.logEndOffset, 90)
        XCTAssertEqual(log.leaderEpochCache.latestEpoch, 7)
        // The current and newer epochs append.
        try log.appendAsLeader(try makeBatch(first: 90, count: 3), leaderEpoch: 7, nowMs: now)
        try log.appendAsLeader(try makeBatch(first: 93, count: 3), leaderEpoch: 9, nowMs: now)
        XCTAssertEqual(log.leaderEpochCache.entries.last, EpochEntry(epoch: 9, startOffset: 93))
    }

    /// Kafka's `assign`: a new entry removes the entries at the end that would break
    /// monotonicity (epoch ≥ it or start offset ≥ it), and is persisted.
    func testAssignTruncatesConflictingEntriesAsKafka() throws {
        var cache = try LeaderEpochCache(dir: dir)
        try cache.assign(epoch: 2, startOffset: 0)
        try cache.assign(epoch: 5, startOffset: 30)
        try cache.assign(epoch: 5, startOffset: 40)
        XCTAssertEqual(cache.entries.last, EpochEntry(epoch: 5, startOffset: 30), "same epoch, later start: no change")
        try cache.assign(epoch: 7, startOffset: 60)
        let removed = try cache.assign(epoch: 6, startOffset: 70)
        XCTAssertEqual(removed, [EpochEntry(epoch: 7, startOffset: 60)])
        XCTAssertEqual(cache.entries.map(\.epoch), [2, 5, 6])
        let noWarning = try cache.assign(epoch: 8, startOffset: 70)
        XCTAssertEqual(noWarning, [], "an epoch that never had data is replaced quietly")
        XCTAssertEqual(try LeaderEpochCache(dir: dir).entries, cache.entries)
        XCTAssertEqual(try FileSystem.readString(dir + "/leader-epoch-checkpoint"), "0\n3\n2 0\n5 30\n8 70\n")
        XCTAssertThrowsError(try cache.assign(epoch: -1, startOffset: 80))
    }
}
