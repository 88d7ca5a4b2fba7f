import CFjordZstd
import NIOCore

/// A record batch compression codec: bits 0–2 of the batch attributes.
///
/// `name` is the `compression.type` config value (`"gzip"`); `dumpLogName` is how
/// `kafka-dump-log` prints it (`compresscodec: GZIP`).
public enum CompressionCodec: Int8, Sendable, CaseIterable, CustomStringConvertible {
    /// Uncompressed records.
    case none = 0
    /// gzip (deflate), via zlib.
    case gzip = 1
    /// snappy, in the xerial snappy-java stream format.
    case snappy = 2
    /// An LZ4 frame.
    case lz4 = 3
    /// A zstd frame (Kafka 2.1+, Produce v7+).
    case zstd = 4

    /// The lower-case name Kafka configs use (`compression.type`): "none", "gzip", "snappy",
    /// "lz4", "zstd".
    public var name: String {
        switch self {
        case .none: return "none"
        case .gzip: return "gzip"
        case .snappy: return "snappy"
        case .lz4: return "lz4"
        case .zstd: return "zstd"
        }
    }

    /// The upper-case name `kafka-dump-log` prints (`compresscodec: NONE`, `GZIP`, `SNAPPY`,
    /// `LZ4`, `ZSTD`).
    public var dumpLogName: String {
        switch self {
        case .none: return "NONE"
        case .gzip: return "GZIP"
        case .snappy: return "SNAPPY"
        case .lz4: return "LZ4"
        case .zstd: return "ZSTD"
        }
    }

    /// The codec called `name`, in either spelling (`"gzip"`, `"GZIP"`, any case); nil for
    /// anything else.
    public init?(name: String) {
        switch name.lowercased() {
        case "none": self = .none
        case "gzip": self = .gzip
        case "snappy": self = .snappy
        case "lz4": self = .lz4
        case "zstd": self = .zstd
        default: return nil
        }
    }

    public var description: String { name }

    /// Kafka's default level for the codec (`compression.gzip.level` = -1, i.e. zlib's
    /// default 6; `compression.lz4.level` = 9; `compression.zstd.level` = 3); nil for codecs
    /// without levels (none, snappy).
    public var defaultLevel: Int? {
        switch self {
        case .none, .snappy: return nil
        case .gzip: return -1
        case .lz4: return 9
        case .zstd: return 3
        }
    }

    /// Whether `level` is accepted for this codec, with Kafka's ranges: gzip 1...9 or -1,
    /// lz4 1...17, zstd from zstd's minimum (negative, fast) to 22. Codecs without levels
    /// accept (and ignore) any level.
    public func isValidLevel(_ level: Int) -> Bool {
        switch self {
        case .none, .snappy: return true
        case .gzip: return level == -1 || (1...9).contains(level)
        case .lz4: return (1...17).contains(level)
        case .zstd: return (Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel())).contains(level)
        }
    }
}

/// Why `Compression.compress` or `Compression.decompress` failed. Malformed input always
/// surfaces as an error, never a crash.
public enum CompressionError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The decompressed data would exceed `limit` bytes (decoding stopped at the limit).
    case outputTooLarge(limit: Int)
    /// The input is not valid `codec` data (bad header, checksum, truncated, ...).
    case corrupt(codec: CompressionCodec, reason: String)
    /// `level` is outside the codec's range (see `CompressionCodec.isValidLevel`).
    case invalidLevel(codec: CompressionCodec, level: Int)
    /// The codec library failed for a reason unrelated to the input (out of memory, ...).
    case libraryFailure(codec: CompressionCodec, reason: String)

    public var description: String {
        switch self {
        case let .outputTooLarge(limit):
            return "decompressed data exceeds the limit of \(limit) bytes"
        case let .corrupt(codec, reason):
            return "corrupt \(codec.name) data: \(reason)"
        case let .invalidLevel(codec, level):
            return "invalid \(codec.name) compression level \(level)"
        case let .libraryFailure(codec, reason):
            return "\(codec.name) library failure: \(reason)"
        }
    }
}

