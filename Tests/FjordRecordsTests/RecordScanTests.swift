import FjordRecords
import NIOCore
import XCTest

/// `RecordBatch.scanRecords` (the leader's fast validation) must agree with the record
/// iterator on every batch: the same records accepted, the same ones refused.
final class RecordScanTests: XCTestCase {
    struct Rng {
        var s: UInt64
        mutating func next() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    func iterate(_ b: RecordBatch) -> (count: Int32, maxDelta: Int64, keyless: Bool)? {
        guard var it = try? b.makeRecordIterator() else { return nil }
        var n: Int32 = 0
        var maxDelta = Int64.min
        var keyless = false
        do {
            while let r = try it.next() {
                if r.offsetDelta != n { return nil }
                if r.key == nil { keyless = true }
                maxDelta = max(maxDelta, r.timestampDelta)
                n += 1
            }
        } catch {
            return nil
        }
        return (n, maxDelta, keyless)
    }

    func testScanAgreesWithTheIteratorOnValidAndDamagedBatches() throws {
        var rng = Rng(s: 7)
        var checked = 0
        for round in 0..<400 {
            var builder = RecordBatchBuilder(codec: round % 5 == 0 ? .lz4 : .none)
            let n = 1 + rng.int(20)
            for i in 0..<n {
                let key: ByteBuffer? = rng.int(4) == 0 ? nil : ByteBuffer(string: "k\(i)")
                let value: ByteBuffer? = rng.int(6) == 0 ? nil : ByteBuffer(repeating: UInt8(i), count: rng.int(300))
                var headers: [RecordHeader] = []
                for h in 0..<rng.int(3) { headers.append(RecordHeader(key: ByteBuffer(string: "h\(h)"), value: rng.int(3) == 0 ? nil : ByteBuffer(string: "v"))) }
                builder.append(key: key, value: value, headers: headers, timestamp: 1_700_000_000_000 + Int64(rng.int(5000)))
            }
            let good = try builder.build()
            for damage in 0..<4 {
                var bytes = good.buffer
                if damage > 0 && round % 5 != 0 {
                    // Flip a byte inside the records section (after the 61-byte header).
                    let at = 61 + rng.int(max(1, bytes.readableBytes - 61))
                    let old = bytes.getInteger(at: bytes.readerIndex + at, as: UInt8.self)!
                    bytes.setInteger(old ^ UInt8(1 << rng.int(8)), at: bytes.readerIndex + at)
                }
                guard let batch = try? RecordBatch(bytes) else { continue }
                let expected = iterate(batch)
                let scanned = try? batch.scanRecords()
                XCTAssertEqual(scanned?.count, expected?.count, "round \(round) damage \(damage)")
                XCTAssertEqual(scanned?.maxTimestampDelta, expected?.maxDelta, "round \(round) damage \(damage)")
                if let e = expected {
                    let keyed = try? batch.scanRecords(requireKeys: true)
                    XCTAssertEqual(keyed == nil, e.keyless, "round \(round): requireKeys disagrees")
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 1000)
    }
}
