import Dispatch
import FjordRecords
@testable import FjordStorage
import Foundation
import NIOCore
import XCTest

/// Group commit under concurrency, the recovery point's meaning, and what survives a crash
/// that loses every write not covered by a flush.
final class DurabilityTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000
    var dir = ""

    override func setUpWithError() throws { dir = try tempDir("fjord-durability") }
    override func tearDownWithError() throws { try? FileSystem.removeTree(dir) }

    private func open(_ cfg: LogConfig, recoveryPoint: Int64 = 0, clean: Bool = false) throws -> PartitionLog {
        try PartitionLog(dir: dir + "/d-0", topicPartition: TopicPartition("d", 0), config: cfg,
                         recoveryPoint: recoveryPoint, hadCleanShutdown: clean, nowMs: now)
    }

    /// 4 KiB segments with 64 KiB (16-page) indexes: every roll trims and unmaps pages.
    private func smallSegments() -> LogConfig {
        var c = LogConfig()
        c.segmentBytes = 4096
        c.indexIntervalBytes = 100
        c.segmentIndexBytes = 64 * 1024
        return c
    }

    /// Errors seen by the worker threads.
    private final class Failures: @unchecked Sendable {
        private let lock = NSLock()
        private var errors: [String] = []
        func add(_ e: Error) { lock.withLock { errors.append("\(e)") } }
        var all: [String] { lock.withLock { errors } }
    }

    /// One thread appends (rolling every few batches: segment.bytes is 4 KiB, so indexes are
    /// trimmed and remapped all the time) while another runs `flush(upTo:)` in a loop. The
    /// flushes must never fail (an msync of a range being remapped did), and the log must
    /// reopen with every record.
    func testFlushRunsSafelyWhileAppendsRollSegments() throws {
        let log = try open(smallSegments())
        let failures = Failures()
        let deadline = DispatchTime.now() + .milliseconds(1500)
        let group = DispatchGroup()
        let now = self.now
        DispatchQueue.global().async(group: group) {
            var next = 0
            while DispatchTime.now() < deadline {
                do {
                    try log.appendAsLeader(try makeBatch(first: next, count: 3, valueSize: 80), leaderEpoch: 1, nowMs: now)
                    next += 3
                } catch {
                    failures.add(error)
                    return
                }
            }
        }
        DispatchQueue.global().async(group: group) {
            var i: Int64 = 0
            while DispatchTime.now() < deadline {
                do {
                    let leo = log.logEndOffset
                    try log.flush(upTo: i % 3 == 0 ? nil : leo - i % 7)
                    i += 1
                } catch {
                    failures.add(error)
                    return
                }
            }
        }
        group.wait()
        XCTAssertEqual(failures.all, [])
        let leo = log.logEndOffset
        XCTAssertGreaterThan(log.segmentCount, 20, "the appends rolled many segments")
        XCTAssertLessThanOrEqual(log.recoveryPoint, leo)
        let recoveryPoint = log.recoveryPoint

        // Reopen as after a crash from the recovery point the flushes reached, then clean.
        for clean in [false, true] {
            if clean { try log.close() }
            let again = try open(smallSegments(), recoveryPoint: clean ? leo : recoveryPoint, clean: clean)
            XCTAssertEqual(again.logEndOffset, leo)
            let all = try readAll(again)
            XCTAssertEqual(all.map(\.0), Array(0..<leo), "clean: \(clean)")
            for (off, key, value) in all {
                XCTAssertEqual(key, "k\(off)")
                XCTAssertTrue(value?.hasPrefix("v\(off)-") ?? false)
            }
        }
    }

    /// A flush picks its target T, a truncation to X < T lowers the recovery point, new
    /// appends refill [X, T) in the page cache, then the fsyncs of the old plan finish: the
    /// recovery point must not jump to T, past data that was never fsynced.
    func testRecoveryPointDoesNotAdvanceOverATruncation() throws {
        let log = try open(smallSegments())
        for i in 0..<40 { try log.appendAsLeader(try makeBatch(first: i * 3, count: 3), leaderEpoch: 1, nowMs: now) }
        try log.flush(upTo: 30)
        let plan = try XCTUnwrap(log.planFlush(upTo: nil))
        XCTAssertEqual(plan.target, 120)
        try log.truncate(to: 60)
        XCTAssertEqual(log.recoveryPoint, 30)
        for i in 20..<40 { try log.appendAsLeader(try makeBatch(first: i * 3, count: 3), leaderEpoch: 2, nowMs: now) }
        XCTAssertEqual(log.logEndOffset, 120)
        for s in plan.segments { try s.flush() }
        log.completeFlush(plan)
        XCTAssertEqual(log.recoveryPoint, 30, "the new data in [60, 120) was not fsynced by this flush")
        // A flush planned after the truncation does count.
        try log.flush(upTo: 90)
        XCTAssertEqual(log.recoveryPoint, 90)
    }

    /// Append, flush up to X, append more (across a roll), then a crash that keeps only what
    /// was flushed: every segment file is cut at the position of offset X (later segments
    /// were created, so their names survive, but hold nothing). Reopened without the clean
    /// marker from the recovery point X, the log ends at X and serves everything below it.
    func testUnsyncedWritesLostInACrashLeaveTheFlushedPrefix() throws {
        let cfg = smallSegments()
        let x: Int64
        do {
            let log = try open(cfg)
            for i in 0..<50 { try log.appendAsLeader(try makeBatch(first: i * 3, count: 3), leaderEpoch: 1, nowMs: now) }
            x = log.logEndOffset
            try log.flush(upTo: x)
            XCTAssertEqual(log.recoveryPoint, x)
            let segmentsBefore = log.segmentCount
            for i in 50..<80 { try log.appendAsLeader(try makeBatch(first: i * 3, count: 3), leaderEpoch: 2, nowMs: now) }
            XCTAssertGreaterThan(log.segmentCount, segmentsBefore, "the unflushed appends rolled a segment")
            // Byte position of offset X: the batch starting there, in the segment holding it.
            let slice = try XCTUnwrap(log.read(from: x, maxBytes: 1).slice)
            let xBase = try XCTUnwrap(LogSegment.baseOffset(fromFileName: FileSystem.fileName(of: slice.file.path)))
            for base in log.segmentBaseOffsets where base >= xBase {
                let f = try StorageFile(path: dir + "/d-0/" + LogSegment.fileName(base, ".log"))
                try f.truncate(to: base == xBase ? slice.position : 0)
            }
        }
        let log = try open(cfg, recoveryPoint: x, clean: false)
        XCTAssertEqual(log.logEndOffset, x)
        XCTAssertEqual(try readAll(log).map(\.0), Array(0..<x))
        XCTAssertEqual(log.leaderEpochCache.entries.map(\.epoch), [1], "epoch 2 started in the lost part")
        try log.appendAsLeader(try makeBatch(first: Int(x), count: 3), leaderEpoch: 3, nowMs: now)
        XCTAssertEqual(try readAll(log).map(\.0), Array(0..<(x + 3)))
    }
}
