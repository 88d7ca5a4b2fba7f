import CFjordLZ4
import CFjordSnappy
import CFjordZlib
import CFjordZstd
import FjordRecords
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Codec benchmark: Fjord's `Compression` wrapper against the C libraries called directly
/// with the same settings (same format, level, block size; contexts and output buffers
/// reused, as the most efficient C caller would), on the same data: 16 KiB batch-like
/// payloads of semi-compressible text records. Throughput is uncompressed MB/s; the ratio
/// wrapper/raw should be >= 0.9. Also CRC-32C (hardware and portable) against memcpy.
///
/// `FJORD_BENCH_CODEC_MB` sets the data size (default 8 MiB); `FJORD_BENCH_SECONDS` the time
/// per measurement (default 1 s, split into alternating wrapper/raw rounds).
func runCodecBench() {
    let megabytes = Int(codecBenchEnv("FJORD_BENCH_CODEC_MB") ?? "") ?? 8
    let seconds = Double(codecBenchEnv("FJORD_BENCH_SECONDS") ?? "") ?? 1
    let payloads = makeCodecBenchPayloads(totalBytes: megabytes << 20, payloadSize: 16 * 1024)
    let totalBytes = payloads.reduce(0) { $0 + $1.readableBytes }
    print("codec: \(payloads.count) payloads of 16 KiB text records (\(totalBytes >> 20) MiB), \(seconds) s per measurement")

    runCRCBench(payloads, seconds: seconds)
    for codec in [CompressionCodec.gzip, .snappy, .lz4, .zstd] {
        let raw = RawCodec(codec)
        let maxCompressed = payloads.map { raw.compressBound($0.readableBytes) }.max() ?? 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: max(maxCompressed, 1 << 20), alignment: 64)
        defer { scratch.deallocate() }

        // The compressed payloads (Fjord's), checked to match the raw output sizes roughly and
        // to decode with the raw path.
        var compressed: [ByteBuffer] = []
        var compressedBytes = 0
        for p in payloads {
            do {
                let c = try Compression.compress(p, codec: codec)
                compressedBytes += c.readableBytes
                compressed.append(c)
            } catch {
                print("codec: \(codec): ERROR compressing: \(error)")
                return
            }
        }
        var sink = 0
        let wrapperCompress: () -> Void = {
            for p in payloads { sink &+= (try? Compression.compress(p, codec: codec))?.readableBytes ?? -1 }
        }
        let rawCompress: () -> Void = {
            for p in payloads { sink &+= p.withUnsafeReadableBytes { raw.compress($0, into: scratch) } }
        }
        let wrapperDecompress: () -> Void = {
            for c in compressed {
                sink &+= (try? Compression.decompress(c, codec: codec, maxOutputBytes: 1 << 20))?.readableBytes ?? -1
            }
        }
        let rawDecompress: () -> Void = {
            for c in compressed { sink &+= c.withUnsafeReadableBytes { raw.decompress($0, into: scratch) } }
        }
        var rawDecoded = 0
        for c in compressed { rawDecoded += c.withUnsafeReadableBytes { raw.decompress($0, into: scratch) } }
        if rawDecoded != totalBytes { print("codec: \(codec): ERROR: raw decode of Fjord's output gave \(rawDecoded) bytes") }

        let (wc, rc) = compareCodecPasses(wrapperCompress, rawCompress, seconds: seconds)
        let (wd, rd) = compareCodecPasses(wrapperDecompress, rawDecompress, seconds: seconds)
        let mb = Double(totalBytes) / 1e6
        let ratio = Double(totalBytes) / Double(max(compressedBytes, 1))
        let name = codec.name + String(repeating: " ", count: max(0, 6 - codec.name.count))
        let compressLine = "compress \(codecBenchFormat(mb / wc)) MB/s vs raw \(codecBenchFormat(mb / rc)) MB/s"
            + " = \(codecBenchFormat(rc / wc))x"
        let decompressLine = "decompress \(codecBenchFormat(mb / wd)) MB/s vs raw \(codecBenchFormat(mb / rd)) MB/s"
            + " = \(codecBenchFormat(rd / wd))x"
        print("codec: \(name) ratio \(codecBenchFormat(ratio))x  \(compressLine)  \(decompressLine)")
        if sink == 0 { print("codec: \(codec): ERROR: nothing produced") }
    }
    runStreamedZstdBench(payloads, seconds: seconds)
    print("codec: (ratios are wrapper/raw throughput; target >= 0.9x)")
}

