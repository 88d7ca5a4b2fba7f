import FjordRecords
import NIOCore
import XCTest

/// Bad input never traps: every truncation, byte flip or legacy format surfaces as an error
/// or an invalid/truncated result.
final class RecordBatchRobustnessTests: XCTestCase {
    /// Decodes everything reachable from `bytes`, swallowing errors. Crashes are the failure.
    @discardableResult
    private func exercise(_ bytes: [UInt8], maxDecompressed: Int = 1 << 20) -> (batches: Int, records: Int, errors: Int) {
        var batches = 0, records = 0, errors = 0
        for item in RecordBatchReader(ByteBuffer(bytes: bytes)) {
            guard case let .batch(batch, _) = item else { errors += 1; continue }
            batches += 1
            _ = batch.description
            _ = (batch.lastSequence, batch.lastOffset, batch.deleteHorizonMs, batch.compression, batch.isValid)
            do { try batch.validate() } catch { errors += 1 }
            do {
                var it = try batch.makeRecordIterator(maxDecompressedBytes: maxDecompressed)
                while let r = try it.next() {
                    records += 1
                    for h in r.headers { _ = h.keyString }
                    _ = try? r.controlRecordType()
                    _ = try? EndTransactionMarker(record: r)
                }
            } catch {
                errors += 1
            }
        }
        return (batches, records, errors)
    }

    func testTruncationAtEveryBytePosition() throws {
        for codec in allCodecs {
            let (batch, _) = try makeSampleBatch(codec: codec, tag: "t", count: 12)
            let bytes = batch.buffer.bytes
            for n in 0..<bytes.count {
                let prefix = Array(bytes[..<n])
                XCTAssertThrowsError(try RecordBatch(ByteBuffer(bytes: prefix))) { error in
                    guard case .truncated = error as? RecordBatchError else {
                        return XCTFail("\(codec) prefix \(n): \(error)")
                    }
                }
                var reader = RecordBatchReader(ByteBuffer(bytes: prefix))
                switch reader.next() {
                case nil: XCTAssertEqual(n, 0)
                case let .truncated(position, available, needed)?:
                    XCTAssertEqual(position, 0)
                    XCTAssertEqual(available, n)
                    if n >= 12 { XCTAssertEqual(needed, bytes.count) }
                case let other?: XCTFail("\(codec) prefix \(n): \(other)")
                }
            }
        }
    }

    /// Cuts the records section at every position but keeps the header consistent (length and
    /// CRC fixed up), so the record parser and the codecs see every possible short input.
    func testTruncatedRecordsWithConsistentHeader() throws {
        for codec in allCodecs {
            let (batch, _) = try makeSampleBatch(codec: codec, tag: "h", count: 12)
            let bytes = batch.buffer.bytes
            for n in RecordBatch.Layout.headerSize..<bytes.count {
                var cut = Array(bytes[..<n])
                let length = UInt32(n - 12)
                cut[8] = UInt8(length >> 24); cut[9] = UInt8((length >> 16) & 0xFF)
                cut[10] = UInt8((length >> 8) & 0xFF); cut[11] = UInt8(length & 0xFF)
                fixCRC(&cut)
                let parsed = try RecordBatch(ByteBuffer(bytes: cut))
                XCTAssertNoThrow(try parsed.validate())
                XCTAssertThrowsError(try parsed.records(), "\(codec) cut at \(n) must not decode 12 records")
            }
        }
    }

    func testRandomByteFlips() throws {
        var rng = SplitMix64(seed: 0xF70D)
        for codec in allCodecs {
            let (batch, _) = try makeSampleBatch(codec: codec, tag: "f", count: 20)
            let original = batch.buffer.bytes
            for round in 0..<1500 {
                var bytes = original
                let flips = Int.random(in: 1...3, using: &rng)
                for _ in 0..<flips {
                    let at = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[at] ^= UInt8.random(in: 1...255, using: &rng)
                }
                // Half the rounds get a matching CRC so the records are parsed for real.
                let crcFixed = round % 2 == 1
                if crcFixed { fixCRC(&bytes) }
                let result = exercise(bytes)
                if !crcFixed && bytes[21...] != original[21...] {
                    // A flip inside the CRC-covered region (or the CRC) is always detected.
                    if result.batches > 0 { XCTAssertGreaterThan(result.errors, 0, "\(codec) round \(round)") }
                }
            }
        }
    }

    func testGarbageNeverCrashes() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<3000 {
            let count = Int.random(in: 0..<300, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count > RecordBatch.Layout.headerSize {
                bytes[16] = 2  // get past the magic check most of the time
                bytes[8] = 0; bytes[9] = 0
                let length = UInt16(max(49, bytes.count - 12 - Int.random(in: 0...2, using: &rng)))
                bytes[10] = UInt8(length >> 8); bytes[11] = UInt8(length & 0xFF)
                bytes[21] = 0; bytes[22] &= 0x07  // mostly valid attributes
                if Bool.random(using: &rng) { fixCRC(&bytes) }
            }
            exercise(bytes)
        }
    }

