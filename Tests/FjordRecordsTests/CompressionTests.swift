@_spi(CustomByteBufferAllocator) import NIOCore
import FjordRecords
import FjordTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Test data for the codec tests.
private enum CodecSamples {
    /// Deterministic pseudo-random bytes (xorshift64*), incompressible.
    static func random(_ count: Int, seed: UInt64) -> [UInt8] {
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

    /// Text-like records (JSON-ish lines with varying ids), compressible about 3–6×.
    static func text(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        let words = ["order", "created", "customer", "amount", "currency", "EUR", "status", "shipped",
                     "warehouse", "oslo", "bergen", "trondheim", "priority", "normal", "express"]
        var out = [UInt8]()
        out.reserveCapacity(count + 200)
        var i: UInt64 = seed
        while out.count < count {
            i = i &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let a = words[Int(i >> 59) % words.count], b = words[Int((i >> 40) & 0xF) % words.count]
            out += Array("{\"id\":\(i >> 20),\"\(a)\":\"\(b)\",\"ts\":\(1_700_000_000_000 + (i >> 44))}\n".utf8)
        }
        return Array(out.prefix(count))
    }

    /// The payloads every codec must round-trip.
    static let roundTrip: [(String, [UInt8])] = [
        ("empty", []),
        ("one byte", [0x41]),
        ("tiny", Array("hello, fjord".utf8)),
        ("1 MiB random", random(1 << 20, seed: 11)),
        ("1 MiB zeros", [UInt8](repeating: 0, count: 1 << 20)),
        ("300 KiB text", text(300 * 1024)),
        ("odd size text", text(32 * 1024 * 3 + 17, seed: 5)),
    ]

    /// Payloads exchanged with the Python implementations.
    static let interop: [[UInt8]] = [
        [],
        [0x7A],
        text(16 * 1024),
        text(200 * 1024, seed: 9),
        random(70_000, seed: 4),
    ]
}

/// Whether the readable bytes of `buffer` are exactly `bytes` (memcmp: fast in debug builds).
private func sameBytes(_ buffer: ByteBuffer, _ bytes: [UInt8]) -> Bool {
    buffer.readableBytes == bytes.count && buffer.withUnsafeReadableBytes { b in
        bytes.withUnsafeBytes { a in a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
    }
}

/// Frames a list of byte strings as `[uint32 BE length][bytes]...` (the Python scripts'
/// stdin/stdout format).
private func frame(_ items: [[UInt8]]) -> [UInt8] {
    var out = [UInt8]()
    for item in items {
        withUnsafeBytes(of: UInt32(item.count).bigEndian) { out += $0 }
        out += item
    }
    return out
}

private func unframe(_ bytes: [UInt8]) -> [[UInt8]] {
    var items = [[UInt8]]()
    var pos = 0
    while pos + 4 <= bytes.count {
        let n = bytes[pos..<pos + 4].reduce(0) { $0 << 8 | Int($1) }
        items.append(Array(bytes[pos + 4..<pos + 4 + n]))
        pos += 4 + n
    }
    return items
}

/// Python helpers shared by the interop scripts.
private let pythonFraming = """
    import struct, sys
    def read_items():
        data, pos, items = sys.stdin.buffer.read(), 0, []
        while pos < len(data):
            (n,) = struct.unpack_from('>I', data, pos)
            items.append(bytes(data[pos + 4:pos + 4 + n]))
            pos += 4 + n
        return items
    def write_items(items):
        out = sys.stdout.buffer
        for item in items:
            out.write(struct.pack('>I', len(item)))
            out.write(item)
        out.flush()

    """

// MARK: - Allocation tracking

/// The largest single allocation made through `trackingAllocator` (tests run serially).
nonisolated(unsafe) private var largestTrackedAllocation = 0

/// A ByteBuffer allocator that records the largest block it hands out.
private let trackingAllocator = ByteBufferAllocator(
    allocate: { size in
        largestTrackedAllocation = max(largestTrackedAllocation, Int(size))
        return malloc(size)
    },
    reallocate: { ptr, _, newSize in
        largestTrackedAllocation = max(largestTrackedAllocation, Int(newSize))
        return realloc(ptr, newSize)
    },
    deallocate: { ptr in free(ptr) },
    copy: { dst, src, count in dst.copyMemory(from: src, byteCount: Int(count)) }
)

final class CompressionTests: XCTestCase {
    private let compressedCodecs: [CompressionCodec] = [.gzip, .snappy, .lz4, .zstd]

    private func roundTrip(_ data: [UInt8], _ codec: CompressionCodec, level: Int? = nil,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let compressed = try Compression.compress(ByteBuffer(bytes: data), codec: codec, level: level)
        let back = try Compression.decompress(compressed, codec: codec, maxOutputBytes: data.count)
        XCTAssertEqual(back.readableBytes, data.count, "\(codec) level \(level.map(String.init) ?? "default")",
                       file: file, line: line)
        XCTAssertTrue(sameBytes(back, data), "\(codec) level \(level.map(String.init) ?? "default")",
                      file: file, line: line)
    }

    // MARK: Names

    func testCodecNamesAndIds() {
        XCTAssertEqual(CompressionCodec.allCases.map(\.name), ["none", "gzip", "snappy", "lz4", "zstd"])
        XCTAssertEqual(CompressionCodec.allCases.map(\.dumpLogName), ["NONE", "GZIP", "SNAPPY", "LZ4", "ZSTD"])
        XCTAssertEqual(CompressionCodec.allCases.map(\.rawValue), [0, 1, 2, 3, 4])
        for codec in CompressionCodec.allCases {
            XCTAssertEqual(CompressionCodec(name: codec.name), codec)
            XCTAssertEqual(CompressionCodec(name: codec.dumpLogName), codec)
            XCTAssertEqual("\(codec)", codec.name)
        }
        XCTAssertEqual(CompressionCodec(name: "Zstd"), .zstd)
        XCTAssertNil(CompressionCodec(name: "producer"))
        XCTAssertNil(CompressionCodec(name: "brotli"))
        XCTAssertNil(CompressionCodec(rawValue: 5))
        XCTAssertEqual(CompressionCodec.gzip.defaultLevel, -1)
        XCTAssertEqual(CompressionCodec.lz4.defaultLevel, 9)
        XCTAssertEqual(CompressionCodec.zstd.defaultLevel, 3)
        XCTAssertNil(CompressionCodec.snappy.defaultLevel)
    }

    // MARK: Round trips

    func testRoundTripEveryCodec() throws {
        for codec in CompressionCodec.allCases {
            for (name, data) in CodecSamples.roundTrip {
                XCTAssertNoThrow(try roundTrip(data, codec), "\(codec) \(name)")
            }
        }
    }

    func testCompressesCompressibleData() throws {
        let text = ByteBuffer(bytes: CodecSamples.text(1 << 20))
        let zeros = ByteBuffer(repeating: 0, count: 1 << 20)
        for codec in compressedCodecs {
            let t = try Compression.compress(text, codec: codec)
            XCTAssertLessThan(t.readableBytes, text.readableBytes / 2, "\(codec) text")
            let z = try Compression.compress(zeros, codec: codec)
            XCTAssertLessThan(z.readableBytes, zeros.readableBytes / 20, "\(codec) zeros")
        }
    }

    func testLevels() throws {
        let data = CodecSamples.text(100_000)
        for level in [-1, 1, 6, 9] { try roundTrip(data, .gzip, level: level) }
        for level in [1, 2, 3, 9, 12, 17] { try roundTrip(data, .lz4, level: level) }
        for level in [-5, 1, 3, 10, 19] { try roundTrip(data, .zstd, level: level) }
        try roundTrip(data, .snappy, level: 123)  // ignored
        // Higher levels compress at least as well on text.
        let input = ByteBuffer(bytes: data)
        XCTAssertLessThanOrEqual(try Compression.compress(input, codec: .gzip, level: 9).readableBytes,
                                 try Compression.compress(input, codec: .gzip, level: 1).readableBytes)
        XCTAssertLessThan(try Compression.compress(input, codec: .lz4, level: 12).readableBytes,
                          try Compression.compress(input, codec: .lz4).readableBytes)
        XCTAssertLessThan(try Compression.compress(input, codec: .zstd, level: 19).readableBytes,
                          try Compression.compress(input, codec: .zstd, level: -5).readableBytes)

        for (codec, level) in [(CompressionCodec.gzip, 0), (.gzip, 10), (.gzip, -2), (.lz4, 0), (.lz4, 18), (.zstd, 23)] {
            XCTAssertThrowsError(try Compression.compress(input, codec: codec, level: level)) {
                XCTAssertEqual($0 as? CompressionError, .invalidLevel(codec: codec, level: level))
            }
        }
    }

    func testNoneIsIdentityAndBounded() throws {
        let input = ByteBuffer(bytes: CodecSamples.text(1000))
        XCTAssertEqual(try Compression.compress(input, codec: .none), input)
        XCTAssertEqual(try Compression.decompress(input, codec: .none, maxOutputBytes: 1000), input)
        XCTAssertThrowsError(try Compression.decompress(input, codec: .none, maxOutputBytes: 999)) {
            XCTAssertEqual($0 as? CompressionError, .outputTooLarge(limit: 999))
        }
    }

    /// Only the readable bytes count, and the input's indices are left alone.
    func testReadsOnlyTheReadableSlice() throws {
        let data = CodecSamples.text(50_000)
        var big = ByteBuffer(bytes: CodecSamples.random(1000, seed: 2) + data + CodecSamples.random(1000, seed: 3))
        big.moveReaderIndex(forwardBy: 1000)
        big.moveWriterIndex(to: 1000 + data.count)
        for codec in compressedCodecs {
            let compressed = try Compression.compress(big, codec: codec)
            XCTAssertEqual(big.readerIndex, 1000)
            var framed = ByteBuffer(bytes: [1, 2, 3])
            framed.writeImmutableBuffer(compressed)
            framed.moveReaderIndex(forwardBy: 3)
            let back = try Compression.decompress(framed, codec: codec, maxOutputBytes: 1 << 20)
            XCTAssertTrue(sameBytes(back, data), "\(codec)")
            XCTAssertEqual(framed.readerIndex, 3)
        }
    }

    // MARK: Bounds

    /// A limit of exactly the output size succeeds; one byte less fails.
    func testLimitIsExact() throws {
        for (name, data) in CodecSamples.roundTrip where !data.isEmpty {
            for codec in compressedCodecs {
                let compressed = try Compression.compress(ByteBuffer(bytes: data), codec: codec)
                let back = try Compression.decompress(compressed, codec: codec, maxOutputBytes: data.count)
                XCTAssertEqual(back.readableBytes, data.count, "\(codec) \(name)")
                XCTAssertThrowsError(try Compression.decompress(compressed, codec: codec, maxOutputBytes: data.count - 1),
                                     "\(codec) \(name)") {
                    XCTAssertEqual($0 as? CompressionError, .outputTooLarge(limit: data.count - 1), "\(codec) \(name)")
                }
            }
        }
        for codec in compressedCodecs {
            let empty = try Compression.compress(ByteBuffer(), codec: codec)
            XCTAssertEqual(try Compression.decompress(empty, codec: codec, maxOutputBytes: 0).readableBytes, 0)
        }
    }

    /// 100 MiB of zeros compressed by Fjord fails to decompress under a 1 MiB limit, and the
    /// output never takes more than the limit.
    func testDecompressionBombsFromFjord() throws {
        let zeros = ByteBuffer(repeating: 0, count: 100 << 20)
        let limit = 1 << 20
        for codec in compressedCodecs {
            let bomb = try Compression.compress(zeros, codec: codec, level: codec == .gzip ? 1 : nil)
            XCTAssertLessThan(bomb.readableBytes, 6 << 20, "\(codec)")
            largestTrackedAllocation = 0
            XCTAssertThrowsError(try Compression.decompress(bomb, codec: codec, maxOutputBytes: limit, allocator: trackingAllocator),
                                 "\(codec)") {
                XCTAssertEqual($0 as? CompressionError, .outputTooLarge(limit: limit), "\(codec)")
            }
            XCTAssertLessThanOrEqual(largestTrackedAllocation, limit, "\(codec)")
        }
    }

    /// Bombs written by the Python libraries, streamed (no content size) and with a declared
    /// size, fail the same way.
    func testDecompressionBombsFromPython() throws {
        let script = pythonFraming + """
            import zlib, snappy, lz4.frame, zstandard
            MiB = 1 << 20
            chunk = bytes(MiB)
            def gzip_bomb():
                c = zlib.compressobj(6, zlib.DEFLATED, 31)
                return b''.join(c.compress(chunk) for _ in range(100)) + c.flush()
            def xerial_bomb():
                block = snappy.compress(bytes(32 * 1024))
                header = b'\\x82SNAPPY\\x00' + struct.pack('>ii', 1, 1)
                return header + (struct.pack('>i', len(block)) + block) * 3200
            def lz4_bomb(size):
                c = lz4.frame.LZ4FrameCompressor(block_linked=False)
                out = c.begin(source_size=100 * MiB if size else 0)
                return out + b''.join(c.compress(chunk) for _ in range(100)) + c.flush()
            def zstd_bomb(size):
                c = zstandard.ZstdCompressor().compressobj(size=100 * MiB if size else -1)
                return b''.join(c.compress(chunk) for _ in range(100)) + c.flush()
            write_items([gzip_bomb(), xerial_bomb(), snappy.compress(bytes(100 * MiB)),
                         lz4_bomb(False), lz4_bomb(True), zstd_bomb(False), zstd_bomb(True)])
            """
        let bombs = unframe(try TestPython.run(script))
        let codecs: [CompressionCodec] = [.gzip, .snappy, .snappy, .lz4, .lz4, .zstd, .zstd]
        XCTAssertEqual(bombs.count, codecs.count)
        let limit = 1 << 20
        for (i, (bomb, codec)) in zip(bombs, codecs).enumerated() {
            largestTrackedAllocation = 0
            XCTAssertThrowsError(try Compression.decompress(ByteBuffer(bytes: bomb), codec: codec, maxOutputBytes: limit,
                                                            allocator: trackingAllocator), "bomb \(i) \(codec)") {
                XCTAssertEqual($0 as? CompressionError, .outputTooLarge(limit: limit), "bomb \(i) \(codec)")
            }
            XCTAssertLessThanOrEqual(largestTrackedAllocation, limit, "bomb \(i) \(codec)")
            // The same bomb decodes in full with a large enough limit.
            let full = try Compression.decompress(ByteBuffer(bytes: bomb), codec: codec, maxOutputBytes: 100 << 20)
            XCTAssertEqual(full.readableBytes, 100 << 20, "bomb \(i) \(codec)")
        }
    }

    // MARK: Corrupt input

    func testGarbageThrows() {
        for codec in compressedCodecs {
            for seed in 1...20 as ClosedRange<UInt64> {
                let garbage = ByteBuffer(bytes: CodecSamples.random(Int(seed) * 97, seed: seed))
                XCTAssertThrowsError(try Compression.decompress(garbage, codec: codec, maxOutputBytes: 1 << 20),
                                     "\(codec) seed \(seed)") { error in
                    guard case .corrupt(let c, _)? = error as? CompressionError else {
                        return XCTFail("\(codec): unexpected \(error)")
                    }
                    XCTAssertEqual(c, codec)
                }
            }
            XCTAssertThrowsError(try Compression.decompress(ByteBuffer(), codec: codec, maxOutputBytes: 100), "\(codec) empty")
        }
    }

    /// Every truncation of a valid stream throws (snappy's xerial format has no end marker, so
    /// a cut at a block boundary is a shorter valid stream: it must decode to a prefix).
    func testTruncatedInputThrows() throws {
        let data = CodecSamples.text(100_000, seed: 3)
        for codec in compressedCodecs {
            let compressed = Array(try Compression.compress(ByteBuffer(bytes: data), codec: codec).readableBytesView)
            for cut in Array(0..<min(compressed.count, 300)) + stride(from: 300, to: compressed.count, by: 37) {
                let input = ByteBuffer(bytes: compressed[..<cut])
                do {
                    let out = try Compression.decompress(input, codec: codec, maxOutputBytes: 1 << 20)
                    XCTAssertEqual(codec, .snappy, "\(codec) cut at \(cut) decoded")
                    XCTAssertTrue(data.starts(with: out.readableBytesView), "\(codec) cut at \(cut)")
                } catch {
                    // Any CompressionError is fine (typed throws: nothing else can arrive).
                }
            }
        }
    }

    /// Flipped bytes never crash; gzip (CRC-32 trailer) always notices. Set
    /// `FJORD_CODEC_MUTATIONS` for a longer run (e.g. under `--sanitize=address`).
    func testCorruptedBytesNeverCrash() throws {
        let data = CodecSamples.text(40_000, seed: 8)
        let mutations = Int(ProcessInfo.processInfo.environment["FJORD_CODEC_MUTATIONS"] ?? "") ?? 300
        var rng = UInt64(12345)
        for codec in compressedCodecs {
            let compressed = Array(try Compression.compress(ByteBuffer(bytes: data), codec: codec).readableBytesView)
            for _ in 0..<mutations {
                rng = rng &* 6_364_136_223_846_793_005 &+ 1
                var bad = compressed
                let at = Int(rng >> 33) % bad.count
                bad[at] ^= UInt8(truncatingIfNeeded: rng >> 8) | 1
                do {
                    let out = try Compression.decompress(ByteBuffer(bytes: bad), codec: codec, maxOutputBytes: 1 << 20)
                    XCTAssertLessThanOrEqual(out.readableBytes, 1 << 20)
                    if codec == .gzip { XCTAssertTrue(sameBytes(out, data), "gzip accepted a flip at \(at)") }
                } catch {
                    // Any CompressionError is fine (typed throws: nothing else can arrive).
                }
            }
        }
    }

    /// A failed decompression leaves the thread's cached contexts usable.
    func testContextsRecoverAfterErrors() throws {
        let data = CodecSamples.text(200_000)
        for codec in compressedCodecs {
            let good = try Compression.compress(ByteBuffer(bytes: data), codec: codec)
            var bad = good
            bad.moveWriterIndex(to: good.writerIndex - 10)
            _ = try? Compression.decompress(bad, codec: codec, maxOutputBytes: 1 << 20)
            _ = try? Compression.decompress(good, codec: codec, maxOutputBytes: 1000)
            let back = try Compression.decompress(good, codec: codec, maxOutputBytes: 1 << 20)
            XCTAssertTrue(sameBytes(back, data), "\(codec)")
        }
        // Changing the gzip level between calls.
        try roundTrip(data, .gzip, level: 1)
        try roundTrip(data, .gzip, level: 9)
        try roundTrip(data, .gzip)
    }

    /// Many threads at once, each with its own cached contexts.
    func testConcurrentUse() throws {
        let inputs = (0..<8).map { CodecSamples.text(20_000 + $0 * 3000, seed: UInt64($0)) }
        let failures = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for round in 0..<20 {
                for codec in [CompressionCodec.gzip, .snappy, .lz4, .zstd] {
                    let data = inputs[(worker + round) % inputs.count]
                    do {
                        let c = try Compression.compress(ByteBuffer(bytes: data), codec: codec)
                        let d = try Compression.decompress(c, codec: codec, maxOutputBytes: data.count)
                        if !sameBytes(d, data) { failures.increment() }
                    } catch {
                        failures.increment()
                    }
                }
            }
        }
        XCTAssertEqual(failures.value, 0)
    }

    // MARK: Formats

    /// Fjord writes the xerial header and ≤ 32 KiB blocks, like snappy-java.
    func testSnappyWritesXerialFraming() throws {
        let data = CodecSamples.text(100_000)
        let out = Array(try Compression.compress(ByteBuffer(bytes: data), codec: .snappy).readableBytesView)
        XCTAssertEqual(Array(out[..<16]), [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1])
        var pos = 16
        var blocks = 0
        while pos < out.count {
            let n = out[pos..<pos + 4].reduce(0) { $0 << 8 | Int($1) }
            pos += 4 + n
            blocks += 1
        }
        XCTAssertEqual(pos, out.count)
        XCTAssertEqual(blocks, 4)  // 3 × 32 KiB + 1 696 bytes
    }

    /// Fjord writes LZ4 frames as Kafka does: 64 KiB independent blocks, no checksums, no
    /// content size.
    func testLZ4FrameDescriptor() throws {
        let out = Array(try Compression.compress(ByteBuffer(bytes: CodecSamples.text(1000)), codec: .lz4).readableBytesView)
        XCTAssertEqual(Array(out[..<4]), [0x04, 0x22, 0x4D, 0x18], "magic")
        XCTAssertEqual(out[4], 0x60, "FLG: version 01, block independence, no checksums, no content size")
        XCTAssertEqual(out[5], 0x40, "BD: 64 KiB blocks")
        XCTAssertEqual(Array(out.suffix(4)), [0, 0, 0, 0], "end mark, no content checksum")
    }

    func testZstdFrameHasContentSize() throws {
        let out = Array(try Compression.compress(ByteBuffer(bytes: CodecSamples.text(1000)), codec: .zstd).readableBytesView)
        XCTAssertEqual(Array(out[..<4]), [0x28, 0xB5, 0x2F, 0xFD], "magic")
        XCTAssertNotEqual(out[4] & 0xC0, 0, "frame content size flag")
    }

    // MARK: Interop with independent implementations (Python)

    /// Data compressed by the Python libraries decompresses in Fjord.
    func testDecompressesPythonOutput() throws {
        let script = pythonFraming + """
            import gzip, zlib, snappy, lz4.frame, zstandard
            from kafka import codec
            def variants(x):
                half = len(x) // 2
                gz = zlib.compressobj(1, zlib.DEFLATED, 31)
                z = zstandard.ZstdCompressor().compressobj()
                return {
                    'gzip': [gzip.compress(x), codec.gzip_encode(x), gz.compress(x) + gz.flush(),
                             gzip.compress(x[:half]) + gzip.compress(x[half:])],
                    'snappy': [codec.snappy_encode(x, xerial_compatible=True), snappy.compress(x),
                               codec.snappy_encode(x, xerial_compatible=True, xerial_blocksize=4096)],
                    'lz4': [codec.lz4_encode(x), lz4.frame.compress(x),
                            lz4.frame.compress(x, block_linked=True, content_checksum=True, store_size=False,
                                               block_size=lz4.frame.BLOCKSIZE_MAX4MB),
                            lz4.frame.compress(x, compression_level=12, block_checksum=True),
                            lz4.frame.compress(x[:half]) + lz4.frame.compress(x[half:])],
                    'zstd': [codec.zstd_encode(x), zstandard.ZstdCompressor(level=19, write_checksum=True).compress(x),
                             z.compress(x) + z.flush(),
                             zstandard.ZstdCompressor(write_content_size=False).compress(x),
                             zstandard.ZstdCompressor().compress(x[:half]) + zstandard.ZstdCompressor().compress(x[half:])],
                }[sys.argv[1]]
            write_items([v for x in read_items() for v in variants(x)])
            """
        for codec in compressedCodecs {
            let compressed = unframe(try TestPython.run(script, args: [codec.name], stdin: frame(CodecSamples.interop)))
            let perInput = compressed.count / CodecSamples.interop.count
            XCTAssertEqual(compressed.count, perInput * CodecSamples.interop.count)
            for (i, blob) in compressed.enumerated() {
                let expected = CodecSamples.interop[i / perInput]
                let label = "\(codec) input \(i / perInput) variant \(i % perInput)"
                do {
                    let out = try Compression.decompress(ByteBuffer(bytes: blob), codec: codec, maxOutputBytes: 1 << 20)
                    XCTAssertTrue(sameBytes(out, expected), label)
                } catch {
                    XCTFail("\(label): \(error)")
                }
            }
        }
    }

    /// Data compressed by Fjord decompresses with kafka-python's codecs (and with the
    /// libraries' own strict decoders).
    func testPythonDecompressesFjordOutput() throws {
        let script = pythonFraming + """
            import gzip, lz4.frame, zstandard
            from kafka import codec
            def decode(x):
                name = sys.argv[1]
                if name == 'gzip':
                    a, b = codec.gzip_decode(x), gzip.decompress(x)
                elif name == 'snappy':
                    # kafka-python only recognises a xerial stream longer than its header.
                    a = b = codec.snappy_decode(x) if len(x) > 16 else b''
                elif name == 'lz4':
                    a, b = codec.lz4_decode(x), lz4.frame.decompress(x)
                else:
                    a, b = codec.zstd_decode(x), zstandard.ZstdDecompressor().decompress(x)
                assert a == b, name
                return a
            write_items([decode(x) for x in read_items()])
            """
        for codec in compressedCodecs {
            var inputs = [[UInt8]]()
            var expected = [[UInt8]]()
            for data in CodecSamples.interop {
                for level in [nil, codec == .gzip ? 9 : codec == .lz4 ? 12 : codec == .zstd ? 19 : nil] {
                    let c = try Compression.compress(ByteBuffer(bytes: data), codec: codec, level: level)
                    inputs.append(Array(c.readableBytesView))
                    expected.append(data)
                }
            }
            let decoded = unframe(try TestPython.run(script, args: [codec.name], stdin: frame(inputs)))
            XCTAssertEqual(decoded.count, expected.count, "\(codec)")
            for (i, (got, want)) in zip(decoded, expected).enumerated() {
                XCTAssertEqual(got, want, "\(codec) item \(i)")
            }
        }
    }
}

/// A thread-safe counter for `testConcurrentUse`.
private final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