/// CRC-32C over the payloads: hardware path, portable path, and memcpy of the same bytes.
private func runCRCBench(_ payloads: [ByteBuffer], seconds: Double) {
    let total = payloads.reduce(0) { $0 + $1.readableBytes }
    let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 64)
    defer { destination.deallocate() }
    memset(destination.baseAddress!, 1, destination.count)
    var sink: UInt32 = 0
    let hardware = timeCodecPass(seconds: seconds / 2) { for p in payloads { sink ^= CRC32C.checksum(p) } }
    let portable = timeCodecPass(seconds: seconds / 2) {
        for p in payloads { sink ^= p.withUnsafeReadableBytes { CRC32C.updatePortable(0, $0) } }
    }
    let copy = timeCodecPass(seconds: seconds / 2) {
        for p in payloads {
            p.withUnsafeReadableBytes { src in _ = memcpy(destination.baseAddress!, src.baseAddress!, src.count) }
        }
    }
    let gb = Double(total) / 1e9
    print("codec: crc32c hardware \(codecBenchFormat(gb / hardware)) GB/s (\(CRC32C.isHardwareAccelerated ? "CPU instruction" : "table fallback")),"
          + " portable \(codecBenchFormat(gb / portable)) GB/s, memcpy \(codecBenchFormat(gb / copy)) GB/s"
          + " (hardware/memcpy \(codecBenchFormat(copy / hardware))x)  [\(sink & 1)]")
}

/// zstd frames as the Java client writes them: streamed in 16 KiB pieces, so the frame has
/// no content size and a window sized for unknown input (2 MiB at level 3). Fjord must
/// stream-decode these; the raw baseline decodes one-shot into a buffer known to be large
/// enough (which only a caller that knows the size can do).
private func runStreamedZstdBench(_ payloads: [ByteBuffer], seconds: Double) {
    guard let cctx = ZSTD_createCCtx(), let dctx = ZSTD_createDCtx() else { return }
    defer {
        ZSTD_freeCCtx(cctx)
        ZSTD_freeDCtx(dctx)
    }
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3)
    var frames: [ByteBuffer] = []
    for p in payloads {
        var frame = ByteBuffer()
        frame.reserveCapacity(ZSTD_compressBound(p.readableBytes) + 64)
        _ = p.withUnsafeReadableBytes { src in
            frame.writeWithUnsafeMutableBytes(minimumWritableBytes: ZSTD_compressBound(src.count) + 64) { dst in
                var output = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
                var pos = 0
                while pos < src.count {
                    let n = min(1024, src.count - pos)
                    var input = ZSTD_inBuffer(src: src.baseAddress! + pos, size: n, pos: 0)
                    while input.pos < input.size { _ = ZSTD_compressStream2(cctx, &output, &input, ZSTD_e_continue) }
                    pos += n
                }
                var empty = ZSTD_inBuffer(src: src.baseAddress, size: 0, pos: 0)
                while ZSTD_compressStream2(cctx, &output, &empty, ZSTD_e_end) != 0 {}
                return output.pos
            }
        }
        let declared = frame.withUnsafeReadableBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        if declared != UInt64.max { print("codec: zstd streamed: ERROR: frame declares its content size") }
        frames.append(frame)
    }
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
    defer { scratch.deallocate() }
    var sink = 0
    let (wrapper, raw) = compareCodecPasses({
        for f in frames { sink &+= (try? Compression.decompress(f, codec: .zstd, maxOutputBytes: 1 << 20))?.readableBytes ?? -1 }
    }, {
        for f in frames {
            sink &+= f.withUnsafeReadableBytes { ZSTD_decompressDCtx(dctx, scratch.baseAddress, scratch.count, $0.baseAddress, $0.count) }
        }
    }, seconds: seconds)
    let mb = Double(payloads.reduce(0) { $0 + $1.readableBytes }) / 1e6
    print("codec: zstd streamed frames (no content size): decompress \(codecBenchFormat(mb / wrapper)) MB/s"
          + " vs raw one-shot \(codecBenchFormat(mb / raw)) MB/s = \(codecBenchFormat(raw / wrapper))x  [\(sink & 1)]")
}

