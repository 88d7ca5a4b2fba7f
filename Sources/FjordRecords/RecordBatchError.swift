/// Why a record batch (or a buffer of batches) could not be read or built.
///
/// Decoding never traps on bad input: every structural problem in untrusted bytes surfaces
/// as one of these cases, so callers can answer with a Kafka error code
/// (`CORRUPT_MESSAGE`, `INVALID_RECORD`, `MESSAGE_TOO_LARGE`, ...) or truncate a log.
public enum RecordBatchError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Fewer bytes are present than the batch (or field) needs: a partial batch.
    case truncated(needed: Int, available: Int)
    /// The batch length field is impossible (smaller than the fixed header, or negative).
    case invalidBatchLength(Int)
    /// The CRC-32C stored in the header (`expected`) differs from the one computed over
    /// the bytes from `attributes` to the end of the batch (`actual`).
    case corruptCRC(expected: UInt32, actual: UInt32)
    /// The magic byte is not 2. Magic 0 and 1 are the legacy message-set formats
    /// (Kafka < 0.11), which Fjord does not read.
    case unsupportedMagic(Int8)
    /// The attributes name a compression codec that does not exist (5, 6 or 7).
    case unsupportedCompression(Int8)
    /// A record inside the batch is malformed (bad length, varint, count mismatch, ...).
    case invalidRecord(reason: String)
    /// A batch, or its decompressed records, exceeds the configured limit.
    case recordTooLarge(size: Int, limit: Int)
    /// The codec could not decompress (or compress) the records section.
    case compressionFailed(String)
    /// A buffer meant to hold exactly one batch has bytes after it.
    case trailingBytes(Int)

    public var description: String {
        switch self {
        case let .truncated(needed, available):
            return "truncated record batch: needed \(needed) bytes, \(available) available"
        case let .invalidBatchLength(n):
            return "invalid record batch length \(n) (minimum is \(RecordBatch.Layout.minimumBatchLength))"
        case let .corruptCRC(expected, actual):
            return "record batch is corrupt: stored CRC-32C \(expected) does not match computed \(actual)"
        case let .unsupportedMagic(m):
            if m == 0 || m == 1 {
                return "legacy message format (magic \(m), Kafka < 0.11) is not supported; Fjord reads record batches with magic 2 only"
            }
            return "unknown record batch magic \(m); Fjord reads record batches with magic 2 only"
        case let .unsupportedCompression(c):
            return "unknown compression codec id \(c) in record batch attributes"
        case let .invalidRecord(reason):
            return "invalid record: \(reason)"
        case let .recordTooLarge(size, limit):
            return "record batch too large: \(size) bytes exceeds the limit of \(limit)"
        case let .compressionFailed(why):
            return "compression failed: \(why)"
        case let .trailingBytes(n):
            return "\(n) unexpected bytes after the record batch"
        }
    }
}
