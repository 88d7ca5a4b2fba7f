import CFjordLZ4
import NIOCore

/// LZ4 frames (the standard LZ4 frame format, magic 0x184D2204), as Kafka uses for record
/// batches of magic 1 and 2: 64 KiB independent blocks, no block or content checksums, no
/// content size, like the Java client's `KafkaLZ4BlockOutputStream`. Decompression accepts
/// any valid frame, or several concatenated.
enum LZ4Codec {
    /// Kafka's default `compression.lz4.level`, which its Java client maps to LZ4's fast
    /// compressor (lz4frame level 0) rather than LZ4 HC level 9.
    private static let kafkaDefaultLevel = 9

    static func compress(_ input: ByteBuffer, level: Int, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.blockSizeID = LZ4F_max64KB
        prefs.frameInfo.blockMode = LZ4F_blockIndependent
        prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum
        prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum
        prefs.frameInfo.frameType = LZ4F_frame
        prefs.compressionLevel = level == kafkaDefaultLevel ? 0 : Int32(level)
        // Compress every block in the update call, leaving nothing buffered in the context.
        prefs.autoFlush = 1
        return try CodecContexts.current.withLZ4Compressor { (cctx: OpaquePointer) throws(CompressionError) -> ByteBuffer in
            try input.withUnsafeReadableBytes { (src: UnsafeRawBufferPointer) throws(CompressionError) -> ByteBuffer in
                // LZ4F_compressBound covers the update and end calls; the header is extra.
                let bound = Int(LZ4F_HEADER_SIZE_MAX) + LZ4F_compressBound(src.count, &prefs)
                return try makeCodecOutput(capacity: bound, allocator: allocator) {
                    (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
                    let out = codecBase(dst)
                    var pos = try check(LZ4F_compressBegin(cctx, out, dst.count, &prefs))
                    pos += try check(LZ4F_compressUpdate(cctx, out + pos, dst.count - pos,
                                                         codecBase(src), src.count, nil))
                    pos += try check(LZ4F_compressEnd(cctx, out + pos, dst.count - pos, nil))
                    return pos
                }
            }
        }
    }

    /// The size a successful lz4frame call returned, or a thrown `.libraryFailure`.
    private static func check(_ result: Int) throws(CompressionError) -> Int {
        guard LZ4F_isError(result) == 0 else {
            throw .libraryFailure(codec: .lz4, reason: String(cString: LZ4F_getErrorName(result)))
        }
        return result
    }

    static func decompress(_ input: ByteBuffer, limit: Int, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        try CodecContexts.current.withLZ4Decompressor { (dctx: OpaquePointer) throws(CompressionError) -> ByteBuffer in
            try input.withUnsafeReadableBytes { (src: UnsafeRawBufferPointer) throws(CompressionError) -> ByteBuffer in
                guard !src.isEmpty else { throw .corrupt(codec: .lz4, reason: "empty input") }
                let base = codecBase(src)

                // Read the first frame header for a size hint. A frame that declares more
                // content than the limit cannot be valid and within the limit.
                var info = LZ4F_frameInfo_t()
                var pos = src.count
                let headerResult = LZ4F_getFrameInfo(dctx, &info, base, &pos)
                if LZ4F_isError(headerResult) != 0 {
                    throw .corrupt(codec: .lz4, reason: String(cString: LZ4F_getErrorName(headerResult)))
                }
                // Without a content size (Kafka's frames have none), guess 4× the input but
                // at least one 64 KiB block: lz4frame decodes a block straight into the
                // output only when a whole maximum-size block fits, else it goes through an
                // internal buffer and a copy.
                var expected = min(max(src.count * 4, 64 * 1024), 1 << 20)
                if info.frameType == LZ4F_frame && info.contentSize > 0 {
                    guard info.contentSize <= UInt64(limit) else { throw .outputTooLarge(limit: limit) }
                    expected = Int(info.contentSize)
                }

                var out = BoundedOutput(limit: limit, expectedSize: expected, allocator: allocator)
                while true {
                    var consumed = 0
                    var produced = 0
                    var hint = 0
                    try out.produce { (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
                        consumed = src.count - pos
                        produced = dst.count
                        hint = LZ4F_decompress(dctx, codecBase(dst), &produced, base + pos, &consumed, nil)
                        if LZ4F_isError(hint) != 0 {
                            throw .corrupt(codec: .lz4, reason: String(cString: LZ4F_getErrorName(hint)))
                        }
                        return produced
                    }
                    pos += consumed
                    // hint 0: a frame ended (and was fully flushed); another may follow.
                    if hint == 0 && pos == src.count { return out.buffer }
                    if consumed == 0 && produced == 0 {
                        throw .corrupt(codec: .lz4, reason: "unexpected end of data")
                    }
                }
            }
        }
    }
}
