import FjordRecords
import NIOCore
import XCTest

final class RecordBatchTests: XCTestCase {
    func testRoundTripAllCodecs() throws {
        for codec in allCodecs {
            var b = RecordBatchBuilder(baseOffset: 100, partitionLeaderEpoch: 7, codec: codec,
                                       producerId: 42, producerEpoch: 3, baseSequence: 10)
            let samples = (0..<50).map { SampleRecord.make(tag: "\(codec)", $0) }
            for s in samples { s.append(to: &b) }
            let built = try b.build()
            XCTAssertTrue(b.isEmpty, "build() resets the builder")

            // Parse again from the raw bytes, as a reader would.
            let batch = try RecordBatch(ByteBuffer(bytes: built.buffer.bytes))
            XCTAssertNoThrow(try batch.validate(), "\(codec)")
            XCTAssertTrue(batch.isValid)
            XCTAssertEqual(batch.magic, 2)
            XCTAssertEqual(batch.compression, codec)
            XCTAssertEqual(batch.baseOffset, 100)
            XCTAssertEqual(batch.lastOffset, 149)
            XCTAssertEqual(batch.nextOffset, 150)
            XCTAssertEqual(batch.lastOffsetDelta, 49)
            XCTAssertEqual(batch.recordCount, 50)
            XCTAssertEqual(batch.partitionLeaderEpoch, 7)
            XCTAssertEqual(batch.producerId, 42)
            XCTAssertEqual(batch.producerEpoch, 3)
            XCTAssertEqual(batch.baseSequence, 10)
            XCTAssertEqual(batch.lastSequence, 59)
            XCTAssertEqual(batch.timestampType, .createTime)
            XCTAssertFalse(batch.isTransactional)
            XCTAssertFalse(batch.isControl)
            XCTAssertNil(batch.deleteHorizonMs)
            XCTAssertEqual(batch.baseTimestamp, samples[0].timestamp)
            XCTAssertEqual(batch.maxTimestamp, samples.map(\.timestamp).max())
            XCTAssertEqual(Int(batch.batchLength) + 12, batch.sizeInBytes)
            if codec != .none {
                XCTAssertLessThan(batch.sizeInBytes, try makeSampleBatch(codec: .none, tag: "\(codec)", count: 50).0.sizeInBytes)
            }

            let records = try batch.records()
            XCTAssertEqual(records.map(SampleRecord.init), samples, "\(codec)")
            XCTAssertEqual(records.map(\.offset), Array(100..<150))
            XCTAssertEqual(records.map(\.sequence), (10..<60).map { Int32($0) })
            XCTAssertEqual(records[3].keySize, -1)
            XCTAssertEqual(records[7].keySize, 0)
            XCTAssertEqual(records[5].valueSize, -1)
        }
    }

    func testNullsAndEmptyFieldsAreDistinct() throws {
        var b = RecordBatchBuilder()
        b.append(key: nil, value: nil, timestamp: 5)
        b.append(key: ByteBuffer(), value: ByteBuffer(), timestamp: 6)
        b.append(key: nil, value: ByteBuffer(string: "v"),
                 headers: [RecordHeader(key: "n", value: nil as [UInt8]?), RecordHeader(key: "", value: "")],
                 timestamp: 4)
        let batch = try b.build()
        let r = try batch.records()
        XCTAssertNil(r[0].key)
        XCTAssertNil(r[0].value)
        XCTAssertEqual(r[1].key, ByteBuffer())
        XCTAssertEqual(r[1].value, ByteBuffer())
        XCTAssertTrue(r[1].headers.isEmpty)
        let headers = Array(r[2].headers)
        XCTAssertEqual(headers.count, 2)
        XCTAssertEqual(headers[0].keyString, "n")
        XCTAssertNil(headers[0].value)
        XCTAssertEqual(headers[1].keyString, "")
        XCTAssertEqual(headers[1].value, ByteBuffer())
        XCTAssertEqual(r[2].headers.first(named: "n"), .some(nil))
        XCTAssertTrue(r[2].headers.first(named: "absent") == nil, "absent header")
        XCTAssertEqual(batch.baseTimestamp, 5)
        XCTAssertEqual(batch.maxTimestamp, 6)
        XCTAssertEqual(r.map(\.timestamp), [5, 6, 4])
    }

