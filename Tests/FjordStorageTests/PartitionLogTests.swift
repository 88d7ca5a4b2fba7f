import FjordProtocol
import FjordRecords
import FjordStorage
import FjordTestSupport
import NIOCore
import XCTest

final class PartitionLogTests: XCTestCase {
    var dir = ""
    let now: Int64 = 1_700_000_100_000

    override func setUpWithError() throws { dir = try tempDir() }
    override func tearDownWithError() throws { try? FileSystem.removeTree(dir) }

    private func smallConfig() -> LogConfig {
        var c = LogConfig()
        c.segmentBytes = 8 * 1024
        c.indexIntervalBytes = 512
        c.segmentIndexBytes = 4096
        return c
    }

    private func open(_ cfg: LogConfig? = nil, clean: Bool = false, recoveryPoint: Int64 = 0) throws -> PartitionLog {
        try PartitionLog(dir: dir + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg ?? smallConfig(),
                         recoveryPoint: recoveryPoint, hadCleanShutdown: clean, nowMs: now)
    }

    func testAppendReadAcrossManySegments() throws {
        let log = try open()
        var expected = 0
        for i in 0..<200 {
            let info = try log.appendAsLeader(try makeBatch(first: expected, count: 5, codec: i % 3 == 0 ? .lz4 : .none), leaderEpoch: 3, nowMs: now)
            XCTAssertEqual(info.firstOffset, Int64(expected))
            XCTAssertEqual(info.lastOffset, Int64(expected + 4))
            expected += 5
        }
        XCTAssertEqual(log.logEndOffset, 1000)
        XCTAssertGreaterThan(log.segmentCount, 10)
        let all = try readAll(log)
        XCTAssertEqual(all.map(\.0), (0..<1000).map(Int64.init))
        XCTAssertEqual(all[777].1, "k777")
        XCTAssertTrue(all[777].2!.hasPrefix("v777-"))
        // Reads starting at every offset begin at the batch holding it.
        for off in stride(from: Int64(0), to: 1000, by: 7) {
            let r = try log.read(from: off, maxBytes: 1)
            XCTAssertEqual(r.firstBatchBaseOffset, off - off % 5, "offset \(off)")
        }
        // The reopened log (clean) serves the same.
        try log.close()
        let again = try open(clean: true, recoveryPoint: 1000)
        XCTAssertEqual(again.logEndOffset, 1000)
        XCTAssertEqual(try readAll(again).count, 1000)
        XCTAssertEqual(again.leaderEpochCache.latestEpoch, 3)
    }

    /// The leader stamps base offsets and its epoch while writing (pwritev), leaving the
    /// request's bytes as they came; what lands on disk is the stamped, CRC-valid batch.
    func testLeaderStampsHeadersWithoutTouchingTheRequestBuffer() throws {
        let log = try open()
        _ = try log.appendAsLeader(try makeBatch(first: 0, count: 3), leaderEpoch: 2, nowMs: now)
        var request = ByteBuffer()
        for i in 0..<4 { var b = try makeBatch(first: 3 + i * 2, count: 2); request.writeBuffer(&b) }
        let before = request
        let info = try log.appendAsLeader(request, leaderEpoch: 5, nowMs: now)
        XCTAssertEqual(info.firstOffset, 3)
        XCTAssertEqual(info.lastOffset, 10)
        XCTAssertEqual(request, before)
        XCTAssertEqual(request.getInteger(at: request.readerIndex, as: Int64.self), 0, "the request still holds the producer's base offset")
        let bytes = try log.readBytes(from: 3, maxBytes: 1 << 20, maxOffset: nil)
        var batches: [RecordBatch] = []
        for item in RecordBatchReader(bytes) { if case let .batch(b, _) = item { batches.append(b) } }
        XCTAssertEqual(batches.map(\.baseOffset), [3, 5, 7, 9])
        XCTAssertEqual(batches.map(\.partitionLeaderEpoch), [5, 5, 5, 5])
        for b in batches { XCTAssertNoThrow(try b.validate()) }
        XCTAssertEqual(try readAll(log).map(\.0), Array(0...10))
        XCTAssertEqual(log.leaderEpochCache.latestEpoch, 5)
        // After a restart (recovery reads the stamped headers) the log is the same.
        try log.close()
        XCTAssertEqual(try readAll(try open()).map(\.1), (0...10).map { "k\($0)" })
    }

