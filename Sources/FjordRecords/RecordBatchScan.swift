import NIOCore

/// What a leader needs to know about a batch's records before appending it.
public struct RecordScan: Sendable, Equatable {
    /// Records found (each checked to have offset delta = its index).
    public var count: Int32
    /// The largest record timestamp delta (`Int64.min` with no records).
    public var maxTimestampDelta: Int64
}

extension RecordBatch {
    /// Checks every record's framing exactly as `RecordIterator` does — lengths, varints,
    /// header structure, no bytes left over, offset deltas 0, 1, 2, ... — and, with
    /// `requireKeys`, that each record has a key; without building a `Record` or a slice per
    /// record: one pass over the (decompressed) bytes through a raw pointer. This is the
    /// leader's validation on every produce.
    /// - Throws: `RecordBatchError` as `makeRecordIterator` and `RecordIterator.next()` do;
    ///   `.invalidRecord` for a key-less record with `requireKeys` (reason "missing key").
    public func scanRecords(maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes,
                            requireKeys: Bool = false) throws(RecordBatchError) -> RecordScan {
        let count = recordCount
        guard count >= 0 else { throw .invalidRecord(reason: "negative record count \(count)") }
        let attrs = attributes
        guard let codec = attrs.codec else { throw .unsupportedCompression(attrs.codecID) }
        var section = recordsSection
        if codec != .none && count > 0 {
            let decompressed: ByteBuffer
            do {
                decompressed = try Compression.decompress(section, codec: codec, maxOutputBytes: maxDecompressedBytes)
            } catch {
                throw .compressionFailed("\(codec) records of batch at offset \(baseOffset): \(error)")
            }
            if decompressed.readableBytes > maxDecompressedBytes {
                throw .recordTooLarge(size: decompressed.readableBytes, limit: maxDecompressedBytes)
            }
            section = decompressed
        } else if codec != .none {
            section = ByteBuffer()
        }
        let result: Result<RecordScan, RecordBatchError> = section.withUnsafeReadableBytes { raw in
            Self.scan(raw, count: count, requireKeys: requireKeys)
        }
        return try result.get()
    }

    @usableFromInline
    static func scan(_ raw: UnsafeRawBufferPointer, count: Int32, requireKeys: Bool) -> Result<RecordScan, RecordBatchError> {
        var p = 0
        let end = raw.count
        var maxTs = Int64.min
        var n: Int32 = 0
        // Zig-zag varints of at most 5 (32-bit) or 10 (64-bit) bytes, within `limit`.
        func varint(_ limit: Int) -> Int64? {
            var result: UInt32 = 0
            var shift: UInt32 = 0
            while true {
                guard p < limit else { return nil }
                let b = raw[p]
                p &+= 1
                if shift == 28 && b & 0xF0 != 0 { return nil }
                result |= UInt32(b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift &+= 7
                if shift > 28 { return nil }
            }
            return Int64(Int32(bitPattern: (result >> 1) ^ (0 &- (result & 1))))
        }
        func varlong(_ limit: Int) -> Int64? {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard p < limit else { return nil }
                let b = raw[p]
                p &+= 1
                if shift == 63 && b & 0xFE != 0 { return nil }
                result |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift &+= 7
                if shift > 63 { return nil }
            }
            return Int64(bitPattern: (result >> 1) ^ (0 &- (result & 1)))
        }
        while n < count {
            guard let length = varint(end) else { return .failure(.invalidRecord(reason: "malformed record length varint")) }
            guard length >= 0 else { return .failure(.invalidRecord(reason: "negative record length \(length)")) }
            guard end - p >= Int(length) else { return .failure(.truncated(needed: Int(length), available: end - p)) }
            let recordEnd = p + Int(length)
            guard p < recordEnd else { return .failure(.invalidRecord(reason: "record of 0 bytes")) }
            p &+= 1  // attributes
            guard let tsDelta = varlong(recordEnd) else { return .failure(.invalidRecord(reason: "malformed timestamp delta")) }
            guard let offsetDelta = varint(recordEnd) else { return .failure(.invalidRecord(reason: "malformed offset delta")) }
            guard offsetDelta == Int64(n) else {
                return .failure(.invalidRecord(reason: "record offset delta \(offsetDelta), expected \(n)"))
            }
            guard let keyLength = varint(recordEnd) else { return .failure(.invalidRecord(reason: "malformed key length")) }
            if keyLength == -1 {
                if requireKeys { return .failure(.invalidRecord(reason: "missing key")) }
            } else {
                guard keyLength >= 0 else { return .failure(.invalidRecord(reason: "invalid key length \(keyLength)")) }
                guard recordEnd - p >= Int(keyLength) else { return .failure(.invalidRecord(reason: "key of \(keyLength) bytes runs past the record")) }
                p &+= Int(keyLength)
            }
            guard let valueLength = varint(recordEnd) else { return .failure(.invalidRecord(reason: "malformed value length")) }
            if valueLength != -1 {
                guard valueLength >= 0 else { return .failure(.invalidRecord(reason: "invalid value length \(valueLength)")) }
                guard recordEnd - p >= Int(valueLength) else { return .failure(.invalidRecord(reason: "value of \(valueLength) bytes runs past the record")) }
                p &+= Int(valueLength)
            }
            guard let headerCount = varint(recordEnd) else { return .failure(.invalidRecord(reason: "malformed header count")) }
            guard headerCount >= 0 else { return .failure(.invalidRecord(reason: "negative header count \(headerCount)")) }
            var h: Int64 = 0
            while h < headerCount {
                guard let kl = varint(recordEnd) else { return .failure(.invalidRecord(reason: "malformed header key length")) }
                guard kl >= 0 else { return .failure(.invalidRecord(reason: "invalid header key length \(kl)")) }
                guard recordEnd - p >= Int(kl) else { return .failure(.invalidRecord(reason: "header key runs past the record")) }
                p &+= Int(kl)
                guard let vl = varint(recordEnd) else { return .failure(.invalidRecord(reason: "malformed header value length")) }
                if vl < -1 { return .failure(.invalidRecord(reason: "invalid header value length \(vl)")) }
                if vl > 0 {
                    guard recordEnd - p >= Int(vl) else { return .failure(.invalidRecord(reason: "header value runs past the record")) }
                    p &+= Int(vl)
                }
                h &+= 1
            }
            guard p == recordEnd else {
                return .failure(.invalidRecord(reason: "expected to read \(length) bytes in record payload, but \(recordEnd - p) were left over"))
            }
            if tsDelta > maxTs { maxTs = tsDelta }
            n &+= 1
        }
        guard p == end else { return .failure(.invalidRecord(reason: "\(end - p) bytes remain after the declared records")) }
        return .success(RecordScan(count: n, maxTimestampDelta: maxTs))
    }
}