    func testControlBatchTransactionMarkers() throws {
        for type in [ControlRecordType.commit, .abort] {
            let batch = try RecordBatchBuilder.endTransactionMarkerBatch(
                EndTransactionMarker(type: type, coordinatorEpoch: 17), producerId: 9001, producerEpoch: 4,
                baseOffset: 33, partitionLeaderEpoch: 2, timestamp: 1_700_000_000_123)
            let parsed = try RecordBatch(ByteBuffer(bytes: batch.buffer.bytes))
            try parsed.validate()
            XCTAssertTrue(parsed.isControl)
            XCTAssertTrue(parsed.isTransactional)
            XCTAssertEqual(parsed.producerId, 9001)
            XCTAssertEqual(parsed.producerEpoch, 4)
            XCTAssertEqual(parsed.baseSequence, -1)
            XCTAssertEqual(parsed.compression, CompressionCodec.none)
            let records = try parsed.records()
            XCTAssertEqual(records.count, 1)
            XCTAssertEqual(records[0].offset, 33)
            XCTAssertEqual(try records[0].controlRecordType(), type)
            XCTAssertEqual(records[0].key?.bytes, [0, 0, 0, UInt8(type.rawValue)])
            XCTAssertEqual(records[0].value?.bytes, [0, 0, 0, 0, 0, 17])
            let marker = try EndTransactionMarker(record: records[0])
            XCTAssertEqual(marker, EndTransactionMarker(type: type, coordinatorEpoch: 17))
        }
    }

    func testArbitraryControlRecords() throws {
        let payload = ByteBuffer(bytes: [0, 1, 2, 3, 4, 5, 6])
        let batch = try RecordBatchBuilder.controlBatch(type: .leaderChange, value: payload, baseOffset: 10,
                                                        partitionLeaderEpoch: 3, timestamp: 99)
        try batch.validate()
        XCTAssertTrue(batch.isControl)
        XCTAssertFalse(batch.isTransactional)
        let r = try batch.records()
        XCTAssertEqual(try r[0].controlRecordType(), .leaderChange)
        XCTAssertEqual(try r[0].controlRecordType().name, "LEADER_CHANGE")
        XCTAssertEqual(r[0].value, payload)
        XCTAssertThrowsError(try EndTransactionMarker(record: r[0]))
        XCTAssertEqual(ControlRecordType(rawValue: 42).name, "UNKNOWN")

        // Several control records written through the builder directly.
        var b = RecordBatchBuilder()
        b.appendControlRecord(type: .snapshotHeader, value: ByteBuffer(bytes: [1]), timestamp: 1)
        b.appendControlRecord(type: ControlRecordType(rawValue: 6), version: 1, value: nil, timestamp: 2)
        let two = try b.build()
        XCTAssertTrue(two.isControl)
        XCTAssertEqual(try two.records().map { try $0.controlRecordType() }, [.snapshotHeader, .kraftVoters])
    }

    func testTransactionalIdempotentBatch() throws {
        let (batch, _) = try makeSampleBatch(codec: .zstd, tag: "t", count: 5) {
            $0.producerId = 123_456_789_012
            $0.producerEpoch = 7
            $0.baseSequence = 1000
            $0.isTransactional = true
        }
        try batch.validate()
        XCTAssertTrue(batch.isTransactional)
        XCTAssertFalse(batch.isControl)
        XCTAssertEqual(batch.producerId, 123_456_789_012)
        XCTAssertEqual(batch.attributes.rawValue, 0x10 | 4)
        XCTAssertEqual(batch.lastSequence, 1004)
    }

    func testSequenceNumbersWrap() throws {
        let (batch, _) = try makeSampleBatch(codec: .none, tag: "s", count: 4) { $0.baseSequence = Int32.max - 1 }
        XCTAssertEqual(try batch.records().map(\.sequence), [Int32.max - 1, Int32.max, 0, 1])
        XCTAssertEqual(batch.lastSequence, 1)
        XCTAssertEqual(RecordBatch.incrementSequence(-1, by: 5), -1)
    }

