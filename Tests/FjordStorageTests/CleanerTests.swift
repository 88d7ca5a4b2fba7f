import FjordRecords
@testable import FjordStorage
import NIOCore
import XCTest

/// The cleaner's cleanable range, KIP-534 tombstone horizons, and aborting on truncation.
final class CleanerTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000
    var dir = ""

    override func setUpWithError() throws { dir = try tempDir("fjord-cleaner") }
    override func tearDownWithError() throws { try? FileSystem.removeTree(dir) }

    private func config() -> LogConfig {
        var c = LogConfig()
        c.cleanupPolicy = [.compact]
        c.deleteRetentionMs = 1000
        return c
    }

    private func open(_ cfg: LogConfig) throws -> PartitionLog {
        try PartitionLog(dir: dir + "/c-0", topicPartition: TopicPartition("c", 0), config: cfg, nowMs: now)
    }

    /// Appends one batch of (key, value) records, all with `timestamp`, then rolls.
    private func segment(_ log: PartitionLog, _ records: [(String, String?)], timestamp: Int64) throws {
        var b = RecordBatchBuilder()
        for (k, v) in records { b.append(key: ByteBuffer(string: k), value: v.map { ByteBuffer(string: $0) }, timestamp: timestamp) }
        try log.appendAsLeader(try b.build().buffer, leaderEpoch: 0, nowMs: now)
        try log.roll(nowMs: now)
    }

    private func batches(_ log: PartitionLog) throws -> [RecordBatch] {
        var out: [RecordBatch] = []
        var next = log.logStartOffset
        while next < log.logEndOffset {
            let bytes = try log.readBytes(from: next, maxBytes: 1)
            guard case let .batch(b, _)? = RecordBatchReader(bytes).first(where: { _ in true }) else { break }
            out.append(b)
            next = b.nextOffset
        }
        return out
    }

    /// A segment too young for `min.compaction.lag.ms` ends the cleanable range: the segments
    /// after it are not cleaned, and the dirty section restarts at it (never skipping it).
    func testCleanableRangeStopsAtTheFirstIneligibleSegment() throws {
        var cfg = config()
        cfg.minCompactionLagMs = 3_600_000
        let log = try open(cfg)
        let old = now - 2 * 3_600_000
        try segment(log, [("a", "1"), ("b", "1")], timestamp: old)
        try segment(log, [("a", "2")], timestamp: old)
        try segment(log, [("b", "2")], timestamp: now)       // too young
        try segment(log, [("a", "3"), ("b", "3")], timestamp: old)
        log.highWatermark = log.logEndOffset
        let bases = log.segmentBaseOffsets
        let stats = try LogCleaner().clean(log, firstDirtyOffset: 0, nowMs: now)
        XCTAssertEqual(stats.firstDirtyOffset, bases[2], "the young segment is still dirty")
        XCTAssertEqual(log.cleanerCheckpoint, bases[2])
        XCTAssertEqual(stats.segmentsCleaned, 2)
        // a=1 was superseded by a=2 in the cleanable range; nothing after it was used.
        let values = try readAll(log).map { "\($0.1!)=\($0.2 ?? "nil")" }
        XCTAssertEqual(values, ["b=1", "a=2", "b=2", "a=3", "b=3"])
    }

    /// KIP-534: the first pass that keeps a tombstone stamps its batch's delete horizon
    /// (now + delete.retention.ms); the tombstone survives until a pass after the horizon,
    /// however old its record timestamp is.
    func testTombstonesAreDroppedAfterTheBatchDeleteHorizon() throws {
        let log = try open(config())
        let ancient: Int64 = 1_000
        try segment(log, [("a", "1"), ("gone", nil)], timestamp: ancient)
        try segment(log, [("b", "1")], timestamp: ancient)
        log.highWatermark = log.logEndOffset
        let cleaner = LogCleaner()

        let first = try cleaner.clean(log, firstDirtyOffset: 0, nowMs: now)
        XCTAssertEqual(first.tombstonesDropped, 0)
        XCTAssertEqual(first.earliestDeleteHorizonMs, now + 1000)
        let stamped = try XCTUnwrap(try batches(log).first)
        XCTAssertEqual(stamped.deleteHorizonMs, now + 1000)
        XCTAssertNoThrow(try stamped.validate())
        XCTAssertEqual(try stamped.records().map(\.timestamp), [ancient, ancient], "record timestamps are kept")

        let second = try cleaner.clean(log, firstDirtyOffset: log.cleanerCheckpoint, nowMs: now + 999)
        XCTAssertEqual(second.tombstonesDropped, 0, "before the horizon")
        XCTAssertEqual(try readAll(log).map { $0.1! }, ["a", "gone", "b"])

        let third = try cleaner.clean(log, firstDirtyOffset: log.cleanerCheckpoint, nowMs: now + 1000)
        XCTAssertEqual(third.tombstonesDropped, 1)
        XCTAssertNil(third.earliestDeleteHorizonMs)
        XCTAssertEqual(try readAll(log).map { $0.1! }, ["a", "b"])
    }

    /// A truncation while a pass runs aborts it: its offset map may name records that are
    /// gone, so nothing it cleaned is swapped in and its checkpoint is not recorded.
    func testTruncationDuringCleaningAbortsThePass() throws {
        let log = try open(config())
        for i in 0..<6 { try segment(log, [("k", "\(i)"), ("j\(i)", "x")], timestamp: now) }
        log.highWatermark = log.logEndOffset
        let view = log.cleanerView()
        let victim = view.inactiveSegments[0].segment
        let cleaned = victim.log.path + ".cleaned"
        try StorageFile(path: cleaned, create: true).write(try victim.log.read(at: 0, count: victim.size), at: 0)
        try log.truncate(to: 8)
        XCTAssertFalse(try log.swapIn(cleanedLog: cleaned, replacing: victim, generation: view.generation, crashPoint: nil))
        XCTAssertFalse(FileSystem.exists(cleaned), "the cleaned file is discarded")
        log.commitCleanerCheckpoint(8, generation: view.generation)
        XCTAssertEqual(log.cleanerCheckpoint, 0)
        // A pass that starts after the truncation works.
        let stats = try LogCleaner().clean(log, firstDirtyOffset: 0, nowMs: now)
        XCTAssertFalse(stats.aborted)
        XCTAssertEqual(log.cleanerCheckpoint, stats.firstDirtyOffset)
    }
}
