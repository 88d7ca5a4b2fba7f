import FjordRecords
import FjordTestSupport
import Foundation
import NIOCore
import XCTest

/// Interoperability with an independent implementation: kafka-python's
/// `DefaultRecordBatchBuilder` / `DefaultRecordBatch`, for all five codecs.
final class RecordBatchInteropTests: XCTestCase {
    /// kafka-python builds; Fjord decodes to exactly the same records and header fields.
    func testDecodesBatchesBuiltByKafkaPython() throws {
        let script = samplePython + """

        import sys
        from kafka.record.default_records import DefaultRecordBatchBuilder, DefaultRecordBatch
        out = bytearray()
        specs = [(c, -1, -1, -1, 0) for c in range(5)] + [(4, 77, 2, 5, 1)]
        for n, (codec, pid, epoch, seq, txn) in enumerate(specs):
            b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=txn,
                producer_id=pid, producer_epoch=epoch, base_sequence=seq, batch_size=1 << 22)
            for i in range(30):
                key, value, headers, ts = sample(f"py{n}", i)
                assert b.append(i, timestamp=ts, key=key, value=value, headers=headers) is not None
            buf = b.build()
            buf[0:8] = (n * 1000).to_bytes(8, "big", signed=True)
            if DefaultRecordBatch(bytes(buf)).compression_type != codec:
                sys.exit(f"kafka-python did not compress batch {n} with codec {codec}")
            out += buf
        sys.stdout.buffer.write(bytes(out))
        """
        let bytes = try TestPython.run(script)
        let batches = try RecordBatchReader.batches(in: ByteBuffer(bytes: bytes), verifyChecksums: true)
        XCTAssertEqual(batches.count, 6)
        for (n, batch) in batches.enumerated() {
            let samples = (0..<30).map { SampleRecord.make(tag: "py\(n)", $0) }
            let codec = n < 5 ? allCodecs[n] : .zstd
            XCTAssertEqual(batch.compression, codec, "batch \(n)")
            XCTAssertEqual(batch.baseOffset, Int64(n * 1000))
            XCTAssertEqual(batch.lastOffset, Int64(n * 1000 + 29))
            XCTAssertEqual(batch.recordCount, 30)
            XCTAssertEqual(batch.baseTimestamp, samples[0].timestamp)
            XCTAssertEqual(batch.maxTimestamp, samples.map(\.timestamp).max())
            XCTAssertEqual(batch.partitionLeaderEpoch, 0)
            XCTAssertEqual(batch.timestampType, .createTime)
            XCTAssertEqual(batch.producerId, n < 5 ? -1 : 77)
            XCTAssertEqual(batch.producerEpoch, n < 5 ? -1 : 2)
            XCTAssertEqual(batch.baseSequence, n < 5 ? -1 : 5)
            XCTAssertEqual(batch.isTransactional, n == 5)
            let records = try batch.records()
            XCTAssertEqual(records.map(SampleRecord.init), samples, "batch \(n) (\(codec))")
            XCTAssertEqual(records.map(\.offset), (0..<30).map { Int64(n * 1000 + $0) })
            XCTAssertEqual(records.map(\.sequence), (0..<30).map { n < 5 ? -1 : Int32(5 + $0) })
        }
    }

    /// Fjord builds; kafka-python validates the CRC and reads the same records.
    func testKafkaPythonReadsBatchesBuiltByFjord() throws {
        var stream = ByteBuffer()
        var expected = ""
        func describe(_ bytes: [UInt8]?) -> String { bytes.map { $0.map { String(format: "%02x", $0) }.joined() } ?? "None" }
        for (n, codec) in (allCodecs + [.gzip, .none]).enumerated() {
            var b = RecordBatchBuilder(baseOffset: Int64(n * 100), partitionLeaderEpoch: Int32(n), codec: codec)
            if n == 5 { b.producerId = 4242; b.producerEpoch = 1; b.baseSequence = 9; b.isTransactional = true }
            if n == 6 { b.logAppendTime = 1_800_000_000_000 }
            let samples = (0..<25).map { SampleRecord.make(tag: "fj\(n)", $0) }
            for s in samples { s.append(to: &b) }
            let batch = try b.build()
            stream.writeImmutableBuffer(batch.buffer)
            let tsType = n == 6 ? 1 : 0
            let maxTs = n == 6 ? 1_800_000_000_000 : samples.map(\.timestamp).max()!
            expected += "batch \(n * 100) \(n * 100 + 24) codec=\(codec.rawValue) crc=True count=25 tstype=\(tsType) max=\(maxTs)"
                + " pid=\(b.producerId) epoch=\(b.producerEpoch) seq=\(b.baseSequence) txn=\(n == 5 ? "True" : "False") ctrl=False\n"
            for (i, s) in samples.enumerated() {
                let ts = n == 6 ? 1_800_000_000_000 : s.timestamp
                let headers = s.headers.map { "\($0.key)=\(describe($0.value))" }.joined(separator: ",")
                expected += " \(n * 100 + i) \(ts) \(describe(s.key)) \(describe(s.value)) [\(headers)]\n"
            }
        }
        let marker = try RecordBatchBuilder.endTransactionMarkerBatch(
            EndTransactionMarker(type: .commit, coordinatorEpoch: 3), producerId: 4242, producerEpoch: 1,
            baseOffset: 700, timestamp: 1_700_000_000_999)
        stream.writeImmutableBuffer(marker.buffer)
        expected += "batch 700 700 codec=0 crc=True count=1 tstype=0 max=1700000000999 pid=4242 epoch=1 seq=-1 txn=True ctrl=True\n"
        expected += " 700 1700000000999 control version=0 type=1 value=000000000003\n"

        let dir = try TestPython.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/fjord.bin"
        try Data(stream.readableBytesView).write(to: URL(fileURLWithPath: path))
        let script = """
        import sys
        from kafka.record.memory_records import MemoryRecords
        from kafka.record.default_records import ControlRecord
        def hx(b):
            return "None" if b is None else bytes(b).hex()
        recs = MemoryRecords(open(sys.argv[1], "rb").read())
        out = []
        while recs.has_next():
            b = recs.next_batch()
            crc = b.validate_crc()
            out.append(f"batch {b.base_offset} {b.last_offset} codec={b.compression_type} crc={crc} count={b.records_count}"
                       f" tstype={b.timestamp_type} max={b.max_timestamp} pid={b.producer_id} epoch={b.producer_epoch}"
                       f" seq={b.base_sequence} txn={b.is_transactional} ctrl={b.is_control_batch}")
            for r in b:
                if isinstance(r, ControlRecord):
                    out.append(f" {r.offset} {r.timestamp} control version={r.version} type={r.type} value={hx(r.value)}")
                else:
                    hs = ",".join(f"{k}={hx(v)}" for k, v in r.headers)
                    out.append(f" {r.offset} {r.timestamp} {hx(r.key)} {hx(r.value)} [{hs}]")
        print("\\n".join(out))
        """
        let output = String(decoding: try TestPython.run(script, args: [path]), as: UTF8.self)
        let got = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(got.count, want.count)
        for (g, w) in zip(got, want) where g != w { XCTFail("kafka-python read\n  \(g)\nexpected\n  \(w)") }
    }
}
