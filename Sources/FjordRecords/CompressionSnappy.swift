import CFjordSnappy
import NIOCore

/// snappy in the xerial snappy-java stream format that Kafka clients write:
///
/// ```
/// header  0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00 | int32 BE version (1) | int32 BE compatible (1)
/// blocks  int32 BE compressed length | raw snappy block of at most 32 KiB uncompressed
/// ```
///
/// Decompression also reads a bare raw snappy block (no header), detected by the magic,
/// ignores the version fields (some producers write them little-endian), and skips a
/// repeated header between blocks (concatenated streams, as snappy-java reads them).
enum SnappyCodec {
    /// The 8 magic bytes that start a xerial stream (0x82 "SNAPPY" 0x00), big-endian.
    private static let magic: UInt64 = 0x8253_4E41_5050_5900
    /// Magic, version 1, compatible version 1.
    private static let headerSize = 16
    /// Uncompressed bytes per block (snappy-java's default block size, as Kafka uses).
    private static let blockSize = 32 * 1024

    static func compress(_ input: ByteBuffer, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        try input.withUnsafeReadableBytes { (src: UnsafeRawBufferPointer) throws(CompressionError) -> ByteBuffer in
            let fullBlocks = src.count / blockSize
            let tail = src.count % blockSize
            var bound = headerSize + fullBlocks * (4 + snappy_max_compressed_length(blockSize))
            if tail > 0 { bound += 4 + snappy_max_compressed_length(tail) }
            return try makeCodecOutput(capacity: bound, allocator: allocator) {
                (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
                let out = codecBase(dst)
                out.storeBytes(of: magic.bigEndian, toByteOffset: 0, as: UInt64.self)
                out.storeBytes(of: UInt32(1).bigEndian, toByteOffset: 8, as: UInt32.self)
                out.storeBytes(of: UInt32(1).bigEndian, toByteOffset: 12, as: UInt32.self)
                var outPos = headerSize
                var inPos = 0
                while inPos < src.count {
                    let n = min(blockSize, src.count - inPos)
                    var compressedLength = dst.count - outPos - 4
                    let status = snappy_compress(
                        codecBase(src).advanced(by: inPos).assumingMemoryBound(to: CChar.self), n,
                        out.advanced(by: outPos + 4).assumingMemoryBound(to: CChar.self), &compressedLength)
                    guard status == SNAPPY_OK else {
                        throw .libraryFailure(codec: .snappy, reason: "snappy_compress failed (\(status.rawValue))")
                    }
                    out.storeBytes(of: UInt32(compressedLength).bigEndian, toByteOffset: outPos, as: UInt32.self)
                    outPos += 4 + compressedLength
                    inPos += n
                }
                return outPos
            }
        }
    }

    static func decompress(_ input: ByteBuffer, limit: Int, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        try input.withUnsafeReadableBytes { (src: UnsafeRawBufferPointer) throws(CompressionError) -> ByteBuffer in
            if hasMagic(src, at: 0) {
                return try decompressXerial(src, limit: limit, allocator: allocator)
            }
            return try decompressRaw(src, limit: limit, allocator: allocator)
        }
    }

    /// Whether the 8 magic bytes start at `offset`.
    private static func hasMagic(_ src: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        guard src.count - offset >= 8 else { return false }
        return UInt64(bigEndian: src.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) == magic
    }

    /// The uncompressed length a raw snappy block declares (its leading varint).
    private static func declaredLength(_ block: UnsafeRawBufferPointer) throws(CompressionError) -> Int {
        var length = 0
        let status = snappy_uncompressed_length(codecBase(block).assumingMemoryBound(to: CChar.self), block.count, &length)
        guard status == SNAPPY_OK else { throw .corrupt(codec: .snappy, reason: "invalid block header") }
        return length
    }

    /// Decodes one raw block into exactly `length` bytes at `dst`.
    private static func uncompress(_ block: UnsafeRawBufferPointer, length: Int, into dst: UnsafeMutableRawPointer) throws(CompressionError) {
        var produced = length
        let status = snappy_uncompress(codecBase(block).assumingMemoryBound(to: CChar.self), block.count,
                                       dst.assumingMemoryBound(to: CChar.self), &produced)
        guard status == SNAPPY_OK, produced == length else {
            throw .corrupt(codec: .snappy, reason: "invalid block")
        }
    }

    private static func decompressRaw(_ src: UnsafeRawBufferPointer, limit: Int, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        guard !src.isEmpty else { throw .corrupt(codec: .snappy, reason: "empty input") }
        // The declared length bounds what snappy_uncompress may write; a block that would
        // decode to more (or less) is rejected by snappy, so the limit check is exact. Over
        // the limit, a validation pass (no output) tells a real bomb from garbage.
        let length = try declaredLength(src)
        guard length <= limit else {
            let status = snappy_validate_compressed_buffer(codecBase(src).assumingMemoryBound(to: CChar.self), src.count)
            if status == SNAPPY_OK { throw .outputTooLarge(limit: limit) }
            throw .corrupt(codec: .snappy, reason: "invalid block")
        }
        return try makeCodecOutput(capacity: length, allocator: allocator) {
            (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
            try uncompress(src, length: length, into: codecBase(dst))
            return length
        }
    }

    /// Walks the blocks of a xerial stream, calling `body` with each raw block.
    private static func forEachBlock(
        _ src: UnsafeRawBufferPointer,
        _ body: (UnsafeRawBufferPointer) throws(CompressionError) -> Void
    ) throws(CompressionError) {
        var pos = 0
        while pos < src.count {
            if hasMagic(src, at: pos) {
                guard src.count - pos >= headerSize else { throw .corrupt(codec: .snappy, reason: "truncated stream header") }
                pos += headerSize
                continue
            }
            guard src.count - pos >= 4 else { throw .corrupt(codec: .snappy, reason: "truncated block length") }
            let length = Int(Int32(bitPattern: src.loadUnaligned(fromByteOffset: pos, as: UInt32.self).bigEndian))
            pos += 4
            guard length >= 0, length <= src.count - pos else {
                throw .corrupt(codec: .snappy, reason: "block length \(length) exceeds the \(src.count - pos) bytes left")
            }
            try body(UnsafeRawBufferPointer(rebasing: src[pos..<pos + length]))
            pos += length
        }
    }

    private static func decompressXerial(_ src: UnsafeRawBufferPointer, limit: Int, allocator: ByteBufferAllocator) throws(CompressionError) -> ByteBuffer {
        guard src.count >= headerSize else { throw .corrupt(codec: .snappy, reason: "truncated stream header") }
        // First pass: the total from the block headers, checked against the limit before any
        // output is allocated. Second pass: decode each block in place.
        var total = 0
        try forEachBlock(src) { (block: UnsafeRawBufferPointer) throws(CompressionError) in
            total += try declaredLength(block)
            guard total <= limit else { throw .outputTooLarge(limit: limit) }
        }
        return try makeCodecOutput(capacity: total, allocator: allocator) {
            (dst: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
            var outPos = 0
            try forEachBlock(src) { (block: UnsafeRawBufferPointer) throws(CompressionError) in
                let length = try declaredLength(block)
                try uncompress(block, length: length, into: codecBase(dst) + outPos)
                outPos += length
            }
            return outPos
        }
    }
}
