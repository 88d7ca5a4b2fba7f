import FjordRecords
import FjordStorage
import FjordTestSupport
import NIOCore
import XCTest

/// Builds a producer batch of `count` records with keys `k<n>` and values `v<n>-…`.
func makeBatch(first n: Int, count: Int, valueSize: Int = 100, timestamp: Int64 = 1_700_000_000_000,
               codec: CompressionCodec = .none, keys: Bool = true) throws -> ByteBuffer {
    var b = RecordBatchBuilder(codec: codec)
    for i in 0..<count {
        let id = n + i
        var v = ByteBuffer(string: "v\(id)-")
        v.writeRepeatingByte(UInt8(ascii: "x"), count: max(0, valueSize - v.readableBytes))
        b.append(key: keys ? ByteBuffer(string: "k\(id)") : nil, value: v, timestamp: timestamp + Int64(id))
    }
    return try b.build().buffer
}

/// Every record of the log from `from`, as (offset, key, value) — via the public read path.
func readAll(_ log: PartitionLog, from: Int64 = -1, maxOffset: Int64? = nil) throws -> [(Int64, String?, String?)] {
    var out: [(Int64, String?, String?)] = []
    var next = from < 0 ? log.logStartOffset : from
    let end = maxOffset ?? log.logEndOffset
    while next < end {
        let bytes = try log.readBytes(from: next, maxBytes: 64 * 1024, maxOffset: maxOffset)
        if bytes.readableBytes == 0 { break }
        var progressed = false
        for item in RecordBatchReader(bytes) {
            guard case let .batch(batch, _) = item else { continue }
            try batch.validate()
            for r in try batch.records() where r.offset >= next {
                out.append((r.offset, r.key.map { String(buffer: $0) }, r.value.map { String(buffer: $0) }))
                next = r.offset + 1
                progressed = true
            }
        }
        if !progressed { break }
    }
    return out
}

func tempDir(_ name: String = "fjord-storage") throws -> String {
    try TestPython.temporaryDirectory(name)
}