/// The codec libraries called directly, with the settings `Compression` uses.
private final class RawCodec {
    let codec: CompressionCodec
    // zlib streams must not move once initialised, hence heap-allocated.
    private let deflater = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let inflater = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var zstdC: OpaquePointer?
    private var zstdD: OpaquePointer?
    private var lz4C: OpaquePointer?
    private var lz4D: OpaquePointer?
    private var lz4Prefs = LZ4F_preferences_t()

    init(_ codec: CompressionCodec) {
        self.codec = codec
        deflater.initialize(to: z_stream())
        inflater.initialize(to: z_stream())
        switch codec {
        case .gzip:
            precondition(deflateInit2_(deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                                       zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
            precondition(inflateInit2_(inflater, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        case .zstd:
            zstdC = ZSTD_createCCtx()
            zstdD = ZSTD_createDCtx()
        case .lz4:
            precondition(LZ4F_isError(LZ4F_createCompressionContext(&lz4C, UInt32(LZ4F_VERSION))) == 0)
            precondition(LZ4F_isError(LZ4F_createDecompressionContext(&lz4D, UInt32(LZ4F_VERSION))) == 0)
            lz4Prefs.frameInfo.blockSizeID = LZ4F_max64KB
            lz4Prefs.frameInfo.blockMode = LZ4F_blockIndependent
            lz4Prefs.compressionLevel = 0
            lz4Prefs.autoFlush = 1
        case .none, .snappy:
            break
        }
    }

    deinit {
        if codec == .gzip {
            deflateEnd(deflater)
            inflateEnd(inflater)
        }
        deflater.deallocate()
        inflater.deallocate()
        if let zstdC { ZSTD_freeCCtx(zstdC) }
        if let zstdD { ZSTD_freeDCtx(zstdD) }
        if let lz4C { LZ4F_freeCompressionContext(lz4C) }
        if let lz4D { LZ4F_freeDecompressionContext(lz4D) }
    }

    func compressBound(_ n: Int) -> Int {
        switch codec {
        case .gzip: return Int(deflateBound(deflater, UInt(n)))
        case .snappy: return 16 + (n / 32768 + 1) * (4 + snappy_max_compressed_length(32768))
        case .lz4: return Int(LZ4F_HEADER_SIZE_MAX) + LZ4F_compressBound(n, &lz4Prefs)
        case .zstd: return ZSTD_compressBound(n)
        case .none: return n
        }
    }

    /// Compresses `src` into `dst`; returns the compressed size.
    func compress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int {
        let s = src.baseAddress!, d = dst.baseAddress!
        switch codec {
        case .gzip:
            deflateReset(deflater)
            deflater.pointee.next_in = UnsafeMutablePointer(mutating: s.assumingMemoryBound(to: Bytef.self))
            deflater.pointee.avail_in = uInt(src.count)
            deflater.pointee.next_out = d.assumingMemoryBound(to: Bytef.self)
            deflater.pointee.avail_out = uInt(dst.count)
            precondition(deflate(deflater, Z_FINISH) == Z_STREAM_END)
            return dst.count - Int(deflater.pointee.avail_out)
        case .snappy:
            d.storeBytes(of: UInt64(0x8253_4E41_5050_5900).bigEndian, as: UInt64.self)
            d.storeBytes(of: UInt64(0x0000_0001_0000_0001).bigEndian, toByteOffset: 8, as: UInt64.self)
            var out = 16, pos = 0
            while pos < src.count {
                let n = min(32768, src.count - pos)
                var length = dst.count - out - 4
                precondition(snappy_compress((s + pos).assumingMemoryBound(to: CChar.self), n,
                                             (d + out + 4).assumingMemoryBound(to: CChar.self), &length) == SNAPPY_OK)
                d.storeBytes(of: UInt32(length).bigEndian, toByteOffset: out, as: UInt32.self)
                out += 4 + length
                pos += n
            }
            return out
        case .lz4:
            var pos = LZ4F_compressBegin(lz4C, d, dst.count, &lz4Prefs)
            pos += LZ4F_compressUpdate(lz4C, d + pos, dst.count - pos, s, src.count, nil)
            pos += LZ4F_compressEnd(lz4C, d + pos, dst.count - pos, nil)
            return pos
        case .zstd:
            return ZSTD_compressCCtx(zstdC, d, dst.count, s, src.count, 3)
        case .none:
            return 0
        }
    }

    /// Decompresses `src` into `dst` (large enough); returns the decompressed size.
    func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int {
        let s = src.baseAddress!, d = dst.baseAddress!
        switch codec {
        case .gzip:
            inflateReset(inflater)
            inflater.pointee.next_in = UnsafeMutablePointer(mutating: s.assumingMemoryBound(to: Bytef.self))
            inflater.pointee.avail_in = uInt(src.count)
            inflater.pointee.next_out = d.assumingMemoryBound(to: Bytef.self)
            inflater.pointee.avail_out = uInt(dst.count)
            precondition(inflate(inflater, Z_FINISH) == Z_STREAM_END)
            return dst.count - Int(inflater.pointee.avail_out)
        case .snappy:
            var pos = 16, out = 0
            while pos < src.count {
                let n = Int(UInt32(bigEndian: src.loadUnaligned(fromByteOffset: pos, as: UInt32.self)))
                var length = dst.count - out
                precondition(snappy_uncompress((s + pos + 4).assumingMemoryBound(to: CChar.self), n,
                                               (d + out).assumingMemoryBound(to: CChar.self), &length) == SNAPPY_OK)
                out += length
                pos += 4 + n
            }
            return out
        case .lz4:
            var dstSize = dst.count, srcSize = src.count
            precondition(LZ4F_decompress(lz4D, d, &dstSize, s, &srcSize, nil) == 0)
            return dstSize
        case .zstd:
            return ZSTD_decompressDCtx(zstdD, d, dst.count, s, src.count)
        case .none:
            return 0
        }
    }
}

/// Text-like records (JSON lines with varying ids, amounts and words) cut into payloads.
private func makeCodecBenchPayloads(totalBytes: Int, payloadSize: Int) -> [ByteBuffer] {
    let words = ["order", "created", "customer", "amount", "currency", "EUR", "NOK", "status", "shipped",
                 "warehouse", "oslo", "bergen", "trondheim", "priority", "normal", "express", "sku", "qty"]
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    var payloads: [ByteBuffer] = []
    var made = 0
    while made < totalBytes {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payloadSize + 256)
        while buffer.readableBytes < payloadSize {
            let r = next()
            let w1 = words[Int(r % UInt64(words.count))], w2 = words[Int((r >> 8) % UInt64(words.count))]
            buffer.writeString("{\"id\":\(r >> 16),\"\(w1)\":\"\(w2)\",\"amount\":\((r >> 40) % 100_000),"
                               + "\"ts\":\(1_700_000_000_000 + Int(made + buffer.readableBytes))}\n")
        }
        buffer.moveWriterIndex(to: payloadSize)
        made += payloadSize
        payloads.append(buffer)
    }
    return payloads
}

/// Times `wrapper` and `raw` passes alternately for `seconds` in total; best pass of each.
private func compareCodecPasses(_ wrapper: () -> Void, _ raw: () -> Void, seconds: Double) -> (Double, Double) {
    var bestWrapper = Double.infinity, bestRaw = Double.infinity
    let rounds = 4
    for _ in 0..<rounds {
        bestWrapper = min(bestWrapper, timeCodecPass(seconds: seconds / Double(2 * rounds), wrapper))
        bestRaw = min(bestRaw, timeCodecPass(seconds: seconds / Double(2 * rounds), raw))
    }
    return (bestWrapper, bestRaw)
}

/// Runs `body` repeatedly for about `seconds` (at least twice); returns the fastest run.
private func timeCodecPass(seconds: Double, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    var best = Double.infinity
    var spent = 0.0
    var runs = 0
    while spent < seconds || runs < 2 {
        let d = clock.measure(body)
        let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        best = min(best, s)
        spent += s
        runs += 1
    }
    return best
}

private func codecBenchEnv(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}

private func codecBenchFormat(_ x: Double) -> String {
    if x >= 100 { return "\(Int(x.rounded()))" }
    return "\((x * 100).rounded() / 100)"
}
