import CFjordZstd
import NIOCore

/// zstd frames. Compression writes one frame with its content size. Decompression takes one
/// or more frames: when every frame declares its content size (and the total fits the limit)
/// it decodes in one call into an exactly sized buffer; otherwise (frames written by a
/// streaming compressor, such as the Java client's) it streams into a growing buffer.
enum ZstdCodec {
    /// `ZSTD_CONTENTSIZE_UNKNOWN` and `ZSTD_CONTENTSIZE_ERROR` (macros Swift cannot import).
    private static let contentSizeUnknown = UInt64.max
    private static let contentSizeError = UInt64.max - 1

    static func compress(_ input: ByteBuffer, level: Int, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        try CodecContexts.current.withZstdCompressor { (cctx: OpaquePointer) throws(CompressionError) -> ByteBuffer in
            try input.withUnsafeReadableBytes { (src: UnsafeRawBufferPointer) throws(CompressionError) -> ByteBuffer in
                try makeCodecOutput(capacity: ZSTD_compressBound(src.count), allocator: allocator) {
                    (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
                    let n = ZSTD_compressCCtx(cctx, codecBase(dst), dst.count, codecBase(src), src.count, Int32(level))
                    guard ZSTD_isError(n) == 0 else {
                        throw .libraryFailure(codec: .zstd, reason: String(cString: ZSTD_getErrorName(n)))
                    }
                    return n
                }
            }
        }
    }

    static func decompress(_ input: ByteBuffer, limit: Int, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        try CodecContexts.current.withZstdDecompressor { (dctx: OpaquePointer) throws(CompressionError) -> ByteBuffer in
            try input.withUnsafeReadableBytes { (src: UnsafeRawBufferPointer) throws(CompressionError) -> ByteBuffer in
                guard !src.isEmpty else { throw .corrupt(codec: .zstd, reason: "empty input") }
                if let total = try declaredTotal(src, limit: limit) {
                    return try decompressKnownSize(src, total: total, dctx: dctx, allocator: allocator)
                }
                return try decompressStreaming(src, limit: limit, dctx: dctx, allocator: allocator)
            }
        }
    }

    /// The sum of the content sizes the frames declare, or nil if a frame does not declare
    /// one. Throws `.outputTooLarge` as soon as the declared sizes pass the limit.
    private static func declaredTotal(_ src: UnsafeRawBufferPointer, limit: Int) throws(CompressionError) -> Int? {
        var total: UInt64 = 0
        var pos = 0
        while pos < src.count {
            let frame = codecBase(src) + pos
            let size = ZSTD_getFrameContentSize(frame, src.count - pos)
            if size == contentSizeUnknown { return nil }
            if size == contentSizeError { throw .corrupt(codec: .zstd, reason: "invalid frame header") }
            total += size
            guard total <= UInt64(limit) else { throw .outputTooLarge(limit: limit) }
            let frameLength = ZSTD_findFrameCompressedSize(frame, src.count - pos)
            guard ZSTD_isError(frameLength) == 0 else {
                throw .corrupt(codec: .zstd, reason: String(cString: ZSTD_getErrorName(frameLength)))
            }
            pos += frameLength
        }
        return Int(total)
    }

    /// One-shot decoding into a buffer of the declared size; zstd checks each frame decodes
    /// to exactly its declared size and never writes past the buffer.
    private static func decompressKnownSize(
        _ src: UnsafeRawBufferPointer, total: Int, dctx: OpaquePointer, allocator: ByteBufferAllocator
    ) throws(CompressionError) -> ByteBuffer {
        try makeCodecOutput(capacity: total, allocator: allocator) {
            (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
            let n = ZSTD_decompressDCtx(dctx, codecBase(dst), dst.count, codecBase(src), src.count)
            guard ZSTD_isError(n) == 0 else {
                throw .corrupt(codec: .zstd, reason: String(cString: ZSTD_getErrorName(n)))
            }
            guard n == total else { throw .corrupt(codec: .zstd, reason: "decoded \(n) bytes, frames declare \(total)") }
            return n
        }
    }

    /// Streaming decoding into a growing buffer, for frames without a content size. The
    /// decoder keeps a window buffer of the frame's window size, so the accepted window is
    /// capped: at least 8 MiB (what zstd levels up to 19 use when the size is unknown), at
    /// most 128 MiB (zstd's default cap), otherwise the limit rounded up to a power of two.
    private static func decompressStreaming(
        _ src: UnsafeRawBufferPointer, limit: Int, dctx: OpaquePointer, allocator: ByteBufferAllocator
    ) throws(CompressionError) -> ByteBuffer {
        let limitLog = Int.bitWidth - max(limit - 1, 1).leadingZeroBitCount
        let windowLogMax = Int32(min(max(limitLog, 23), 27))
        let rc = ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, windowLogMax)
        guard ZSTD_isError(rc) == 0 else {
            throw .libraryFailure(codec: .zstd, reason: String(cString: ZSTD_getErrorName(rc)))
        }
        var input = ZSTD_inBuffer(src: codecBase(src), size: src.count, pos: 0)
        var out = BoundedOutput(limit: limit, expectedSize: min(max(src.count * 4, 1024), 1 << 20), allocator: allocator)
        while true {
            let consumedBefore = input.pos
            var produced = 0
            var remaining = 0
            try out.produce { (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
                var output = ZSTD_outBuffer(dst: codecBase(dst), size: dst.count, pos: 0)
                remaining = ZSTD_decompressStream(dctx, &output, &input)
                guard ZSTD_isError(remaining) == 0 else {
                    throw .corrupt(codec: .zstd, reason: String(cString: ZSTD_getErrorName(remaining)))
                }
                produced = output.pos
                return produced
            }
            // 0: a frame is complete and flushed; another may follow.
            if remaining == 0 && input.pos == input.size { return out.buffer }
            if produced == 0 && input.pos == consumedBefore {
                throw .corrupt(codec: .zstd, reason: "unexpected end of data")
            }
        }
    }
}