    func testLogAppendTimeFromBuilder() throws {
        let (batch, samples) = try makeSampleBatch(codec: .lz4, tag: "l", count: 10) { $0.logAppendTime = 1_800_000_000_000 }
        try batch.validate()
        XCTAssertEqual(batch.timestampType, .logAppendTime)
        XCTAssertEqual(batch.maxTimestamp, 1_800_000_000_000)
        XCTAssertEqual(batch.baseTimestamp, samples[0].timestamp)
        XCTAssertEqual(Set(try batch.records().map(\.timestamp)), [1_800_000_000_000])
    }

    func testInPlaceRewritesKeepTheBatchValid() throws {
        for codec in allCodecs {
            var (batch, samples) = try makeSampleBatch(codec: codec, tag: "r", count: 20)
            let crc = batch.crc
            batch.setBaseOffset(1_000_000)
            batch.setPartitionLeaderEpoch(12)
            XCTAssertEqual(batch.crc, crc, "baseOffset and partitionLeaderEpoch are outside the CRC")
            XCTAssertNoThrow(try batch.validate())
            XCTAssertEqual(batch.baseOffset, 1_000_000)
            XCTAssertEqual(batch.lastOffset, 1_000_019)
            XCTAssertEqual(batch.partitionLeaderEpoch, 12)
            XCTAssertEqual(try batch.records().map(\.offset), Array(1_000_000..<1_000_020))

            batch.setLogAppendTime(1_900_000_000_000)
            XCTAssertNoThrow(try batch.validate(), "CRC recomputed after the LogAppendTime rewrite")
            XCTAssertNotEqual(batch.crc, crc)
            XCTAssertEqual(batch.timestampType, .logAppendTime)
            XCTAssertEqual(batch.compression, codec, "codec bits kept")
            XCTAssertEqual(Set(try batch.records().map(\.timestamp)), [1_900_000_000_000])

            batch.setMaxTimestamp(samples.map(\.timestamp).max()!, timestampType: .createTime)
            XCTAssertNoThrow(try batch.validate())
            XCTAssertEqual(try batch.records().map(SampleRecord.init), samples)

            // The rewritten bytes parse the same from scratch.
            let again = try RecordBatch(ByteBuffer(bytes: batch.buffer.bytes))
            XCTAssertEqual(again, batch)
        }
    }

    func testInPlaceRewriteOfASliceDoesNotTouchTheSource() throws {
        let (a, _) = try makeSampleBatch(codec: .none, tag: "a", count: 3)
        let (b, _) = try makeSampleBatch(codec: .none, tag: "b", count: 3, baseOffset: 3)
        var stream = ByteBuffer()
        stream.writeImmutableBuffer(a.buffer)
        stream.writeImmutableBuffer(b.buffer)
        var batches = try RecordBatchReader.batches(in: stream)
        batches[1].setBaseOffset(77)
        XCTAssertEqual(batches[1].baseOffset, 77)
        XCTAssertEqual(try RecordBatchReader.batches(in: stream)[1].baseOffset, 3)
    }

    func testDeleteHorizon() throws {
        let (batch, samples) = try makeSampleBatch(codec: .gzip, tag: "d", count: 6, configure: { _ in })
        XCTAssertNil(batch.deleteHorizonMs)
        var b = RecordBatchBuilder(codec: .gzip, deleteHorizonMs: 1_650_000_000_000)
        for s in samples { s.append(to: &b) }
        let withHorizon = try b.build()
        XCTAssertTrue(withHorizon.hasDeleteHorizonMs)
        XCTAssertEqual(withHorizon.deleteHorizonMs, 1_650_000_000_000)
        XCTAssertEqual(try withHorizon.records().map(SampleRecord.init), samples)
    }

