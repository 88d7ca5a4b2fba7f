import FjordRecords
import FjordTestSupport
import FjordTools
import Foundation
import NIOCore
import XCTest

final class DumpLogTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try TestPython.temporaryDirectory("fjord-dumplog")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Writes segments with kafka-python's builder (like the acceptance scenario) and has
    /// Python print what `kafka-dump-log --print-data-log` prints for them, from its own
    /// reading of each batch (size, CRC, timestamps).
    private func writeKafkaPythonSegments() throws -> [String: String] {
        let script = """
        import sys, os
        from kafka.record.default_records import DefaultRecordBatchBuilder, DefaultRecordBatch
        d = sys.argv[1]
        names = ["none", "gzip", "snappy", "lz4", "zstd"]
        def text(b):
            return b.decode("utf-8")
        for c, name in enumerate(names):
            os.makedirs(os.path.join(d, name), exist_ok=True)
            path = os.path.join(d, name, "00000000000000000000.log")
            out = [f"Dumping {path}", "Log starting offset: 0"]
            pos = 0
            off = 0
            with open(path, "wb") as f:
                for b in range(3):
                    bb = DefaultRecordBatchBuilder(magic=2, compression_type=c, is_transactional=0,
                        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
                    recs = []
                    for i in range(50):
                        key = None if i == 13 else f"k{name}{b}-{i}".encode()
                        value = None if i == 21 else (f"v{name}{b}-{i}-" + "x" * (i * 7)).encode()
                        headers = [] if i % 5 == 0 else ([("h", b"1")] if i % 5 != 4 else [("h", b"1"), ("trace", None)])
                        ts = 1700000000000 + (i * 37) % 50
                        bb.append(i, timestamp=ts, key=key, value=value, headers=headers)
                        recs.append((off + i, ts, key, value, headers))
                    buf = bb.build()
                    buf[0:8] = off.to_bytes(8, "big", signed=True)
                    batch = DefaultRecordBatch(bytes(buf))
                    assert batch.compression_type == c and batch.validate_crc()
                    out.append(f"baseOffset: {batch.base_offset} lastOffset: {batch.last_offset} count: {batch.records_count}"
                               f" baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 0"
                               f" isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty"
                               f" position: {pos} CreateTime: {batch.max_timestamp} size: {len(buf)} magic: 2"
                               f" compresscodec: {name} crc: {batch.crc} isvalid: true")
                    for (o, ts, key, value, headers) in recs:
                        line = (f"| offset: {o} CreateTime: {ts} keySize: {-1 if key is None else len(key)}"
                                f" valueSize: {-1 if value is None else len(value)} sequence: -1"
                                f" headerKeys: [{','.join(k for k, _ in headers)}]")
                        if key is not None:
                            line += f" key: {text(key)}"
                        if value is not None:
                            line += f" payload: {text(value)}"
                        out.append(line)
                    f.write(bytes(buf))
                    pos += len(buf)
                    off += 50
            with open(path + ".expected", "w") as e:
                e.write("\\n".join(out) + "\\n")
        """
        try TestPython.run(script, args: [dir])
        var expected: [String: String] = [:]
        for name in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let path = "\(dir)/\(name)/00000000000000000000.log"
            expected[path] = try String(contentsOfFile: path + ".expected", encoding: .utf8)
        }
        return expected
    }

    private func lines(_ s: String) -> [String] {
        s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    private func assertSameLines(_ got: String, _ want: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let g = lines(got), w = lines(want)
        XCTAssertEqual(g.count, w.count, "\(what): line count", file: file, line: line)
        for (i, (a, b)) in zip(g, w).enumerated() where a != b {
            XCTFail("\(what) line \(i + 1):\n  got  \(a)\n  want \(b)", file: file, line: line)
            return
        }
    }

    func testPrintsKafkaPythonSegmentsExactlyForAllCodecs() throws {
        let expected = try writeKafkaPythonSegments()
        for (path, want) in expected.sorted(by: { $0.key < $1.key }) {
            let r = DumpLog.run(DumpLogOptions(files: [path], printDataLog: true, deepIteration: true))
            XCTAssertTrue(r.succeeded)
            XCTAssertEqual(r.errors, "", path)
            assertSameLines(r.output, want, path)
            // Reading in tiny chunks (many refills, batches spanning chunks) prints the same.
            let chunked = DumpLog.run(DumpLogOptions(files: [path], printDataLog: true, readChunkSize: 100))
            XCTAssertEqual(chunked.output, r.output, "chunked read of \(path)")
        }
        // A few exact lines, written out, for the reader of this test.
        let none = DumpLog.run(DumpLogOptions(files: ["\(dir)/none/00000000000000000000.log"], printDataLog: true)).output
        XCTAssertTrue(none.contains("\n| offset: 0 CreateTime: 1700000000000 keySize: 8 valueSize: 9 sequence: -1 headerKeys: [] key: knone0-0 payload: vnone0-0-\n"))
        XCTAssertTrue(none.contains("\n| offset: 13 CreateTime: 1700000000031 keySize: -1 valueSize: 101 sequence: -1 headerKeys: [h] payload: vnone0-13-" + String(repeating: "x", count: 91) + "\n"))
        XCTAssertTrue(none.contains("\n| offset: 64 CreateTime: 1700000000018 keySize: 9 valueSize: 108 sequence: -1 headerKeys: [h,trace] key: knone1-14 payload: vnone1-14-" + String(repeating: "x", count: 98) + "\n"))
        XCTAssertTrue(none.contains("\n| offset: 71 CreateTime: 1700000000027 keySize: 9 valueSize: -1 sequence: -1 headerKeys: [h] key: knone1-21\n"))
    }

    func testShallowAndDeepIterationWithoutData() throws {
        let expected = try writeKafkaPythonSegments()
        let path = "\(dir)/zstd/00000000000000000000.log"
        let want = lines(expected[path]!)
        let shallow = DumpLog.run(DumpLogOptions(files: [path]))
        XCTAssertEqual(lines(shallow.output), want.filter { !$0.hasPrefix("| ") })
        let deep = DumpLog.run(DumpLogOptions(files: [path], deepIteration: true))
        let withoutData = want.map { line -> String in
            guard line.hasPrefix("| "), let r = line.range(of: " key: ") ?? line.range(of: " payload: ") else { return line }
            return String(line[..<r.lowerBound])
        }
        XCTAssertEqual(lines(deep.output), withoutData)
        let skip = DumpLog.run(DumpLogOptions(files: [path], printDataLog: true, skipRecordMetadata: true))
        XCTAssertTrue(skip.output.contains("\n| key: kzstd0-1 payload: vzstd0-1-xxxxxxx\n"))
        XCTAssertTrue(skip.output.contains("\n| payload: vzstd0-13-"))
        XCTAssertFalse(skip.output.contains("| offset:"))
    }

    func testReportsATornTailAndCorruptBatches() throws {
        let expected = try writeKafkaPythonSegments()
        let source = "\(dir)/lz4/00000000000000000000.log"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        let want = lines(expected[source]!)
        let batchLines = want.filter { $0.hasPrefix("baseOffset:") }
        let sizes = batchLines.map { line -> Int in
            let parts = line.components(separatedBy: " size: ")[1]
            return Int(parts.split(separator: " ")[0])!
        }

        // Torn tail: the last batch loses 37 bytes.
        bytes.removeLast(37)
        let torn = "\(dir)/torn/00000000000000000000.log"
        try FileManager.default.createDirectory(atPath: "\(dir)/torn", withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: torn))
        let r = DumpLog.run(DumpLogOptions(files: [torn], printDataLog: true))
        XCTAssertTrue(r.succeeded)
        let got = lines(r.output)
        XCTAssertEqual(got[2], batchLines[0])
        XCTAssertEqual(got.filter { $0.hasPrefix("baseOffset:") }, Array(batchLines.prefix(2)))
        XCTAssertEqual(got.filter { $0.hasPrefix("| offset:") }.count, 100)
        XCTAssertEqual(got[got.count - 2], "Found \(sizes[2] - 37) invalid bytes at the end of 00000000000000000000.log")
        XCTAssertEqual(got.last, "")

        // Only a few bytes of a header at the end.
        let stub = "\(dir)/torn/00000000000000000050.log"
        try Data(bytes.prefix(sizes[0] + 10)).write(to: URL(fileURLWithPath: stub))
        XCTAssertTrue(DumpLog.run(DumpLogOptions(files: [stub])).output
            .hasSuffix("isvalid: true\nFound 10 invalid bytes at the end of 00000000000000000050.log\n"))

        // A flipped byte inside the second batch: reported invalid, the walk goes on.
        var flipped = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        flipped[sizes[0] + 80] ^= 0x55
        let corrupt = "\(dir)/torn/00000000000000000100.log"
        try Data(flipped).write(to: URL(fileURLWithPath: corrupt))
        let c = DumpLog.run(DumpLogOptions(files: [corrupt], printDataLog: true))
        let cLines = lines(c.output).filter { $0.hasPrefix("baseOffset:") }
        XCTAssertEqual(cLines.count, 3)
        XCTAssertTrue(cLines[0].hasSuffix("isvalid: true"))
        XCTAssertTrue(cLines[1].hasSuffix("isvalid: false"), cLines[1])
        XCTAssertTrue(cLines[2].hasSuffix("isvalid: true"))
        XCTAssertTrue(c.errors.contains("Cannot read the records of the batch at position \(sizes[0])"), c.errors)

        // Garbage (a legacy magic 1 header) after the first batch.
        var legacy = Array(flipped.prefix(sizes[0]))
        legacy += [0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0, 30, 1, 2, 3, 4, 1] + [UInt8](repeating: 0, count: 29)
        let legacyPath = "\(dir)/torn/00000000000000000200.log"
        try Data(legacy).write(to: URL(fileURLWithPath: legacyPath))
        let l = DumpLog.run(DumpLogOptions(files: [legacyPath]))
        XCTAssertTrue(l.output.hasSuffix("isvalid: true\nFound 46 invalid bytes at the end of 00000000000000000200.log\n"), l.output)
        XCTAssertTrue(l.errors.contains("legacy message format (magic 1"), l.errors)
    }

    func testControlTransactionalAndLogAppendTimeBatches() throws {
        var stream = ByteBuffer()
        var b = RecordBatchBuilder(baseOffset: 0, partitionLeaderEpoch: 4, producerId: 5, producerEpoch: 1,
                                   baseSequence: 0, isTransactional: true)
        for i in 0..<3 {
            b.append(key: ByteBuffer(string: "k\(i)"), value: ByteBuffer(string: "v\(i)"), timestamp: 1_700_000_000_000 + Int64(i))
        }
        let txn = try b.build()
        let marker = try RecordBatchBuilder.endTransactionMarkerBatch(
            EndTransactionMarker(type: .commit, coordinatorEpoch: 7), producerId: 5, producerEpoch: 1,
            baseOffset: 3, partitionLeaderEpoch: 4, timestamp: 1_700_000_000_010)
        var lat = RecordBatchBuilder(baseOffset: 4, partitionLeaderEpoch: 4, codec: .gzip)
        lat.append(key: nil, value: ByteBuffer(string: "late"), timestamp: 1_600_000_000_000)
        var latBatch = try lat.build()
        latBatch.setLogAppendTime(1_800_000_000_000)
        let leader = try RecordBatchBuilder.controlBatch(type: .leaderChange, value: ByteBuffer(bytes: [0, 0]),
                                                         baseOffset: 5, partitionLeaderEpoch: 4, timestamp: 1_700_000_000_020)
        for batch in [txn, marker, latBatch, leader] { stream.writeImmutableBuffer(batch.buffer) }
        let path = "\(dir)/00000000000000000000.log"
        try Data(stream.readableBytesView).write(to: URL(fileURLWithPath: path))

        let r = DumpLog.run(DumpLogOptions(files: [path], printDataLog: true))
        XCTAssertEqual(r.errors, "")
        let p1 = txn.sizeInBytes, p2 = p1 + marker.sizeInBytes, p3 = p2 + latBatch.sizeInBytes
        let want = """
        Dumping \(path)
        Log starting offset: 0
        baseOffset: 0 lastOffset: 2 count: 3 baseSequence: 0 lastSequence: 2 producerId: 5 producerEpoch: 1 partitionLeaderEpoch: 4 isTransactional: true isControl: false deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1700000000002 size: \(txn.sizeInBytes) magic: 2 compresscodec: none crc: \(txn.crc) isvalid: true
        | offset: 0 CreateTime: 1700000000000 keySize: 2 valueSize: 2 sequence: 0 headerKeys: [] key: k0 payload: v0
        | offset: 1 CreateTime: 1700000000001 keySize: 2 valueSize: 2 sequence: 1 headerKeys: [] key: k1 payload: v1
        | offset: 2 CreateTime: 1700000000002 keySize: 2 valueSize: 2 sequence: 2 headerKeys: [] key: k2 payload: v2
        baseOffset: 3 lastOffset: 3 count: 1 baseSequence: -1 lastSequence: -1 producerId: 5 producerEpoch: 1 partitionLeaderEpoch: 4 isTransactional: true isControl: true deleteHorizonMs: OptionalLong.empty position: \(p1) CreateTime: 1700000000010 size: \(marker.sizeInBytes) magic: 2 compresscodec: none crc: \(marker.crc) isvalid: true
        | offset: 3 CreateTime: 1700000000010 keySize: 4 valueSize: 6 sequence: -1 headerKeys: [] endTxnMarker: COMMIT coordinatorEpoch: 7
        baseOffset: 4 lastOffset: 4 count: 1 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 4 isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty position: \(p2) LogAppendTime: 1800000000000 size: \(latBatch.sizeInBytes) magic: 2 compresscodec: gzip crc: \(latBatch.crc) isvalid: true
        | offset: 4 LogAppendTime: 1800000000000 keySize: -1 valueSize: 4 sequence: -1 headerKeys: [] payload: late
        baseOffset: 5 lastOffset: 5 count: 1 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 4 isTransactional: false isControl: true deleteHorizonMs: OptionalLong.empty position: \(p3) CreateTime: 1700000000020 size: \(leader.sizeInBytes) magic: 2 compresscodec: none crc: \(leader.crc) isvalid: true
        | offset: 5 CreateTime: 1700000000020 keySize: 4 valueSize: 2 sequence: -1 headerKeys: [] controlType: LEADER_CHANGE(2)

        """
        assertSameLines(r.output, want, "control segment")

        // A hook can describe KRaft control records (e.g. as Kafka's JSON).
        let hooked = DumpLog.run(DumpLogOptions(files: [path], deepIteration: true,
                                                describeControlRecord: { type, record in
                                                    " LeaderChange: {\"bytes\":\(record.valueSize),\"type\":\"\(type.name)\"}"
                                                }))
        XCTAssertTrue(hooked.output.contains("headerKeys: [] LeaderChange: {\"bytes\":2,\"type\":\"LEADER_CHANGE\"}\n"))
    }

    func testOtherFilesAndErrors() throws {
        // A segment not starting at 0 is reported as Kafka does (the first offset follows -1).
        var b = RecordBatchBuilder(baseOffset: 150)
        b.append(key: nil, value: ByteBuffer(string: "x"), timestamp: 1)
        b.append(key: nil, value: ByteBuffer(string: "y"), timestamp: 2)
        let batch = try b.build()
        let path = "\(dir)/00000000000000000150.log"
        try Data(batch.buffer.readableBytesView).write(to: URL(fileURLWithPath: path))
        let index = "\(dir)/00000000000000000150.index"
        try Data([0, 0]).write(to: URL(fileURLWithPath: index))
        let other = "\(dir)/notes.txt"
        try Data().write(to: URL(fileURLWithPath: other))
        let missing = "\(dir)/00000000000000000999.log"

        let r = DumpLog.run(DumpLogOptions(files: [path, index, other, missing], deepIteration: true))
        XCTAssertFalse(r.succeeded, "a missing file fails the run")
        XCTAssertTrue(r.output.hasPrefix("Dumping \(path)\nLog starting offset: 150\nbaseOffset: 150 lastOffset: 151 count: 2 "), r.output)
        XCTAssertTrue(r.output.contains("\nDumping \(index)\nDumping \(other)\nDumping \(missing)\nLog starting offset: 999\n"), r.output)
        XCTAssertTrue(r.errors.contains("Dumping .index files is not supported by fjord dump-log yet: \(index)\n"), r.errors)
        XCTAssertTrue(r.errors.contains("Ignoring unknown file \(other)\n"), r.errors)
        XCTAssertTrue(r.errors.contains("Cannot open \(missing)"), r.errors)
        XCTAssertTrue(r.errors.hasSuffix("Non-consecutive offsets in \(path)\n  -1 is followed by 150\n"), r.errors)

        // --max-bytes: only whole batches within the limit, no trailing-bytes line.
        let limited = DumpLog.run(DumpLogOptions(files: [path], maxBytes: batch.sizeInBytes - 1))
        XCTAssertEqual(limited.output, "Dumping \(path)\nLog starting offset: 150\n")

        // KRaft snapshots (.checkpoint) hold batches too.
        let snapshot = "\(dir)/00000000000000000152-0000000003.checkpoint"
        try Data(batch.buffer.readableBytesView).write(to: URL(fileURLWithPath: snapshot))
        let s = DumpLog.run(DumpLogOptions(files: [snapshot]))
        XCTAssertTrue(s.output.hasPrefix("Dumping \(snapshot)\nSnapshot end offset: 152, epoch: 3\nbaseOffset: 150 "), s.output)

        // An empty segment.
        let empty = "\(dir)/00000000000000000000.log"
        try Data().write(to: URL(fileURLWithPath: empty))
        XCTAssertEqual(DumpLog.run(DumpLogOptions(files: [empty])).output, "Dumping \(empty)\nLog starting offset: 0\n")
    }
}
