import FjordRecords
import FjordStorage
import FjordTestSupport
import NIOCore
import XCTest

/// A segment written by this engine is read by kafka-python's own record reader.
final class KafkaPythonSegmentTests: XCTestCase {
    func testKafkaPythonReadsSegmentsWrittenHere() throws {
        let dir = try tempDir("fjord-kp")
        defer { try? FileSystem.removeTree(dir) }
        var cfg = LogConfig()
        cfg.segmentBytes = 8 * 1024
        let log = try PartitionLog(dir: dir + "/p-0", topicPartition: TopicPartition("p", 0), config: cfg, nowMs: 1_700_000_000_000)
        var n = 0
        for i in 0..<150 {
            let codec = CompressionCodec.allCases[i % 5]
            try log.appendAsLeader(try makeBatch(first: n, count: 7, valueSize: 120, codec: codec), leaderEpoch: 5, nowMs: 0)
            n += 7
        }
        try log.close()
        let segments = try FileSystem.list(dir + "/p-0").filter { $0.hasSuffix(".log") }.map { dir + "/p-0/" + $0 }
        XCTAssertGreaterThan(segments.count, 2)
        let script = """
        import sys
        from kafka.record.default_records import DefaultRecordBatch
        total = 0; expect = 0
        for path in sys.argv[1:]:
            data = open(path, "rb").read(); pos = 0
            while pos < len(data):
                ln = int.from_bytes(data[pos+8:pos+12], "big"); end = pos + 12 + ln
                b = DefaultRecordBatch(data[pos:end])
                assert b.validate_crc(), f"bad CRC at {path}:{pos}"
                assert int.from_bytes(data[pos+12:pos+16], "big") == 5
                for r in b:
                    assert r.offset == expect, (r.offset, expect)
                    assert r.key == b"k%d" % expect, r.key
                    assert r.value.startswith(b"v%d-" % expect)
                    expect += 1; total += 1
                pos = end
        print(total)
        """
        let out = try TestPython.run(script, args: segments.sorted())
        XCTAssertEqual(String(decoding: out, as: UTF8.self).split(separator: "\n").last, "\(n)")
    }
}
