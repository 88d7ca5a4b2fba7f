import FjordRecords
import FjordStorage
import FjordWire
import NIOCore
import XCTest

final class LogManagerTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000

    func testLockCheckpointsAndCleanShutdown() throws {
        let dir = try tempDir("fjord-lm")
        defer { try? FileSystem.removeTree(dir) }
        var cfg = LogConfig()
        cfg.segmentBytes = 4096
        let id = KafkaUUID.random()
        do {
            let lm = try LogManager(logDirs: [dir], defaultConfig: cfg, nowMs: now)
            // A second opener of the same directory fails with a clear message.
            XCTAssertThrowsError(try LogManager(logDirs: [dir], defaultConfig: cfg, nowMs: now)) {
                XCTAssertTrue("\($0)".contains("Failed to acquire lock on file .lock"), "\($0)")
            }
            let log = try lm.getOrCreateLog(TopicPartition("orders", 3), topicId: id, nowMs: now)
            for i in 0..<20 { try log.appendAsLeader(try makeBatch(first: i * 4, count: 4), leaderEpoch: 0, nowMs: now) }
            log.highWatermark = 80
            try lm.shutdown()
        }
        XCTAssertTrue(FileSystem.exists(dir + "/.kafka_cleanshutdown"))
        XCTAssertEqual(try FileSystem.readString(dir + "/recovery-point-offset-checkpoint"), "0\n1\norders 3 80\n")
        XCTAssertEqual(try FileSystem.readString(dir + "/log-start-offset-checkpoint"), "0\n1\norders 3 0\n")
        XCTAssertEqual(try PartitionMetadataFile.read(dir: dir + "/orders-3"), id)
        XCTAssertEqual(try FileSystem.readString(dir + "/orders-3/partition.metadata"), "version: 0\ntopic_id: \(id)\n")

        let lm2 = try LogManager(logDirs: [dir], defaultConfig: cfg, nowMs: now)
        XCTAssertFalse(FileSystem.exists(dir + "/.kafka_cleanshutdown"), "the marker is consumed at start")
        let log2 = try XCTUnwrap(lm2.log(for: TopicPartition("orders", 3)))
        XCTAssertEqual(log2.logEndOffset, 80)
        XCTAssertEqual(try readAll(log2).count, 80)
        try lm2.deleteLog(TopicPartition("orders", 3))
        XCTAssertNil(lm2.log(for: TopicPartition("orders", 3)))
        XCTAssertFalse(FileSystem.exists(dir + "/orders-3"))
    }

    /// DeleteRecords, the high watermark and the recovery point reach their checkpoint files
    /// from the periodic maintenance, so they survive a crash (no clean shutdown).
    func testMaintenanceCheckpointsSurviveACrash() throws {
        let dir = try tempDir("fjord-lm")
        defer { try? FileSystem.removeTree(dir) }
        var cfg = LogConfig()
        cfg.segmentBytes = 4096
        let tp = TopicPartition("orders", 0)
        do {
            let lm = try LogManager(logDirs: [dir], defaultConfig: cfg, nowMs: now)
            let log = try lm.getOrCreateLog(tp, topicId: nil, nowMs: now)
            for i in 0..<20 { try log.appendAsLeader(try makeBatch(first: i * 4, count: 4), leaderEpoch: 0, nowMs: now) }
            log.highWatermark = 72
            XCTAssertEqual(try log.deleteRecords(before: 30), 30)
            try lm.runMaintenance(nowMs: now + 1000)
            XCTAssertFalse(FileSystem.exists(dir + "/replication-offset-checkpoint"), "not due yet")
            try lm.runMaintenance(nowMs: now + 60_000)
            XCTAssertEqual(try FileSystem.readString(dir + "/replication-offset-checkpoint"), "0\n1\norders 0 72\n")
            XCTAssertEqual(try FileSystem.readString(dir + "/log-start-offset-checkpoint"), "0\n1\norders 0 30\n")
            let rp = log.recoveryPoint
            XCTAssertEqual(log.segmentBaseOffsets.last, rp, "rolled segments were flushed")
            XCTAssertEqual(try FileSystem.readString(dir + "/recovery-point-offset-checkpoint"), "0\n1\norders 0 \(rp)\n")
            // The process dies here: no shutdown, no marker.
        }
        let lm = try LogManager(logDirs: [dir], defaultConfig: cfg, nowMs: now)
        let log = try XCTUnwrap(lm.log(for: tp))
        XCTAssertEqual(log.logStartOffset, 30)
        XCTAssertEqual(log.highWatermark, 72)
        XCTAssertEqual(log.logEndOffset, 80)
        XCTAssertEqual(try readAll(log).first?.0, 30)
    }

    /// Without a checkpoint the high watermark starts at the log start offset; a checkpointed
    /// one is clamped into [log start, log end].
    func testHighWatermarkStartsAtTheLogStartAndIsClamped() throws {
        let dir = try tempDir("fjord-hw")
        defer { try? FileSystem.removeTree(dir) }
        let tp = TopicPartition("h", 0)
        let fresh = try PartitionLog(dir: dir + "/h-0", topicPartition: tp, config: LogConfig(), logStartOffset: 50, nowMs: now)
        XCTAssertEqual(fresh.logEndOffset, 50)
        XCTAssertEqual(fresh.highWatermark, 50)
        for i in 0..<5 { try fresh.appendAsLeader(try makeBatch(first: i, count: 2), leaderEpoch: 0, nowMs: now) }
        try fresh.close()
        func reopen(hw: Int64) throws -> Int64 {
            try PartitionLog(dir: dir + "/h-0", topicPartition: tp, config: LogConfig(), recoveryPoint: 60, logStartOffset: 50,
                             highWatermark: hw, hadCleanShutdown: true, nowMs: now).highWatermark
        }
        XCTAssertEqual(try reopen(hw: 55), 55)
        XCTAssertEqual(try reopen(hw: 1_000), 60)
        XCTAssertEqual(try reopen(hw: 3), 50)
    }

    /// `runCleaner` compacts logs whose dirty ratio is over `min.cleanable.dirty.ratio` and
    /// persists where it got to in `cleaner-offset-checkpoint`, which the next start reads.
    func testRunCleanerCompactsDirtyLogsAndCheckpointsItsPosition() throws {
        let dir = try tempDir("fjord-lm-clean")
        defer { try? FileSystem.removeTree(dir) }
        var cfg = LogConfig()
        cfg.segmentBytes = 2048
        cfg.cleanupPolicy = [.compact]
        let tp = TopicPartition("state", 0)
        let position: Int64
        do {
            let lm = try LogManager(logDirs: [dir], defaultConfig: LogConfig(), nowMs: now)
            let log = try lm.getOrCreateLog(tp, topicId: nil, config: cfg, nowMs: now)
            _ = try lm.getOrCreateLog(TopicPartition("plain", 0), topicId: nil, nowMs: now)
            for i in 0..<60 {
                var b = RecordBatchBuilder()
                for j in 0..<3 { b.append(key: ByteBuffer(string: "key-\((i * 3 + j) % 10)"), value: ByteBuffer(string: "value-\(i)-\(j)"), timestamp: now) }
                try log.appendAsLeader(try b.build().buffer, leaderEpoch: 0, nowMs: now)
            }
            log.highWatermark = log.logEndOffset
            let sizeBefore = log.sizeInBytes
            let done = try lm.runCleaner(nowMs: now)
            XCTAssertEqual(Array(done.keys), [tp], "only the compacted log")
            let stats = try XCTUnwrap(done[tp])
            XCTAssertGreaterThan(stats.segmentsCleaned, 0)
            XCTAssertLessThan(log.sizeInBytes, sizeBefore)
            position = log.cleanerCheckpoint
            XCTAssertEqual(position, stats.firstDirtyOffset)
            XCTAssertEqual(position, log.segmentBaseOffsets.last)
            XCTAssertEqual(try FileSystem.readString(dir + "/cleaner-offset-checkpoint"), "0\n1\nstate 0 \(position)\n")
            XCTAssertEqual(try lm.runCleaner(nowMs: now), [:], "nothing dirty any more")
            try lm.shutdown()
        }
        let lm = try LogManager(logDirs: [dir], defaultConfig: LogConfig(), topicConfigs: { $0 == "state" ? cfg : nil }, nowMs: now)
        XCTAssertEqual(try XCTUnwrap(lm.log(for: tp)).cleanerCheckpoint, position)
    }

    func testMetaPropertiesRoundTrip() throws {
        let dir = try tempDir("fjord-meta")
        defer { try? FileSystem.removeTree(dir) }
        let m = MetaProperties(clusterId: "MkU3OEVBNTcwNTJENDM2Qk", nodeId: 2, directoryId: KafkaUUID.random())
        try m.write(dir: dir, comment: "Wed Nov 25 00:00:00 UTC 2026")
        XCTAssertEqual(try MetaProperties.read(dir: dir), m)
        let text = try FileSystem.readString(dir + "/meta.properties")
        XCTAssertTrue(text.contains("cluster.id=MkU3OEVBNTcwNTJENDM2Qk\n"))
        XCTAssertTrue(text.contains("node.id=2\n"))
        XCTAssertTrue(text.contains("version=1\n"))
        XCTAssertThrowsError(try MetaProperties.parse("version=0\ncluster.id=x\nnode.id=1\n", path: "p"))
    }
}