    func testLegacyMessageSetsAreRejectedClearly() {
        // A magic 1 message: offset, size, crc, magic, attributes, timestamp, key (-1), value.
        var v1 = ByteBuffer()
        v1.writeInteger(Int64(0))
        let v1Size: Int32 = 27  // crc 4, magic 1, attributes 1, timestamp 8, key 4, value 4 + 5
        v1.writeInteger(v1Size)
        v1.writeInteger(UInt32(0x1234_5678))
        v1.writeInteger(Int8(1))
        v1.writeInteger(Int8(0))
        v1.writeInteger(Int64(1_700_000_000_000))
        v1.writeInteger(Int32(-1))
        v1.writeInteger(Int32(5))
        v1.writeString("hello")
        // A magic 0 message: no timestamp.
        var v0 = ByteBuffer()
        v0.writeInteger(Int64(0))
        let v0Size: Int32 = 16  // crc 4, magic 1, attributes 1, key 4, value 4 + 2
        v0.writeInteger(v0Size)
        v0.writeInteger(UInt32(0x1234_5678))
        v0.writeInteger(Int8(0))
        v0.writeInteger(Int8(0))
        v0.writeInteger(Int32(-1))
        v0.writeInteger(Int32(2))
        v0.writeString("hi")

        for (magic, buffer) in [(Int8(1), v1), (Int8(0), v0)] {
            XCTAssertThrowsError(try RecordBatch(buffer)) {
                XCTAssertEqual($0 as? RecordBatchError, .unsupportedMagic(magic))
                XCTAssertTrue("\($0)".contains("legacy message format"), "\($0)")
            }
            var reader = RecordBatchReader(buffer)
            XCTAssertEqual(reader.next(), .corrupt(position: 0, error: .unsupportedMagic(magic)))
            XCTAssertNil(reader.next())
            XCTAssertEqual(RecordBatch.frame(buffer), .invalid(.unsupportedMagic(magic)))
        }
        // A legacy message after a good v2 batch: the batch, then the rejection at its position.
        let good = try! makeSampleBatch(codec: .none, tag: "g", count: 2).0
        var mixed = good.buffer
        mixed.writeImmutableBuffer(v1)
        let items = Array(RecordBatchReader(mixed))
        XCTAssertEqual(items.count, 2)
        XCTAssertEqual(items[1], .corrupt(position: good.sizeInBytes, error: .unsupportedMagic(1)))
    }

    func testLengthBounds() throws {
        let (batch, _) = try makeSampleBatch(codec: .none, tag: "b", count: 3)
        var bytes = batch.buffer.bytes
        // Too small for a v2 header.
        bytes[8...11] = [0, 0, 0, 48]
        XCTAssertEqual(RecordBatch.frame(ByteBuffer(bytes: bytes)), .invalid(.invalidBatchLength(48)))
        // Negative.
        bytes[8...11] = [0xFF, 0xFF, 0xFF, 0xFE]
        XCTAssertEqual(RecordBatch.frame(ByteBuffer(bytes: bytes)), .invalid(.invalidBatchLength(-2)))
        // Over the limit.
        bytes[8...11] = [0x7F, 0xFF, 0xFF, 0xFF]
        XCTAssertEqual(RecordBatch.frame(ByteBuffer(bytes: bytes)),
                       .invalid(.recordTooLarge(size: Int(Int32.max) + 12, limit: RecordBatch.defaultMaxBatchSize)))
        XCTAssertThrowsError(try RecordBatch(batch.buffer, maxBatchSize: batch.sizeInBytes - 1))
        XCTAssertNoThrow(try RecordBatch(batch.buffer, maxBatchSize: batch.sizeInBytes))
        // Within the limit but longer than the data: truncated.
        bytes[8...11] = [0, 0, 0x10, 0]
        XCTAssertEqual(RecordBatch.frame(ByteBuffer(bytes: bytes)), .incomplete(size: 0x1000 + 12))
        // Extra bytes after a single batch.
        XCTAssertThrowsError(try RecordBatch(ByteBuffer(bytes: batch.buffer.bytes + [0]))) {
            XCTAssertEqual($0 as? RecordBatchError, .trailingBytes(1))
        }
    }

    func testRecordCountMismatch() throws {
        let (batch, _) = try makeSampleBatch(codec: .none, tag: "m", count: 5)
        for declared: Int32 in [0, 4, 6, 1_000_000, -1] {
            var bytes = batch.buffer.bytes
            withUnsafeBytes(of: declared.bigEndian) { bytes.replaceSubrange(57..<61, with: $0) }
            fixCRC(&bytes)
            let parsed = try RecordBatch(ByteBuffer(bytes: bytes))
            XCTAssertThrowsError(try parsed.records(), "declared \(declared)")
        }
    }

    func testUnknownCodecIsAnError() throws {
        let (batch, _) = try makeSampleBatch(codec: .none, tag: "u", count: 2)
        var bytes = batch.buffer.bytes
        bytes[22] = 0x05
        fixCRC(&bytes)
        let parsed = try RecordBatch(ByteBuffer(bytes: bytes))
        XCTAssertNil(parsed.compression)
        XCTAssertThrowsError(try parsed.validate()) { XCTAssertEqual($0 as? RecordBatchError, .unsupportedCompression(5)) }
        XCTAssertThrowsError(try parsed.records()) { XCTAssertEqual($0 as? RecordBatchError, .unsupportedCompression(5)) }
    }

    func testDecompressionIsBounded() throws {
        for codec in allCodecs where codec != .none {
            var b = RecordBatchBuilder(codec: codec)
            b.append(key: nil, value: ByteBuffer(repeating: 0, count: 4 << 20), timestamp: 0)
            let batch = try b.build()
            XCTAssertLessThan(batch.sizeInBytes, 1 << 20, "\(codec)")
            XCTAssertThrowsError(try batch.makeRecordIterator(maxDecompressedBytes: 1 << 20), "\(codec)")
            XCTAssertEqual(try batch.records(maxDecompressedBytes: 8 << 20).first?.valueSize, 4 << 20)
        }
    }
}