/// Compression and bounded decompression of record-batch payloads, in Kafka's formats:
///
/// - gzip: a gzip member (zlib, deflate window 32 KiB); decompression also accepts several
///   concatenated members and zlib-wrapped data.
/// - snappy: writes the xerial snappy-java framed stream (as the Java client and librdkafka
///   do: 16-byte header, then `[int32 BE length][raw snappy block]` per 32 KiB of input);
///   reads both that and a plain raw snappy block.
/// - lz4: an LZ4 frame with 64 KiB independent blocks and no content checksum (Kafka's
///   `KafkaLZ4BlockOutputStream` layout); decompression accepts any valid LZ4 frame(s).
/// - zstd: a zstd frame (with content size); decompression accepts any frame(s), with or
///   without content size.
///
/// Decompression is bounded: output beyond `maxOutputBytes` throws
/// `CompressionError.outputTooLarge` without being produced, whatever sizes the input
/// claims. The output buffer grows as the data decodes; it is never given more capacity than
/// the limit asks for (rounded up to a power of two by `ByteBuffer`).
///
/// Codec contexts (zlib streams, zstd and LZ4 frame contexts) are cached per thread and
/// reused, so a call allocates only its output buffer. Every function is thread-safe.
public enum Compression {
    /// Compresses the readable bytes of `input` (its reader index is not moved).
    ///
    /// - Parameters:
    ///   - codec: the codec; `.none` returns `input` itself (no copy).
    ///   - level: the compression level, nil for the codec's default. gzip: -1 (zlib's
    ///     default, 6) or 1...9. lz4: 1...17, where 9 (Kafka's default, also nil) means
    ///     LZ4's fast compressor as Kafka's Java client does, and any other level is passed
    ///     to the LZ4 frame library (3 and above select LZ4 HC). zstd: zstd's range, default
    ///     3. Ignored by snappy.
    ///   - allocator: allocates the output buffer.
    /// - Returns: a new buffer holding exactly the compressed bytes.
    /// - Throws: `CompressionError.invalidLevel`, or `.libraryFailure` if the library fails.
    public static func compress(
        _ input: ByteBuffer,
        codec: CompressionCodec,
        level: Int? = nil,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(CompressionError) -> ByteBuffer {
        if let level, !codec.isValidLevel(level) {
            throw .invalidLevel(codec: codec, level: level)
        }
        switch codec {
        case .none:
            return input
        case .gzip:
            return try GzipCodec.compress(input, level: level ?? -1, allocator: allocator)
        case .snappy:
            return try SnappyCodec.compress(input, allocator: allocator)
        case .lz4:
            return try LZ4Codec.compress(input, level: level ?? 9, allocator: allocator)
        case .zstd:
            return try ZstdCodec.compress(input, level: level ?? 3, allocator: allocator)
        }
    }

    /// Decompresses the readable bytes of `input` (its reader index is not moved), producing
    /// at most `maxOutputBytes` bytes.
    ///
    /// - Parameters:
    ///   - codec: the codec; `.none` returns `input` itself (no copy) if it fits the limit.
    ///   - maxOutputBytes: the most bytes the output may hold; more throws
    ///     `.outputTooLarge(limit: maxOutputBytes)`.
    ///   - allocator: allocates the output buffer.
    /// - Returns: a new buffer holding exactly the decompressed bytes.
    /// - Throws: `CompressionError.outputTooLarge`, `.corrupt` for invalid or truncated
    ///   input (including an empty input for every codec but `.none`), `.libraryFailure`.
    public static func decompress(
        _ input: ByteBuffer,
        codec: CompressionCodec,
        maxOutputBytes: Int,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(CompressionError) -> ByteBuffer {
        let limit = max(0, maxOutputBytes)
        switch codec {
        case .none:
            guard input.readableBytes <= limit else { throw .outputTooLarge(limit: limit) }
            return input
        case .gzip:
            return try GzipCodec.decompress(input, limit: limit, allocator: allocator)
        case .snappy:
            return try SnappyCodec.decompress(input, limit: limit, allocator: allocator)
        case .lz4:
            return try LZ4Codec.decompress(input, limit: limit, allocator: allocator)
        case .zstd:
            return try ZstdCodec.decompress(input, limit: limit, allocator: allocator)
        }
    }
}
