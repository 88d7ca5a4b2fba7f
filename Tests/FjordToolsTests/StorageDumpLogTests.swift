import FjordRecords
import FjordStorage
import FjordTestSupport
import FjordTools
import NIOCore
import XCTest

/// `fjord dump-log` on segments written by the storage engine: every batch line is valid and
/// sits at the right position, every record line carries its offset and key, for all codecs,
/// LogAppendTime topics and compacted segments with a delete horizon.
final class StorageDumpLogTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000
    var dir = ""

    override func setUpWithError() throws { dir = try TestPython.temporaryDirectory("fjord-dumpstorage") }
    override func tearDownWithError() throws { try? FileSystem.removeTree(dir) }

    private func batch(first: Int, count: Int, codec: CompressionCodec, tombstoneAt: Int? = nil) throws -> ByteBuffer {
        var b = RecordBatchBuilder(codec: codec)
        for id in first..<(first + count) {
            let value = id == tombstoneAt ? nil : ByteBuffer(string: "v\(id)-" + String(repeating: "x", count: id % 40))
            b.append(key: ByteBuffer(string: "k\(id)"), value: value, timestamp: 1_700_000_000_000 + Int64(id))
        }
        return try b.build().buffer
    }

    /// Dumps every segment of `log` and checks the output line by line against the log's
    /// own reading of its batches. Returns the whole output.
    @discardableResult
    private func dumpAndCheck(_ log: PartitionLog, timestampType: String) throws -> String {
        let segments = try FileSystem.list(log.dir).filter { $0.hasSuffix(".log") }.map { log.dir + "/" + $0 }
        XCTAssertEqual(segments.count, log.segmentCount)
        let r = DumpLog.run(DumpLogOptions(files: segments, printDataLog: true))
        XCTAssertTrue(r.succeeded)
        // Like Kafka's DumpLogSegments, which starts each file's "last offset" at -1, the only
        // diagnostics are for segments whose first record is not offset 0.
        var expectedErrors = ""
        for path in segments {
            let first = LogSegment.baseOffset(fromFileName: FileSystem.fileName(of: path))!
            if first != 0 { expectedErrors += "Non-consecutive offsets in \(path)\n  -1 is followed by \(first)\n" }
        }
        XCTAssertEqual(r.errors, expectedErrors)
        var next = log.logStartOffset
        var batches = 0
        var lines = r.output.split(separator: "\n").map(String.init)[...]
        for path in segments {
            XCTAssertEqual(lines.popFirst(), "Dumping \(path)")
            let base = LogSegment.baseOffset(fromFileName: FileSystem.fileName(of: path))!
            XCTAssertEqual(lines.popFirst(), "Log starting offset: \(base)")
            var position = 0
            while let line = lines.first, !line.hasPrefix("Dumping ") {
                lines.removeFirst()
                if line.hasPrefix("baseOffset: ") {
                    // The same batch, read through the log.
                    let stored = try log.readBytes(from: next, maxBytes: 1)
                    guard case let .batch(b, _)? = RecordBatchReader(stored).first(where: { _ in true }) else {
                        return r.output
                    }
                    XCTAssertTrue(line.hasPrefix("baseOffset: \(b.baseOffset) lastOffset: \(b.lastOffset) count: \(b.recordCount) "), line)
                    XCTAssertTrue(line.contains(" partitionLeaderEpoch: 5 "), line)
                    XCTAssertTrue(line.contains(" position: \(position) \(timestampType): \(b.maxTimestamp) size: \(b.sizeInBytes) magic: 2 "), line)
                    XCTAssertTrue(line.hasSuffix(" crc: \(b.crc) isvalid: true"), line)
                    position += b.sizeInBytes
                    batches += 1
                } else if line.hasPrefix("| offset: ") {
                    let off = Int64(line.dropFirst("| offset: ".count).prefix { $0 != " " })!
                    XCTAssertGreaterThanOrEqual(off, next, line)
                    next = off + 1
                    XCTAssertTrue(line.contains(" keySize: \("k\(off)".utf8.count) "), line)
                    XCTAssertTrue(line.contains(" key: k\(off)"), line)
                } else {
                    XCTFail("unexpected line: \(line)")
                }
            }
        }
        XCTAssertTrue(lines.isEmpty)
        XCTAssertEqual(next, log.logEndOffset)
        XCTAssertGreaterThanOrEqual(batches, log.segmentCount)
        return r.output
    }

    func testDumpsSegmentsWrittenByPartitionLog() throws {
        var cfg = LogConfig()
        cfg.segmentBytes = 2048
        let log = try PartitionLog(dir: dir + "/p-0", topicPartition: TopicPartition("p", 0), config: cfg, nowMs: now)
        var n = 0
        for i in 0..<60 {
            try log.appendAsLeader(try batch(first: n, count: 1 + i % 7, codec: CompressionCodec.allCases[i % 5]), leaderEpoch: 5, nowMs: now)
            n += 1 + i % 7
        }
        try log.close()
        XCTAssertGreaterThan(log.segmentCount, 3)
        let out = try dumpAndCheck(log, timestampType: "CreateTime")
        XCTAssertTrue(out.contains("\n| offset: 0 CreateTime: 1700000000000 keySize: 2 valueSize: 3 sequence: -1 headerKeys: [] key: k0 payload: v0-\n"))
        XCTAssertTrue(out.contains(" deleteHorizonMs: OptionalLong.empty "))
    }

    func testDumpsLogAppendTimeAndCompactedSegments() throws {
        var cfg = LogConfig()
        cfg.messageTimestampType = .logAppendTime
        let appendTime = try PartitionLog(dir: dir + "/a-0", topicPartition: TopicPartition("a", 0), config: cfg, nowMs: now)
        for i in 0..<5 { try appendTime.appendAsLeader(try batch(first: i * 3, count: 3, codec: .gzip), leaderEpoch: 5, nowMs: now + Int64(i)) }
        try dumpAndCheck(appendTime, timestampType: "LogAppendTime")

        var compact = LogConfig()
        compact.cleanupPolicy = [.compact]
        compact.deleteRetentionMs = 5000
        let log = try PartitionLog(dir: dir + "/c-0", topicPartition: TopicPartition("c", 0), config: compact, nowMs: now)
        try log.appendAsLeader(try batch(first: 0, count: 4, codec: .zstd, tombstoneAt: 2), leaderEpoch: 5, nowMs: now)
        try log.roll(nowMs: now)
        try log.appendAsLeader(try batch(first: 4, count: 2, codec: .none), leaderEpoch: 5, nowMs: now)
        log.highWatermark = log.logEndOffset
        _ = try LogCleaner().clean(log, firstDirtyOffset: 0, nowMs: now)
        let out = try dumpAndCheck(log, timestampType: "CreateTime")
        XCTAssertTrue(out.contains("baseOffset: 0 lastOffset: 3 count: 4 "))
        XCTAssertTrue(out.contains(" deleteHorizonMs: OptionalLong[\(now + 5000)] "), out)
        XCTAssertTrue(out.contains("\n| offset: 2 CreateTime: 1700000000002 keySize: 2 valueSize: -1 sequence: -1 headerKeys: [] key: k2\n"), out)
    }
}