    func testExplicitOffsetDeltas() throws {
        var b = RecordBatchBuilder(baseOffset: 50)
        try b.append(offsetDelta: 0, key: nil, value: ByteBuffer(string: "a"), timestamp: 1)
        try b.append(offsetDelta: 4, key: nil, value: ByteBuffer(string: "b"), timestamp: 2)
        XCTAssertThrowsError(try b.append(offsetDelta: 4, key: nil, value: nil, timestamp: 3))
        b.append(key: nil, value: ByteBuffer(string: "c"), timestamp: 3)
        let batch = try b.build()
        XCTAssertEqual(batch.recordCount, 3)
        XCTAssertEqual(batch.lastOffsetDelta, 5)
        XCTAssertEqual(batch.lastOffset, 55)
        XCTAssertEqual(try batch.records().map(\.offset), [50, 54, 55])
    }

    func testEmptyBuilderThrows() {
        var b = RecordBatchBuilder()
        XCTAssertThrowsError(try b.build())
    }

    func testReaderWalksConcatenatedBatchesAndReportsTheTornTail() throws {
        var stream = ByteBuffer()
        var sizes: [Int] = []
        var offset: Int64 = 0
        for codec in allCodecs {
            let (batch, _) = try makeSampleBatch(codec: codec, tag: "c", count: 7, baseOffset: offset)
            stream.writeImmutableBuffer(batch.buffer)
            sizes.append(batch.sizeInBytes)
            offset += 7
        }
        let complete = stream.readableBytes
        let (tail, _) = try makeSampleBatch(codec: .none, tag: "t", count: 2)
        stream.writeBytes(tail.buffer.bytes.prefix(30))

        var reader = RecordBatchReader(stream, basePosition: 1000, verifyChecksums: true)
        var position = 1000
        for (i, size) in sizes.enumerated() {
            guard case let .batch(batch, pos)? = reader.next() else { return XCTFail("batch \(i)") }
            XCTAssertEqual(pos, position)
            XCTAssertEqual(batch.baseOffset, Int64(i * 7))
            XCTAssertEqual(batch.compression, allCodecs[i])
            position += size
        }
        XCTAssertEqual(reader.position, 1000 + complete)
        XCTAssertEqual(reader.next(), .truncated(position: 1000 + complete, available: 30, needed: tail.sizeInBytes))
        XCTAssertNil(reader.next())
        XCTAssertThrowsError(try RecordBatchReader.batches(in: stream))
        XCTAssertEqual(try RecordBatchReader.batches(in: stream.getSlice(at: 0, length: complete)!).count, 5)
    }

    func testReaderWithChecksumVerificationStopsAtACorruptBatch() throws {
        let (a, _) = try makeSampleBatch(codec: .none, tag: "a", count: 3)
        var bytes = a.buffer.bytes + a.buffer.bytes
        bytes[a.sizeInBytes + 70] ^= 0x40
        var reader = RecordBatchReader(ByteBuffer(bytes: bytes), verifyChecksums: true)
        guard case .batch? = reader.next() else { return XCTFail() }
        guard case let .corrupt(position, .corruptCRC(expected, actual))? = reader.next() else { return XCTFail() }
        XCTAssertEqual(position, a.sizeInBytes)
        XCTAssertEqual(expected, a.crc)
        XCTAssertNotEqual(actual, expected)
        XCTAssertNil(reader.next())
        // Without verification the batch is yielded; validate() reports it.
        let all = Array(RecordBatchReader(ByteBuffer(bytes: bytes)))
        guard case let .batch(second, _) = all[1] else { return XCTFail() }
        XCTAssertFalse(second.isValid)
        XCTAssertThrowsError(try second.validate()) {
            guard case .corruptCRC = $0 as? RecordBatchError else { return XCTFail("\($0)") }
        }
    }

    func testRecordIterationDoesNotCopyUncompressedData() throws {
        let (batch, _) = try makeSampleBatch(codec: .none, tag: "z", count: 3)
        let records = try batch.records()
        // Slices share the batch's storage: their bytes lie inside the batch's bytes.
        batch.buffer.withUnsafeReadableBytes { whole in
            records[0].value!.withUnsafeReadableBytes { v in
                XCTAssertTrue(v.baseAddress! >= whole.baseAddress! && v.baseAddress! + v.count <= whole.baseAddress! + whole.count)
            }
        }
    }
}
