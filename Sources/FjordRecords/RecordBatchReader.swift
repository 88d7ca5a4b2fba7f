import NIOCore

/// What the bytes at some position of a batch stream hold, from the batch header alone.
public enum RecordBatchFraming: Hashable, Sendable {
    /// A whole batch of `size` bytes is available.
    case complete(size: Int)
    /// More bytes are needed; `size` is the batch's total size once its length is known.
    case incomplete(size: Int?)
    /// The header is unusable (legacy magic, impossible length, over the size limit): the
    /// stream cannot be read past this point.
    case invalid(RecordBatchError)
}

extension RecordBatch {
    /// Frames the batch starting at `index` (default: the reader index) of `buffer`, reading
    /// only its first 17 bytes (base offset, length, leader epoch, magic).
    ///
    /// The magic is checked before the length because legacy message sets (magic 0/1) share
    /// the position of the magic byte but are often shorter than a v2 header; they are
    /// reported as `unsupportedMagic`, never mis-parsed.
    @inlinable
    public static func frame(_ buffer: ByteBuffer, at index: Int? = nil,
                             maxBatchSize: Int = RecordBatch.defaultMaxBatchSize) -> RecordBatchFraming {
        let start = index ?? buffer.readerIndex
        let available = buffer.writerIndex &- start
        guard start >= buffer.readerIndex, available >= Layout.logOverhead,
              let length = buffer.getInteger(at: start &+ Layout.batchLength, endianness: .big, as: Int32.self)
        else { return .incomplete(size: nil) }
        let total = Int(length) &+ Layout.logOverhead
        let plausible = length >= Layout.minimumBatchLength && total <= maxBatchSize
        guard available >= Layout.headerSizeUpToMagic,
              let magic = buffer.getInteger(at: start &+ Layout.magic, as: Int8.self)
        else { return .incomplete(size: plausible ? total : nil) }
        if magic != currentMagic { return .invalid(.unsupportedMagic(magic)) }
        if length < Layout.minimumBatchLength { return .invalid(.invalidBatchLength(Int(length))) }
        if total > maxBatchSize { return .invalid(.recordTooLarge(size: total, limit: maxBatchSize)) }
        return available >= total ? .complete(size: total) : .incomplete(size: total)
    }
}

/// Walks a buffer of concatenated record batches: a fetch response's `records`, a produce
/// request's `records`, or (a chunk of) a `.log` segment.
///
/// Each step yields a batch with its position, or, once, the reason the walk stops early:
/// a partial batch at the end (``Item/truncated(position:available:needed:)``) or an
/// unreadable header (``Item/corrupt(position:error:)``). Nothing is copied: batches are
/// slices of the input. CRCs are checked only when `verifyChecksums` is set (otherwise call
/// ``RecordBatch/validate()`` on each batch).
public struct RecordBatchReader: Sequence, IteratorProtocol, Sendable {
    /// One step of the walk.
    public enum Item: Hashable, Sendable {
        /// A framed batch starting at `position` (relative to the stream's start plus
        /// `basePosition`).
        case batch(RecordBatch, position: Int)
        /// The stream ends inside a batch: `available` bytes are left at `position`;
        /// `needed` is the batch's total size when its header was readable.
        case truncated(position: Int, available: Int, needed: Int?)
        /// The batch at `position` cannot be read (bad magic, impossible length, size over the
        /// limit, or a CRC mismatch when checksums are verified).
        case corrupt(position: Int, error: RecordBatchError)
    }

    @usableFromInline var buffer: ByteBuffer
    @usableFromInline let basePosition: Int
    @usableFromInline let maxBatchSize: Int
    @usableFromInline let verifyChecksums: Bool
    @usableFromInline var done = false

    /// - Parameters:
    ///   - buffer: the batches, from its reader index.
    ///   - basePosition: added to every reported position (e.g. the file offset of a chunk).
    ///   - maxBatchSize: batches larger than this are reported `corrupt(.recordTooLarge)`.
    ///   - verifyChecksums: check each batch's CRC; a mismatch ends the walk with `corrupt`.
    public init(_ buffer: ByteBuffer, basePosition: Int = 0,
                maxBatchSize: Int = RecordBatch.defaultMaxBatchSize, verifyChecksums: Bool = false) {
        self.buffer = buffer
        self.basePosition = basePosition
        self.maxBatchSize = maxBatchSize
        self.verifyChecksums = verifyChecksums
    }

    /// Bytes consumed by the batches yielded so far (relative to the start, plus
    /// `basePosition`): the "valid bytes" of a log.
    public var position: Int { basePosition &+ consumed }
    @usableFromInline var consumed = 0

    /// Bytes not yet yielded as batches.
    public var remainingBytes: Int { buffer.readableBytes }

    /// The next batch, or the reason the walk stops; nil at a clean end.
    @inlinable
    public mutating func next() -> Item? {
        if done { return nil }
        let available = buffer.readableBytes
        if available == 0 { done = true; return nil }
        let pos = position
        switch RecordBatch.frame(buffer, maxBatchSize: maxBatchSize) {
        case let .complete(size):
            guard let slice = buffer.readSlice(length: size) else {
                done = true
                return .truncated(position: pos, available: available, needed: size)
            }
            let batch = RecordBatch(uncheckedFramed: slice)
            if verifyChecksums {
                do throws(RecordBatchError) {
                    try batch.validate()
                } catch {
                    done = true
                    return .corrupt(position: pos, error: error)
                }
            }
            consumed &+= size
            return .batch(batch, position: pos)
        case let .incomplete(size):
            done = true
            return .truncated(position: pos, available: available, needed: size)
        case let .invalid(error):
            done = true
            return .corrupt(position: pos, error: error)
        }
    }

    /// All batches, throwing at the first truncated or corrupt one. Convenient for tests and
    /// small buffers; allocates an array.
    public static func batches(in buffer: ByteBuffer, maxBatchSize: Int = RecordBatch.defaultMaxBatchSize,
                               verifyChecksums: Bool = true) throws(RecordBatchError) -> [RecordBatch] {
        var out: [RecordBatch] = []
        for item in RecordBatchReader(buffer, maxBatchSize: maxBatchSize, verifyChecksums: verifyChecksums) {
            switch item {
            case let .batch(b, _): out.append(b)
            case let .truncated(_, available, needed): throw .truncated(needed: needed ?? RecordBatch.Layout.headerSize, available: available)
            case let .corrupt(_, error): throw error
            }
        }
        return out
    }
}
