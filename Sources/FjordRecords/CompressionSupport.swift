import CFjordLZ4
import CFjordZlib
import CFjordZstd
import NIOCore

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// MARK: - Bounded output

/// The output of a bounded decompression: a `ByteBuffer` that grows as decoded bytes
/// arrive, never past `limit` bytes of content.
///
/// Decoders write through `produce`, which offers the free space up to the limit. Once the
/// limit is reached, `produce` offers a one-byte scratch area instead: a decoder that still
/// has output writes there, and that byte proves the data is larger than the limit.
struct BoundedOutput {
    /// The decoded bytes so far (reader index 0).
    private(set) var buffer: ByteBuffer
    /// The most bytes the output may hold.
    let limit: Int
    /// The least capacity added when the buffer grows.
    private static let minimumGrowth = 64 * 1024

    /// An empty output with room for `expectedSize` bytes (clamped to `0...limit`).
    init(limit: Int, expectedSize: Int, allocator: ByteBufferAllocator) {
        self.limit = limit
        self.buffer = allocator.buffer(capacity: min(limit, max(0, expectedSize)))
    }

    /// Bytes written so far.
    var count: Int { buffer.writerIndex }

    /// Calls `body` with space for the next decoded bytes; `body` returns how many it wrote.
    /// - Throws: `.outputTooLarge` if the limit is reached and `body` still writes.
    mutating func produce(
        _ body: (UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int
    ) throws(CompressionError) {
        let room = limit - buffer.writerIndex
        if room == 0 {
            var scratch: UInt8 = 0
            let written = try withUnsafeMutableBytes(of: &scratch) {
                (window: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in try body(window)
            }
            if written > 0 { throw .outputTooLarge(limit: limit) }
            return
        }
        if buffer.writableBytes == 0 {
            let grown = max(buffer.capacity * 2, buffer.capacity + Self.minimumGrowth)
            buffer.reserveCapacity(min(limit, grown))
        }
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) {
            (free: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
            let window = UnsafeMutableRawBufferPointer(rebasing: free.prefix(room))
            let written = try body(window)
            precondition(written >= 0 && written <= window.count, "decoder wrote outside its window")
            return written
        }
    }
}

// MARK: - Helpers

/// The base address of a possibly empty buffer, never nil (C libraries reject NULL even
/// with a zero length).
@inline(__always)
func codecBase(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawPointer {
    bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
}

/// The same for a mutable buffer.
@inline(__always)
func codecBase(_ bytes: UnsafeMutableRawBufferPointer) -> UnsafeMutableRawPointer {
    bytes.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!
}

/// Allocates a buffer of `capacity` bytes and lets `body` fill it; `body` returns how many
/// bytes it wrote.
@inline(__always)
func makeCodecOutput(
    capacity: Int,
    allocator: ByteBufferAllocator,
    _ body: (UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int
) throws(CompressionError) -> ByteBuffer {
    var out = allocator.buffer(capacity: capacity)
    try out.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) {
        (free: UnsafeMutableRawBufferPointer) throws(CompressionError) -> Int in
        try body(UnsafeMutableRawBufferPointer(rebasing: free.prefix(capacity)))
    }
    return out
}

// MARK: - Per-thread codec contexts

/// Codec contexts reused by the calls made on one thread: creating a zlib stream or a zstd or
/// LZ4 frame context allocates (and for deflate, clears) hundreds of KiB, more than the work
/// on a typical 16 KiB batch. Each context is taken out of its slot while in use and put
/// back afterwards, so nested use (never needed today) would just create a second one. The
/// contexts are freed when the thread exits.
final class CodecContexts {
    private var zstdCompressor: OpaquePointer?
    private var zstdDecompressor: OpaquePointer?
    private var lz4Compressor: OpaquePointer?
    private var lz4Decompressor: OpaquePointer?
    private var deflater: UnsafeMutablePointer<z_stream>?
    private var deflaterLevel: Int32 = 0
    private var inflater: UnsafeMutablePointer<z_stream>?

    private init() {}

    deinit {
        if let c = zstdCompressor { ZSTD_freeCCtx(c) }
        if let c = zstdDecompressor { ZSTD_freeDCtx(c) }
        if let c = lz4Compressor { LZ4F_freeCompressionContext(c) }
        if let c = lz4Decompressor { LZ4F_freeDecompressionContext(c) }
        if let z = deflater { Self.destroyDeflater(z) }
        if let z = inflater { Self.destroyInflater(z) }
    }

    /// The calling thread's contexts.
    static var current: CodecContexts {
        if let raw = pthread_getspecific(codecContextsKey) {
            return Unmanaged<CodecContexts>.fromOpaque(raw).takeUnretainedValue()
        }
        let contexts = CodecContexts()
        pthread_setspecific(codecContextsKey, Unmanaged.passRetained(contexts).toOpaque())
        return contexts
    }

    /// Runs `body` with a zstd compression context.
    func withZstdCompressor<R>(
        _ body: (OpaquePointer) throws(CompressionError) -> R
    ) throws(CompressionError) -> R {
        let ctx: OpaquePointer
        if let cached = zstdCompressor {
            zstdCompressor = nil
            ctx = cached
        } else {
            guard let made = ZSTD_createCCtx() else { throw .libraryFailure(codec: .zstd, reason: "out of memory") }
            ctx = made
        }
        defer { if zstdCompressor == nil { zstdCompressor = ctx } else { ZSTD_freeCCtx(ctx) } }
        return try body(ctx)
    }

    /// Runs `body` with a zstd decompression context (session reset; parameters are the
    /// caller's to set).
    func withZstdDecompressor<R>(
        _ body: (OpaquePointer) throws(CompressionError) -> R
    ) throws(CompressionError) -> R {
        let ctx: OpaquePointer
        if let cached = zstdDecompressor {
            zstdDecompressor = nil
            ctx = cached
            ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only)
        } else {
            guard let made = ZSTD_createDCtx() else { throw .libraryFailure(codec: .zstd, reason: "out of memory") }
            ctx = made
        }
        defer { if zstdDecompressor == nil { zstdDecompressor = ctx } else { ZSTD_freeDCtx(ctx) } }
        return try body(ctx)
    }

    /// Runs `body` with an LZ4 frame compression context.
    func withLZ4Compressor<R>(
        _ body: (OpaquePointer) throws(CompressionError) -> R
    ) throws(CompressionError) -> R {
        let ctx: OpaquePointer
        if let cached = lz4Compressor {
            lz4Compressor = nil
            ctx = cached
        } else {
            var made: OpaquePointer?
            let rc = LZ4F_createCompressionContext(&made, UInt32(LZ4F_VERSION))
            guard LZ4F_isError(rc) == 0, let made else {
                throw .libraryFailure(codec: .lz4, reason: String(cString: LZ4F_getErrorName(rc)))
            }
            ctx = made
        }
        defer { if lz4Compressor == nil { lz4Compressor = ctx } else { LZ4F_freeCompressionContext(ctx) } }
        return try body(ctx)
    }

    /// Runs `body` with an LZ4 frame decompression context, reset to expect a new frame.
    func withLZ4Decompressor<R>(
        _ body: (OpaquePointer) throws(CompressionError) -> R
    ) throws(CompressionError) -> R {
        let ctx: OpaquePointer
        if let cached = lz4Decompressor {
            lz4Decompressor = nil
            ctx = cached
            LZ4F_resetDecompressionContext(ctx)
        } else {
            var made: OpaquePointer?
            let rc = LZ4F_createDecompressionContext(&made, UInt32(LZ4F_VERSION))
            guard LZ4F_isError(rc) == 0, let made else {
                throw .libraryFailure(codec: .lz4, reason: String(cString: LZ4F_getErrorName(rc)))
            }
            ctx = made
        }
        defer { if lz4Decompressor == nil { lz4Decompressor = ctx } else { LZ4F_freeDecompressionContext(ctx) } }
        return try body(ctx)
    }

    /// Runs `body` with a deflate stream writing the gzip format at `level`, freshly reset.
    func withDeflater<R>(
        level: Int32,
        _ body: (UnsafeMutablePointer<z_stream>) throws(CompressionError) -> R
    ) throws(CompressionError) -> R {
        let z: UnsafeMutablePointer<z_stream>
        if let cached = deflater, deflaterLevel == level {
            deflater = nil
            z = cached
            deflateReset(z)
        } else {
            z = try Self.makeDeflater(level: level)
        }
        defer {
            if let old = deflater { Self.destroyDeflater(old) }
            deflater = z
            deflaterLevel = level
        }
        return try body(z)
    }

    /// Runs `body` with an inflate stream reading gzip (or zlib) data, freshly reset.
    func withInflater<R>(
        _ body: (UnsafeMutablePointer<z_stream>) throws(CompressionError) -> R
    ) throws(CompressionError) -> R {
        let z: UnsafeMutablePointer<z_stream>
        if let cached = inflater {
            inflater = nil
            z = cached
            inflateReset(z)
        } else {
            z = try Self.makeInflater()
        }
        defer { if inflater == nil { inflater = z } else { Self.destroyInflater(z) } }
        return try body(z)
    }

    /// Window bits 15 (32 KiB) + 16: write a gzip wrapper.
    private static let gzipWriteWindowBits: Int32 = 15 + 16
    /// Window bits 15 + 32: read gzip or zlib, detected from the header.
    private static let gzipReadWindowBits: Int32 = 15 + 32

    private static func makeDeflater(level: Int32) throws(CompressionError) -> UnsafeMutablePointer<z_stream> {
        let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        z.initialize(to: z_stream())
        let rc = deflateInit2_(z, level, Z_DEFLATED, gzipWriteWindowBits, 8, Z_DEFAULT_STRATEGY,
                               zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            z.deallocate()
            throw .libraryFailure(codec: .gzip, reason: "deflateInit2 failed (\(rc))")
        }
        return z
    }

    private static func makeInflater() throws(CompressionError) -> UnsafeMutablePointer<z_stream> {
        let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        z.initialize(to: z_stream())
        let rc = inflateInit2_(z, gzipReadWindowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            z.deallocate()
            throw .libraryFailure(codec: .gzip, reason: "inflateInit2 failed (\(rc))")
        }
        return z
    }

    private static func destroyDeflater(_ z: UnsafeMutablePointer<z_stream>) {
        deflateEnd(z)
        z.deinitialize(count: 1)
        z.deallocate()
    }

    private static func destroyInflater(_ z: UnsafeMutablePointer<z_stream>) {
        inflateEnd(z)
        z.deinitialize(count: 1)
        z.deallocate()
    }
}

/// The thread-specific slot holding each thread's `CodecContexts` (released at thread exit).
private let codecContextsKey: pthread_key_t = {
    var key = pthread_key_t()
    #if canImport(Darwin)
    let rc = pthread_key_create(&key) { raw in
        Unmanaged<CodecContexts>.fromOpaque(raw).release()
    }
    #else
    let rc = pthread_key_create(&key) { raw in
        if let raw { Unmanaged<CodecContexts>.fromOpaque(raw).release() }
    }
    #endif
    precondition(rc == 0, "pthread_key_create failed: \(rc)")
    return key
}()