    /// More spans than one pwritev takes (IOV_MAX 1024) are written in groups, in order.
    func testStampedWriteOfManyBatchesInOneCall() throws {
        let file = try StorageFile(path: dir + "/stamps.bin", create: true)
        var body = ByteBuffer()
        var stamps: [BatchHeaderStamp] = []
        for i in 0..<1500 {
            stamps.append(BatchHeaderStamp(position: body.writerIndex, baseOffset: Int64(i), batchLength: 8, leaderEpoch: Int32(i % 7)))
            body.writeRepeatingByte(0xEE, count: 16)
            body.writeInteger(UInt64(i))
        }
        try file.write(body, at: 100, stamps: stamps)
        let back = try file.read(at: 100, count: body.readableBytes)
        XCTAssertEqual(back.readableBytes, 1500 * 24)
        for i in 0..<1500 {
            let at = back.readerIndex + i * 24
            XCTAssertEqual(back.getInteger(at: at, as: Int64.self), Int64(i))
            XCTAssertEqual(back.getInteger(at: at + 8, as: Int32.self), 8)
            XCTAssertEqual(back.getInteger(at: at + 12, as: Int32.self), Int32(i % 7))
            XCTAssertEqual(back.getInteger(at: at + 16, as: UInt64.self), UInt64(i))
        }
    }

    func testIndexLookupsAtEveryBoundary() throws {
        let log = try open()
        for i in 0..<300 { try log.appendAsLeader(try makeBatch(first: i * 2, count: 2, valueSize: 60), leaderEpoch: 0, nowMs: now) }
        try log.roll(nowMs: now)
        for off in Int64(0)..<600 {
            let r = try log.read(from: off, maxBytes: 10_000)
            XCTAssertEqual(r.firstBatchBaseOffset, off - off % 2)
            let bytes = try r.slice!.read()
            guard case let .batch(first, _)? = RecordBatchReader(bytes).first(where: { _ in true }) else {
                return XCTFail("no batch at \(off)")
            }
            XCTAssertEqual(first.baseOffset, off - off % 2)
        }
        // Reading at the log end returns nothing; past it is out of range.
        XCTAssertNil(try log.read(from: 600, maxBytes: 100).slice)
        XCTAssertThrowsError(try log.read(from: 601, maxBytes: 100)) {
            XCTAssertEqual(($0 as? LogAppendError)?.code, .offsetOutOfRange)
        }
        // The high watermark bounds consumer reads.
        log.highWatermark = 100
        let upToHW = try readAll(log, maxOffset: log.highWatermark)
        XCTAssertEqual(upToHW.last?.0, 99)
    }

    func testTimeIndexLookups() throws {
        let log = try open()
        // timestamps 1_700_000_000_000 + offset
        for i in 0..<100 { try log.appendAsLeader(try makeBatch(first: i * 10, count: 10), leaderEpoch: 0, nowMs: now) }
        for target in [Int64(0), 1, 9, 10, 455, 999] {
            let r = try log.offset(forTimestamp: 1_700_000_000_000 + target)
            XCTAssertEqual(r?.offset, target)
            XCTAssertEqual(r?.timestamp, 1_700_000_000_000 + target)
        }
        XCTAssertNil(try log.offset(forTimestamp: 1_800_000_000_000))
        XCTAssertEqual(log.maxTimestampAndOffset.offset, 999)
    }

