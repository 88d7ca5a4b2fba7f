#if canImport(Glibc)
import Glibc
#endif
import FjordProtocol
import FjordRecords
import FjordStorage
import NIOCore
import XCTest

/// A log directory on a full filesystem (a small tmpfs): appends fail with an error — never
/// a SIGBUS from touching an index page the filesystem cannot back — nothing already
/// appended is lost, and the log opens again.
final class FullDiskTests: XCTestCase {
    func testAppendsFailCleanlyWhenTheDiskIsFull() throws {
        let dir = try tempDir("fjord-fulldisk")
        defer { _ = umount2(dir, 2); try? FileSystem.removeTree(dir) }
        guard mount("tmpfs", dir, "tmpfs", 0, "size=2m") == 0 else {
            throw XCTSkip("cannot mount a tmpfs here (errno \(errno)); the fault suite covers full disks as root")
        }
        var cfg = LogConfig()
        cfg.segmentBytes = 256 * 1024
        cfg.indexIntervalBytes = 512
        let now: Int64 = 1_700_000_000_000
        let log = try PartitionLog(dir: dir + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, nowMs: now)
        var acked: Int64 = 0
        var failures = 0
        for i in 0..<4000 {
            var b = RecordBatchBuilder()
            b.append(key: nil, value: ByteBuffer(repeating: UInt8(i & 0xFF), count: 1000), timestamp: now + Int64(i))
            do {
                let info = try log.appendAsLeader(try b.build().buffer, leaderEpoch: 0, nowMs: now)
                acked = info.lastOffset + 1
            } catch {
                failures += 1
                if failures > 20 { break }
            }
        }
        XCTAssertGreaterThan(failures, 0, "the 2 MiB filesystem never filled")
        XCTAssertGreaterThan(acked, 100)
        XCTAssertEqual(log.logEndOffset, acked, "a failed append leaves nothing behind")
        try? log.flush()
        try? log.close()
        // Reopening on the still-full filesystem reads the indexes without touching holes.
        let again = try PartitionLog(dir: dir + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, nowMs: now)
        XCTAssertEqual(again.logEndOffset, acked)
        let first = try again.readBytes(from: 0, maxBytes: 4096)
        XCTAssertGreaterThan(first.readableBytes, 0)
    }
}
