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
