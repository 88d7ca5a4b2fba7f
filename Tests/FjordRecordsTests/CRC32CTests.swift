import FjordRecords
import FjordTestSupport
import NIOCore
import XCTest

final class CRC32CTests: XCTestCase {
    /// Bit-at-a-time CRC-32C straight from the definition, the reference for the fast paths.
    private static func reference(_ bytes: some Sequence<UInt8>, crc: UInt32 = 0) -> UInt32 {
        var r = ~crc
        for byte in bytes {
            r ^= UInt32(byte)
            for _ in 0..<8 { r = (r >> 1) ^ (0x82F6_3B78 & (0 &- (r & 1))) }
        }
        return ~r
    }

    /// Deterministic pseudo-random bytes (xorshift64*).
    private static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed | 1
        var out = [UInt8]()
        out.reserveCapacity(count + 8)
        while out.count < count {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            let v = state &* 0x2545_F491_4F6C_DD1D
            withUnsafeBytes(of: v) { out.append(contentsOf: $0) }
        }
        return Array(out.prefix(count))
    }

    private func hardware(_ bytes: ArraySlice<UInt8>, crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { CRC32C.update(crc, $0) }
    }

    private func portable(_ bytes: ArraySlice<UInt8>, crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { CRC32C.updatePortable(crc, $0) }
    }

    func testKnownVectors() {
        // The check value of CRC-32C and the iSCSI vectors of RFC 3720, appendix B.4.
        let vectors: [([UInt8], UInt32)] = [
            ([], 0),
            (Array("123456789".utf8), 0xE306_9283),
            ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
            ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
            ((0..<32).map { UInt8($0) }, 0x46DD_794E),
            ((0..<32).reversed().map { UInt8($0) }, 0x113F_DB5C),
            ([0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
              0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
              0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
             0xD996_3A56),
        ]
        for (bytes, expected) in vectors {
            XCTAssertEqual(CRC32C.checksum(bytes), expected, "\(bytes)")
            XCTAssertEqual(CRC32C.checksum(ByteBuffer(bytes: bytes)), expected)
            XCTAssertEqual(portable(bytes[...]), expected)
            XCTAssertEqual(Self.reference(bytes), expected)
        }
    }

    func testHardwarePathIsUsedWhereAvailable() {
        #if arch(x86_64)
        // Every x86_64 machine Fjord targets has SSE4.2 (Nehalem, 2008, and later).
        XCTAssertTrue(CRC32C.isHardwareAccelerated)
        #elseif arch(arm64) && os(macOS)
        XCTAssertTrue(CRC32C.isHardwareAccelerated)
        #endif
    }

    /// Every length 0...300 at every alignment: hardware, portable and the reference agree.
    func testSmallLengthsAndAlignments() {
        let data = Self.randomBytes(300 + 16, seed: 42)
        for offset in 0..<16 {
            for length in 0...300 {
                let slice = data[offset..<offset + length]
                let expected = Self.reference(slice)
                XCTAssertEqual(hardware(slice), expected, "offset \(offset) length \(length)")
                XCTAssertEqual(portable(slice), expected, "offset \(offset) length \(length)")
            }
        }
    }

    /// Lengths around the interleaving strides (3 × 64, 3 × 256, 3 × 8192 bytes) and large
    /// buffers, unaligned, with a non-zero starting CRC.
    func testLargeBuffersAndStrideBoundaries() {
        let data = Self.randomBytes((1 << 20) + 64, seed: 7)
        var lengths = [191, 192, 193, 767, 768, 769, 960, 24_575, 24_576, 24_577, 24_576 + 768 + 192 + 7,
                       49_152, 100_000, 16_384, 65_536, 1 << 20]
        lengths += (0..<20).map { 1000 + $0 * 4093 }
        for length in lengths {
            for offset in [0, 1, 3, 8, 13] where offset + length <= data.count {
                let slice = data[offset..<offset + length]
                let expected = portable(slice, crc: 0x1234_5678)
                XCTAssertEqual(hardware(slice, crc: 0x1234_5678), expected, "offset \(offset) length \(length)")
            }
        }
        // The portable path itself against the bit-at-a-time reference on a large buffer.
        let big = data[5..<200_005]
        XCTAssertEqual(portable(big), Self.reference(big))
        XCTAssertEqual(hardware(big), Self.reference(big))
    }

    /// `update` continues a CRC: splitting the input anywhere gives the same result.
    func testIncrementalUpdates() {
        let data = Self.randomBytes(70_000, seed: 99)
        let whole = CRC32C.checksum(data)
        for split in [0, 1, 7, 8, 63, 1000, 24_577, 50_001, 69_999, 70_000] {
            let first = hardware(data[..<split])
            XCTAssertEqual(hardware(data[split...], crc: first), whole, "split \(split)")
            XCTAssertEqual(portable(data[split...], crc: portable(data[..<split])), whole, "split \(split)")
        }
        // Byte by byte.
        var crc: UInt32 = 0
        for i in 0..<1000 { crc = hardware(data[i..<i + 1], crc: crc) }
        XCTAssertEqual(crc, CRC32C.checksum(data[..<1000]))
    }

    /// Only the readable bytes of a ByteBuffer count, wherever the reader index is.
    func testByteBufferReadableRegion() {
        let data = Self.randomBytes(5000, seed: 3)
        var buffer = ByteBuffer(bytes: data)
        buffer.moveReaderIndex(forwardBy: 17)
        buffer.moveWriterIndex(to: 4000)
        XCTAssertEqual(CRC32C.checksum(buffer), Self.reference(data[17..<4000]))
        let slice = buffer.getSlice(at: 100, length: 1234)!
        XCTAssertEqual(CRC32C.checksum(slice), Self.reference(data[100..<1334]))
        XCTAssertEqual(CRC32C.update(CRC32C.checksum(data[..<17]), buffer), Self.reference(data[..<4000]))
    }

    /// Same values as an independent implementation: kafka-python's CRC-32C.
    func testMatchesKafkaPython() throws {
        var input = [UInt8]()
        var expected = [UInt32]()
        for (i, length) in [0, 1, 9, 100, 1000, 4096, 65_537].enumerated() {
            let bytes = Self.randomBytes(length, seed: UInt64(i + 1))
            input += withUnsafeBytes(of: UInt32(length).bigEndian) { Array($0) } + bytes
            expected.append(CRC32C.checksum(bytes))
        }
        let script = """
            import struct, sys
            from kafka.record._crc32c import crc
            data = sys.stdin.buffer.read()
            pos, out = 0, []
            while pos < len(data):
                (n,) = struct.unpack_from('>I', data, pos)
                out.append(crc(data[pos + 4:pos + 4 + n]))
                pos += 4 + n
            print(' '.join(str(c) for c in out))
            """
        let output = try TestPython.run(script, stdin: input)
        let values = String(decoding: output, as: UTF8.self).split(whereSeparator: \.isWhitespace).compactMap { UInt32($0) }
        XCTAssertEqual(values, expected)
    }
}
