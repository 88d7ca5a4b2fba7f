import FjordRecords
import NIOCore

enum FuzzRecordBatches {
    /// Walks arbitrary bytes as a stream of batches, validating each and iterating every
    /// record and header with a small decompression bound (so a bomb cannot exhaust memory).
    static func run(_ buf: ByteBuffer) {
        for item in RecordBatchReader(buf, maxBatchSize: 1 << 20) {
            guard case let .batch(batch, _) = item else { continue }
            _ = batch.isValid
            guard var it = try? batch.makeRecordIterator(maxDecompressedBytes: 1 << 20) else { continue }
            var n = 0
            while let record = try? it.next() {
                n &+= record.keySize &+ record.valueSize
                for h in record.headers { n &+= h.key.readableBytes }
            }
            _ = n
        }
    }
}
