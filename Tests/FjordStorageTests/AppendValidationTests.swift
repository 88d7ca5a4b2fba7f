import FjordProtocol
import FjordRecords
import FjordStorage
import NIOCore
import XCTest

/// What Kafka's `LogValidator` and follower append do with odd input: a fetch response cut
/// inside its last batch, control batches from clients, KRaft batches with the wrong epoch,
/// CreateTime batches whose header understates the max timestamp.
final class AppendValidationTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000
    var dir = ""

    override func setUpWithError() throws { dir = try tempDir("fjord-validate") }
    override func tearDownWithError() throws { try? FileSystem.removeTree(dir) }

    private func open(_ name: String = "t-0", _ cfg: LogConfig = LogConfig()) throws -> PartitionLog {
        try PartitionLog(dir: dir + "/" + name, topicPartition: TopicPartition("t", 0), config: cfg, nowMs: now)
    }

    /// A read limited by bytes may end inside a batch; the follower appends the whole batches
    /// and ignores the partial one (it is fetched again next time), as Kafka's follower does.
    func testFollowerIgnoresATrailingPartialBatch() throws {
        let leader = try open()
        for i in 0..<10 { try leader.appendAsLeader(try makeBatch(first: i * 3, count: 3), leaderEpoch: 2, nowMs: now) }
        let follower = try open("f-0")
        var next: Int64 = 0
        var fetches = 0
        while next < leader.logEndOffset {
            let bytes = try leader.readBytes(from: next, maxBytes: 1000)  // about 2.5 batches
            let info = try follower.appendAsFollower(bytes, nowMs: now)
            XCTAssertGreaterThan(info.batchCount, 0)
            XCTAssertLessThanOrEqual(info.validBytes, bytes.readableBytes)
            next = info.lastOffset + 1
            XCTAssertEqual(follower.logEndOffset, next)
            fetches += 1
        }
        XCTAssertGreaterThan(fetches, 3)
        XCTAssertEqual(try readAll(follower).map(\.0), Array(0..<30))
        // Only a partial batch: nothing to append, no error.
        var partial = try leader.readBytes(from: 0, maxBytes: 1 << 20)
        partial.moveWriterIndex(to: partial.readerIndex + 100)
        let info = try follower.appendAsFollower(partial, nowMs: now)
        XCTAssertEqual(info.batchCount, 0)
        XCTAssertEqual(follower.logEndOffset, 30)
    }

    private func controlBatch() throws -> ByteBuffer {
        var b = RecordBatchBuilder(producerId: 7, producerEpoch: 0, isTransactional: true)
        b.appendControlRecord(type: .commit, value: EndTransactionMarker(type: .commit, coordinatorEpoch: 0).encodeValue(), timestamp: now)
        return try b.build().buffer
    }

    /// Clients may not write control records (INVALID_RECORD); coordinators may.
    func testControlBatchesOnlyFromCoordinators() throws {
        let log = try open()
        XCTAssertThrowsError(try log.appendAsLeader(try controlBatch(), leaderEpoch: 0, nowMs: now)) {
            XCTAssertEqual(($0 as? LogAppendError)?.code, .invalidRecord, "\($0)")
        }
        XCTAssertEqual(log.logEndOffset, 0)
        let info = try log.appendAsLeader(try controlBatch(), leaderEpoch: 0, nowMs: now, origin: .coordinator)
        XCTAssertEqual(info.lastOffset, 0)
    }

    /// The KRaft leader's batches must carry the epoch they are appended with.
    func testRaftLeaderBatchesMustCarryTheEpoch() throws {
        let log = try open()
        var b = RecordBatchBuilder(partitionLeaderEpoch: 3)
        b.append(key: nil, value: ByteBuffer(string: "r"), timestamp: now)
        let stamped = try b.build().buffer
        XCTAssertThrowsError(try log.appendAsLeader(stamped, leaderEpoch: 4, nowMs: now, origin: .raftLeader)) {
            XCTAssertEqual(($0 as? LogAppendError)?.code, .invalidRecord, "\($0)")
        }
        XCTAssertEqual(try log.appendAsLeader(stamped, leaderEpoch: 3, nowMs: now, origin: .raftLeader).firstOffset, 0)
    }

    /// CreateTime: the header's max timestamp is set to the largest record timestamp (Kafka's
    /// validator rewrites it), with a valid CRC, and the time index finds the record.
    func testCreateTimeMaxTimestampIsCorrectedFromTheRecords() throws {
        let log = try open()
        for codec in [CompressionCodec.none, .lz4] {
            var batch = try RecordBatch(try makeBatch(first: 0, count: 5, codec: codec))
            let recordsMax = batch.maxTimestamp
            batch.setMaxTimestamp(recordsMax - 3, timestampType: .createTime)  // understated, CRC valid
            let info = try log.appendAsLeader(batch.buffer, leaderEpoch: 0, nowMs: now)
            XCTAssertEqual(info.maxTimestamp, recordsMax)
            let stored = try log.readBytes(from: info.firstOffset, maxBytes: 1)
            guard case let .batch(read, _)? = RecordBatchReader(stored).first(where: { _ in true }) else { return XCTFail() }
            XCTAssertEqual(read.maxTimestamp, recordsMax, "\(codec)")
            XCTAssertEqual(read.timestampType, .createTime)
            XCTAssertNoThrow(try read.validate())
        }
        XCTAssertEqual(log.maxTimestampAndOffset.timestamp, 1_700_000_000_004)
        XCTAssertEqual(try log.offset(forTimestamp: 1_700_000_000_004)?.offset, 4)
    }
}