    func testTruncationThenAppend() throws {
        let log = try open()
        for i in 0..<100 { try log.appendAsLeader(try makeBatch(first: i * 4, count: 4), leaderEpoch: Int32(i / 25), nowMs: now) }
        XCTAssertEqual(log.leaderEpochCache.entries.map(\.epoch), [0, 1, 2, 3])
        try log.truncate(to: 150)  // inside batch 148..151: the whole batch goes
        XCTAssertEqual(log.logEndOffset, 148)
        XCTAssertEqual(log.leaderEpochCache.entries.map(\.epoch), [0, 1])
        XCTAssertEqual(log.leaderEpochCache.endOffset(for: 1, logEndOffset: log.logEndOffset).endOffset, 148)
        XCTAssertEqual(log.leaderEpochCache.endOffset(for: 0, logEndOffset: log.logEndOffset).endOffset, 100)
        try log.appendAsLeader(try makeBatch(first: 148, count: 4), leaderEpoch: 7, nowMs: now)
        let all = try readAll(log)
        XCTAssertEqual(all.map(\.0), (0..<152).map(Int64.init))
        XCTAssertEqual(log.leaderEpochCache.entries.last?.epoch, 7)
        XCTAssertEqual(log.leaderEpochCache.entries.last?.startOffset, 148)
        // Truncating below the log start empties the log at that offset.
        try log.truncateFullyAndStart(at: 500, nowMs: now)
        XCTAssertEqual(log.logStartOffset, 500)
        XCTAssertEqual(log.logEndOffset, 500)
        try log.appendAsLeader(try makeBatch(first: 0, count: 2), leaderEpoch: 8, nowMs: now)
        XCTAssertEqual(try readAll(log).map(\.0), [500, 501])
    }

    func testFollowerAppendKeepsOffsetsAndRejectsGaps() throws {
        let leader = try open()
        for i in 0..<10 { try leader.appendAsLeader(try makeBatch(first: i * 3, count: 3), leaderEpoch: 4, nowMs: now) }
        let replicated = try leader.readBytes(from: 0, maxBytes: 1 << 20)
        let followerDir = dir + "/f"
        let follower = try PartitionLog(dir: followerDir, topicPartition: TopicPartition("t", 0), config: smallConfig(), nowMs: now)
        // Fetched in leader epoch 3, batches stamped with epoch 4 cannot be the leader's:
        // refused whole (Kafka's check of KAFKA-18723), nothing appended.
        XCTAssertThrowsError(try follower.appendAsFollower(replicated, leaderEpoch: 3, nowMs: now)) { e in
            XCTAssertEqual((e as? LogAppendError)?.code, .invalidRecord)
        }
        XCTAssertEqual(follower.logEndOffset, 0)
        let info = try follower.appendAsFollower(replicated, leaderEpoch: 4, nowMs: now)
        XCTAssertEqual(info.firstOffset, 0)
        XCTAssertEqual(follower.logEndOffset, 30)
        XCTAssertEqual(follower.leaderEpochCache.latestEpoch, 4)
        XCTAssertThrowsError(try follower.appendAsFollower(replicated, nowMs: now))  // below the log end
    }

    func testBadInputGetsKafkaErrorCodes() throws {
        var cfg = smallConfig()
        cfg.maxMessageBytes = 2000
        let log = try open(cfg)
        func code(_ b: ByteBuffer) -> ErrorCode? {
            do { try log.appendAsLeader(b, leaderEpoch: 0, nowMs: now); return nil } catch { return (error as? LogAppendError)?.code }
        }
        XCTAssertEqual(code(try makeBatch(first: 0, count: 30, valueSize: 100)), .messageTooLarge)
        var corrupt = try makeBatch(first: 0, count: 3)
        corrupt.setInteger(UInt8(0xFF), at: 70)
        XCTAssertEqual(code(corrupt), .corruptMessage)
        var partial = try makeBatch(first: 0, count: 3)
        partial.moveWriterIndex(to: partial.writerIndex - 5)
        XCTAssertEqual(code(partial), .corruptMessage)
        var legacy = try makeBatch(first: 0, count: 3)
        legacy.setInteger(Int8(1), at: 16)
        XCTAssertEqual(code(legacy), .unsupportedForMessageFormat)
        cfg.cleanupPolicy = [.compact]
        log.config = cfg
        XCTAssertEqual(code(try makeBatch(first: 0, count: 3, keys: false)), .invalidRecord)
        XCTAssertEqual(log.logEndOffset, 0, "nothing bad was appended")
    }

    func testLogAppendTime() throws {
        var cfg = smallConfig()
        cfg.messageTimestampType = .logAppendTime
        let log = try open(cfg)
        let info = try log.appendAsLeader(try makeBatch(first: 0, count: 3), leaderEpoch: 0, nowMs: 42_000)
        XCTAssertEqual(info.logAppendTime, 42_000)
        let bytes = try log.readBytes(from: 0, maxBytes: 1 << 20)
        guard case let .batch(batch, _)? = RecordBatchReader(bytes).first(where: { _ in true }) else { return XCTFail() }
        XCTAssertNoThrow(try batch.validate())
        XCTAssertEqual(batch.timestampType, .logAppendTime)
        XCTAssertEqual(batch.maxTimestamp, 42_000)
    }

