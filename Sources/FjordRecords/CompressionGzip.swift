import CFjordZlib
import NIOCore

/// gzip through zlib: a single gzip member (window 32 KiB, memLevel 8, default strategy)
/// when compressing; one or more gzip members (or zlib data) when decompressing, ignoring
/// trailing bytes after a member that are not another gzip member, as Java's
/// `GZIPInputStream` (which Kafka uses) does.
enum GzipCodec {
    /// zlib counts in 32-bit `uInt`; larger buffers are fed in pieces of this size.
    private static let maxChunk = Int(UInt32.max)

    static func compress(_ input: ByteBuffer, level: Int, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        try CodecContexts.current.withDeflater(level: Int32(level)) {
            (z: UnsafeMutablePointer<z_stream>) throws(CompressionError) -> ByteBuffer in
            try input.withUnsafeReadableBytes { (src: UnsafeRawBufferPointer) throws(CompressionError) -> ByteBuffer in
                // deflateBound on an initialised gzip stream includes the gzip header and
                // trailer, so one deflate(Z_FINISH) call completes for inputs under 4 GiB.
                let bound = Int(deflateBound(z, UInt(src.count)))
                return try makeCodecOutput(capacity: bound, allocator: allocator) {
                    (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
                    var inPos = 0
                    var outPos = 0
                    while true {
                        let inChunk = min(src.count - inPos, maxChunk)
                        let outChunk = min(dst.count - outPos, maxChunk)
                        z.pointee.next_in = UnsafeMutablePointer(
                            mutating: codecBase(src).advanced(by: inPos).assumingMemoryBound(to: Bytef.self))
                        z.pointee.avail_in = uInt(inChunk)
                        z.pointee.next_out = codecBase(dst).advanced(by: outPos).assumingMemoryBound(to: Bytef.self)
                        z.pointee.avail_out = uInt(outChunk)
                        let flush = inPos + inChunk == src.count ? Z_FINISH : Z_NO_FLUSH
                        let rc = deflate(z, flush)
                        inPos += inChunk - Int(z.pointee.avail_in)
                        outPos += outChunk - Int(z.pointee.avail_out)
                        if rc == Z_STREAM_END { return outPos }
                        guard rc == Z_OK || (rc == Z_BUF_ERROR && outPos < dst.count) else {
                            throw .libraryFailure(codec: .gzip, reason: "deflate failed (\(rc))")
                        }
                    }
                }
            }
        }
    }

    static func decompress(_ input: ByteBuffer, limit: Int, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        try CodecContexts.current.withInflater { (z: UnsafeMutablePointer<z_stream>) throws(CompressionError) -> ByteBuffer in
            try input.withUnsafeReadableBytes { (src: UnsafeRawBufferPointer) throws(CompressionError) -> ByteBuffer in
                guard !src.isEmpty else { throw .corrupt(codec: .gzip, reason: "empty input") }
                var out = BoundedOutput(limit: limit, expectedSize: sizeHint(src), allocator: allocator)
                var inPos = 0
                var streamEnded = false
                while true {
                    let inChunk = min(src.count - inPos, maxChunk)
                    z.pointee.next_in = UnsafeMutablePointer(
                        mutating: codecBase(src).advanced(by: inPos).assumingMemoryBound(to: Bytef.self))
                    z.pointee.avail_in = uInt(inChunk)
                    var rc = Z_OK
                    var produced = 0
                    try out.produce { (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
                        let outChunk = min(dst.count, maxChunk)
                        z.pointee.next_out = codecBase(dst).assumingMemoryBound(to: Bytef.self)
                        z.pointee.avail_out = uInt(outChunk)
                        // Z_FINISH once all input is in: when the output fits, zlib skips
                        // keeping a sliding window copy; otherwise it acts as Z_NO_FLUSH.
                        rc = inflate(z, inPos + inChunk == src.count ? Z_FINISH : Z_NO_FLUSH)
                        produced = outChunk - Int(z.pointee.avail_out)
                        return produced
                    }
                    let consumed = inChunk - Int(z.pointee.avail_in)
                    inPos += consumed
                    switch rc {
                    case Z_STREAM_END:
                        // One member done. Like Java's GZIPInputStream, continue with a
                        // following gzip member and ignore trailing bytes that are not one.
                        if src.count - inPos >= 2 && src[inPos] == 0x1f && src[inPos + 1] == 0x8b {
                            inflateReset(z)
                        } else {
                            streamEnded = true
                        }
                    case Z_OK, Z_BUF_ERROR:
                        // Z_BUF_ERROR: the output filled before the end (with Z_FINISH), or
                        // no progress was possible, which with output space always offered
                        // (if only the one-byte probe) means the input ran out.
                        if consumed == 0 && produced == 0 {
                            throw .corrupt(codec: .gzip, reason: "unexpected end of data")
                        }
                    case Z_MEM_ERROR:
                        throw .libraryFailure(codec: .gzip, reason: "out of memory")
                    default:
                        let reason = z.pointee.msg.map { String(cString: $0) } ?? "inflate failed (\(rc))"
                        throw .corrupt(codec: .gzip, reason: reason)
                    }
                    if streamEnded { return out.buffer }
                }
            }
        }
    }

    /// The expected output size: the gzip trailer's ISIZE (input size mod 2^32) of the last
    /// member, trusted no further than deflate's maximum ratio (about 1032:1); the output
    /// still grows if the hint is low and stops at the limit if it lies high.
    private static func sizeHint(_ src: UnsafeRawBufferPointer) -> Int {
        guard src.count >= 18 else { return 256 }
        let isize = Int(src.loadUnaligned(fromByteOffset: src.count - 4, as: UInt32.self).littleEndian)
        return min(isize, src.count * 1032)
    }
}
