import FjordRecords
import NIOCore

/// Walks the record batches of a segment file in bounded chunks (never the whole file in
/// memory), stopping at the first torn, unreadable or corrupt batch.
enum SegmentScanner {
    enum Stop {
        case end
        case problem(String)
    }

    /// Calls `body` with each batch (CRC-checked when `verify`) and its file position.
    /// Returns the bytes of valid batches from the start, and why the walk stopped.
    static func forEachBatch(in file: StorageFile, size fileSize: Int, maxBatchSize: Int, verify: Bool = true,
                             chunkSize: Int = 1 << 20, _ body: (RecordBatch, Int) throws -> Bool) throws -> (validBytes: Int, stop: Stop) {
        var buf = ByteBuffer()
        var bufStart = 0
        while true {
            switch RecordBatch.frame(buf, maxBatchSize: maxBatchSize) {
            case let .complete(total):
                let slice = buf.readSlice(length: total)!
                let batch: RecordBatch
                do {
                    batch = try RecordBatch(slice, maxBatchSize: maxBatchSize)
                    if verify { try batch.validate() }
                } catch {
                    return (bufStart, .problem("corrupt batch at position \(bufStart): \(error)"))
                }
                let position = bufStart
                bufStart += total
                if try !body(batch, position) { return (position, .problem("rejected batch at position \(position)")) }
            case let .incomplete(needed):
                let fileLeft = fileSize - (bufStart + buf.readableBytes)
                if fileLeft <= 0 {
                    if buf.readableBytes > 0 {
                        return (bufStart, .problem("torn batch at position \(bufStart): \(buf.readableBytes) of \(needed.map(String.init) ?? "?") bytes"))
                    }
                    return (bufStart, .end)
                }
                var next = ByteBuffer()
                next.reserveCapacity(buf.readableBytes + max(chunkSize, needed ?? 0))
                next.writeBuffer(&buf)
                let want = min(fileLeft, max(chunkSize, (needed ?? 0) - next.readableBytes))
                try file.read(into: &next, at: bufStart + next.readableBytes, count: want)
                buf = next
            case let .invalid(error):
                return (bufStart, .problem("unreadable batch header at position \(bufStart): \(error)"))
            }
        }
    }
}
