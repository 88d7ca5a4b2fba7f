import FjordRecords
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Record batch decode benchmark: frame + CRC-validate + iterate every record's key/value
/// slices over a large buffer of realistic uncompressed batches (1 KiB records, 16 KiB
/// batches), reported as a throughput ratio against memcpy of the same bytes in the same run.
///
/// `FJORD_BENCH_MB` sets the buffer size (default 256 MiB).
func runBatchBench() {
    let megabytes = Int(getenvString("FJORD_BENCH_MB") ?? "") ?? 256
    let target = megabytes << 20
    let recordsPerBatch = 16
    let valueSize = 1000

    // A few distinct templates with pseudo-random values, tiled with increasing offsets.
    var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
    func nextRandom() -> UInt64 {
        rng &+= 0x9E37_79B9_7F4A_7C15
        var z = rng
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    var templates: [RecordBatch] = []
    for t in 0..<8 {
        var b = RecordBatchBuilder(producerId: 1000, producerEpoch: 0, baseSequence: 0, initialCapacity: 17 * 1024)
        for i in 0..<recordsPerBatch {
            var value = ByteBuffer()
            value.reserveCapacity(valueSize)
            for _ in 0..<(valueSize / 8) { value.writeInteger(nextRandom()) }
            b.append(key: ByteBuffer(string: "key-\(t)-\(i)"), value: value,
                     headers: [RecordHeader(key: "trace", value: "abc")],
                     timestamp: 1_700_000_000_000 + Int64(i))
        }
        do { templates.append(try b.build()) } catch { fatalError("bench setup: \(error)") }
    }
    var stream = ByteBuffer()
    stream.reserveCapacity(target + 32 * 1024)
    var offset: Int64 = 0
    var batches = 0
    while stream.readableBytes < target {
        var batch = templates[batches % templates.count]
        batch.setBaseOffset(offset)
        var bytes = batch.buffer
        stream.writeBuffer(&bytes)
        offset += Int64(recordsPerBatch)
        batches += 1
    }
    let size = stream.readableBytes

    // Baseline: memcpy of the same bytes into a pre-touched destination.
    let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
    defer { destination.deallocate() }
    guard let destinationBase = destination.baseAddress else { fatalError("bench: allocation failed") }
    memset(destinationBase, 1, size)
    let memcpySeconds = bestOf(5) {
        stream.withUnsafeReadableBytes { src in
            if let s = src.baseAddress { _ = memcpy(destinationBase, s, src.count) }
        }
    }

    var checksum = 0
    var failures = 0
    let decodeSeconds = bestOf(5) {
        var records = 0
        var bytes = 0
        for item in RecordBatchReader(stream) {
            guard case let .batch(batch, _) = item else { failures += 1; break }
            do {
                try batch.validate()
                var it = try batch.makeRecordIterator()
                while let r = try it.next() {
                    records &+= 1
                    bytes &+= (r.key?.readableBytes ?? 0) &+ (r.value?.readableBytes ?? 0)
                }
            } catch {
                failures += 1
            }
        }
        checksum = records &+ bytes
    }

    let gb = Double(size) / 1e9
    let ratio = memcpySeconds / decodeSeconds
    print("batch: \(batches) batches, \(batches * recordsPerBatch) records, \(size >> 20) MiB (\(recordsPerBatch) x \(valueSize) B records per batch)")
    print("batch: memcpy              \(format(gb / memcpySeconds)) GB/s")
    print("batch: decode+CRC+iterate  \(format(gb / decodeSeconds)) GB/s  (\(format(Double(batches * recordsPerBatch) / decodeSeconds / 1e6)) M records/s)")
    print("batch: ratio to memcpy     \(format(ratio))x  (target >= 0.5x; CRC32C hardware: \(CRC32C.isHardwareAccelerated))")
    if failures > 0 || checksum == 0 { print("batch: ERROR: \(failures) batches failed to decode") }
}

private func getenvString(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}

private func bestOf(_ runs: Int, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    var best = Double.infinity
    for _ in 0..<runs {
        let d = clock.measure(body)
        let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        best = min(best, s)
    }
    return best
}

private func format(_ x: Double) -> String {
    let r = (x * 100).rounded() / 100
    return "\(r)"
}