    func testRetentionByTimeSizeAndDeleteRecords() throws {
        var cfg = smallConfig()
        cfg.retentionMs = 1000
        let log = try open(cfg)
        // Old records (timestamps ~1.7e12), then new ones near `now`.
        for i in 0..<60 { try log.appendAsLeader(try makeBatch(first: i * 5, count: 5), leaderEpoch: 0, nowMs: now) }
        for i in 60..<120 { try log.appendAsLeader(try makeBatch(first: i * 5, count: 5, timestamp: now - Int64(i * 5)), leaderEpoch: 0, nowMs: now) }
        log.highWatermark = log.logEndOffset
        let before = log.segmentCount
        let deleted = try log.deleteOldSegments(nowMs: now)
        XCTAssertGreaterThan(deleted, 0)
        XCTAssertEqual(log.segmentCount, before - deleted)
        XCTAssertGreaterThan(log.logStartOffset, 0)
        XCTAssertLessThanOrEqual(log.logStartOffset, 300, "segments with new records are kept")
        let start = log.logStartOffset
        XCTAssertEqual(try readAll(log).first?.0, start)
        // The active segment is never deleted even if old.
        XCTAssertEqual(try log.deleteOldSegments(nowMs: now + 10_000_000) >= 0, true)
        XCTAssertGreaterThanOrEqual(log.segmentCount, 1)

        // retention.bytes
        var sizeCfg = smallConfig()
        sizeCfg.retentionBytes = 20_000
        let log2 = try PartitionLog(dir: dir + "/s-0", topicPartition: TopicPartition("s", 0), config: sizeCfg, nowMs: now)
        for i in 0..<100 { try log2.appendAsLeader(try makeBatch(first: i * 5, count: 5, timestamp: now), leaderEpoch: 0, nowMs: now) }
        log2.highWatermark = log2.logEndOffset
        try log2.deleteOldSegments(nowMs: now)
        XCTAssertLessThanOrEqual(log2.sizeInBytes, 20_000 + sizeCfg.segmentBytes)
        XCTAssertGreaterThan(log2.sizeInBytes, 20_000 - sizeCfg.segmentBytes)

        // DeleteRecords moves the log start; reads below it are out of range.
        let target = log2.logStartOffset + 7
        XCTAssertEqual(try log2.deleteRecords(before: target), target)
        XCTAssertThrowsError(try log2.read(from: target - 1, maxBytes: 100))
        XCTAssertEqual(try readAll(log2).first?.0, target)
        XCTAssertThrowsError(try log2.deleteRecords(before: log2.logEndOffset + 1))
        // Files renamed .deleted stay for file.delete.delay.ms, then go.
        XCTAssertTrue(try FileSystem.list(dir + "/s-0").contains { $0.hasSuffix(".deleted") })
        // The delay is measured with the same clock as the retention pass's `nowMs`.
        try log2.deleteDeletedFiles(nowMs: now + sizeCfg.fileDeleteDelayMs - 1)
        XCTAssertTrue(try FileSystem.list(dir + "/s-0").contains { $0.hasSuffix(".deleted") }, "kept during the delay")
        try log2.deleteDeletedFiles(nowMs: now + sizeCfg.fileDeleteDelayMs)
        XCTAssertFalse(try FileSystem.list(dir + "/s-0").contains { $0.hasSuffix(".deleted") })
    }

    func testSecondOpenSeesCheckpointedLayout() throws {
        let log = try open()
        for i in 0..<40 { try log.appendAsLeader(try makeBatch(first: i * 5, count: 5), leaderEpoch: 2, nowMs: now) }
        try log.flush()
        XCTAssertEqual(log.recoveryPoint, 200)
        let names = try FileSystem.list(dir + "/t-0")
        XCTAssertTrue(names.contains("00000000000000000000.log"))
        XCTAssertTrue(names.contains("00000000000000000000.index"))
        XCTAssertTrue(names.contains("00000000000000000000.timeindex"))
        XCTAssertTrue(names.contains("leader-epoch-checkpoint"))
        XCTAssertEqual(try FileSystem.readString(dir + "/t-0/leader-epoch-checkpoint"), "0\n1\n2 0\n")
    }
}
