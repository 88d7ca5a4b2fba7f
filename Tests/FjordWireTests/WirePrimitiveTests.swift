import FjordWire
import NIOCore
import XCTest

final class WirePrimitiveTests: XCTestCase {
    func testZigZagVarintsMatchKafkaEncoding() throws {
        // Values and encodings from the protocol spec's zig-zag table.
        let cases: [(Int32, [UInt8])] = [
            (0, [0x00]), (-1, [0x01]), (1, [0x02]), (-2, [0x03]), (63, [0x7E]), (-64, [0x7F]),
            (64, [0x80, 0x01]), (Int32.max, [0xFE, 0xFF, 0xFF, 0xFF, 0x0F]), (Int32.min, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        ]
        for (v, bytes) in cases {
            var b = ByteBuffer()
            b.writeVarint(v)
            XCTAssertEqual(Array(b.readableBytesView), bytes, "\(v)")
            XCTAssertEqual(try b.readVarint(), v)
            XCTAssertEqual(b.readableBytes, 0)
        }
    }

    func testVarlongRoundTripAndBounds() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let v = Int64(bitPattern: rng.next())
            var b = ByteBuffer()
            b.writeVarlong(v)
            XCTAssertLessThanOrEqual(b.readableBytes, 10)
            XCTAssertEqual(try b.readVarlong(), v)
        }
        for v in [Int64.min, Int64.max, 0, -1] {
            var b = ByteBuffer()
            b.writeVarlong(v)
            XCTAssertEqual(try b.readVarlong(), v)
        }
        // An 11-byte varlong and a 6-byte varint are malformed, not an overflow trap.
        var long = ByteBuffer(bytes: Array(repeating: 0xFF, count: 10) + [0x01])
        XCTAssertThrowsError(try long.readVarlong())
        var int = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        XCTAssertThrowsError(try int.readVarint())
        var truncated = ByteBuffer(bytes: [0x80, 0x80])
        XCTAssertThrowsError(try truncated.readUnsignedVarint())
        XCTAssertEqual(truncated.readerIndex, 0, "a failed read must not consume")
    }

    func testUnsignedVarint() throws {
        for v: UInt32 in [0, 1, 127, 128, 16383, 16384, UInt32.max] {
            var b = ByteBuffer()
            b.writeUnsignedVarint(v)
            XCTAssertEqual(try b.readUnsignedVarint(), v)
        }
    }

    func testStringsClassicAndCompact() throws {
        var b = ByteBuffer()
        b.writeKafkaString("héllo", compact: false)
        XCTAssertEqual(Array(b.readableBytesView.prefix(2)), [0, 6])
        XCTAssertEqual(try b.readKafkaString(compact: false), "héllo")
        b.writeKafkaString("abc", compact: true)
        XCTAssertEqual(Array(b.readableBytesView), [4, 0x61, 0x62, 0x63])
        XCTAssertEqual(try b.readKafkaString(compact: true), "abc")
        b.writeKafkaNullableString(nil, compact: true)
        XCTAssertEqual(Array(b.readableBytesView), [0])
        XCTAssertNil(try b.readKafkaNullableString(compact: true))
        b.writeKafkaNullableString(nil, compact: false)
        XCTAssertEqual(Array(b.readableBytesView), [0xFF, 0xFF])
        XCTAssertThrowsError(try b.readKafkaString(compact: false))  // null where not allowed
        var bad = ByteBuffer(bytes: [0, 2, 0xC3, 0x28])  // invalid UTF-8: replaced, as Java decodes it
        XCTAssertEqual(try bad.readKafkaString(compact: false), "\u{FFFD}(")
        XCTAssertEqual(bad.readableBytes, 0)
        var short = ByteBuffer(bytes: [0, 9, 0x61])
        XCTAssertThrowsError(try short.readKafkaString(compact: false))
        var negative = ByteBuffer(bytes: [0xFF, 0xFE])
        XCTAssertThrowsError(try negative.readKafkaNullableString(compact: false))
    }

    func testBytesAreSlicesAndBounded() throws {
        var b = ByteBuffer()
        b.writeKafkaBytes(ByteBuffer(bytes: [1, 2, 3]), compact: false)
        b.writeKafkaNullableBytes(nil, compact: true)
        XCTAssertEqual(try b.readKafkaBytes(compact: false), ByteBuffer(bytes: [1, 2, 3]))
        XCTAssertNil(try b.readKafkaNullableBytes(compact: true))
        var huge = ByteBuffer()
        huge.writeInteger(Int32.max)
        XCTAssertThrowsError(try huge.readKafkaBytes(compact: false))
    }

    func testArrayLengthRejectsImpossibleCounts() throws {
        var b = ByteBuffer()
        b.writeInteger(Int32(1_000_000))
        b.writeBytes([1, 2, 3, 4])
        XCTAssertThrowsError(try b.readKafkaArrayLength(compact: false, minElementSize: 4))
        var ok = ByteBuffer()
        ok.writeInteger(Int32(1))
        ok.writeBytes([1, 2, 3, 4])
        XCTAssertEqual(try ok.readKafkaArrayLength(compact: false, minElementSize: 4), 1)
        var null = ByteBuffer(bytes: [0])
        XCTAssertEqual(try null.readKafkaArrayLength(compact: true), -1)
    }

    func testUUIDTextMatchesKafka() throws {
        XCTAssertEqual(KafkaUUID.zero.description, "AAAAAAAAAAAAAAAAAAAAAA")
        XCTAssertEqual(KafkaUUID.one.description, "AAAAAAAAAAAAAAAAAAAAAQ")
        let u = KafkaUUID(high: 0xFFFF_FFFF_FFFF_FFFF, low: 0xFFFF_FFFF_FFFF_FFFF)
        XCTAssertEqual(u.description, "_____________________w")
        XCTAssertEqual(KafkaUUID(u.description), u)
        XCTAssertNil(KafkaUUID("not-a-uuid"))
        XCTAssertNil(KafkaUUID("AAAAAAAAAAAAAAAAAAAAA="))
        for _ in 0..<1000 {
            let r = KafkaUUID.random()
            XCTAssertEqual(r.description.count, 22)
            XCTAssertFalse(r.description.hasPrefix("-"))
            XCTAssertEqual(KafkaUUID(r.description), r)
        }
        var b = ByteBuffer()
        b.writeKafkaUUID(u)
        XCTAssertEqual(try b.readKafkaUUID(), u)
    }

    func testTaggedFieldOrderEnforced() throws {
        var b = ByteBuffer()
        b.writeUnsignedVarint(2)
        b.writeUnsignedVarint(5); b.writeUnsignedVarint(0)
        b.writeUnsignedVarint(3); b.writeUnsignedVarint(0)
        var r = try TaggedFieldReader(from: &b)
        XCTAssertNotNil(try r.next(from: &b))
        XCTAssertThrowsError(try r.next(from: &b))
    }
}
