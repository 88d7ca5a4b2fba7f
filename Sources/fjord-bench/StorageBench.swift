#if canImport(Glibc)
import Glibc
#endif
import FjordRecords
import FjordStorage
import Foundation
import NIOCore

/// Storage engine benchmark, each result a ratio to a baseline measured in the same run on
/// the same filesystem:
/// - append: 1 KiB records in 16 KiB batches through `PartitionLog.appendAsLeader`, fsync
///   every `fsyncMiB`, vs raw pwrite of 16 KiB blocks with the same fsync pattern (what
///   `dd bs=16k` + fdatasync does), and vs `dd` itself when available;
/// - read: whole log through `PartitionLog.read` from the page cache vs `cat` of the files;
/// - index: offset → position lookups (ns each).
func runStorageBench(totalMiB: Int = 512, fsyncMiB: Int = 8, dir: String? = nil) throws {
    let base = dir ?? (FileManager.default.currentDirectoryPath + "/.build/bench-storage")
    try? FileSystem.removeTree(base)
    try FileSystem.createDirectory(base)
    defer { try? FileSystem.removeTree(base) }
    print("storage: \(totalMiB) MiB of 1 KiB records in 16 KiB batches, fsync every \(fsyncMiB) MiB, in \(base)")

    // One 16 KiB batch (16 records of ~1 KiB), reused: offsets are rewritten on append.
    var builder = RecordBatchBuilder()
    for i in 0..<16 {
        var v = ByteBufferAllocator().buffer(capacity: 1000)
        for j in 0..<1000 { v.writeInteger(UInt8(truncatingIfNeeded: (i * 31 + j * 7) % 251)) }
        builder.append(key: ByteBuffer(string: "key-\(i)"), value: v, timestamp: 1_700_000_000_000)
    }
    let batch = try builder.build().buffer
    let batchBytes = batch.readableBytes
    let batches = totalMiB * 1024 * 1024 / batchBytes
    let syncEvery = fsyncMiB * 1024 * 1024 / batchBytes

    // Baseline: raw pwrite of the same bytes with the same fdatasync pattern.
    let rawPath = base + "/raw.bin"
    let raw = try StorageFile(path: rawPath, create: true)
    let t0 = Date()
    var pos = 0
    for i in 0..<batches {
        try raw.write(batch, at: pos)
        pos += batchBytes
        if (i + 1) % syncEvery == 0 { try raw.sync() }
    }
    try raw.sync()
    let rawSecs = Date().timeIntervalSince(t0)
    let rawMBs = Double(pos) / rawSecs / 1e6
    try FileSystem.remove(rawPath)

    // dd with a per-chunk fdatasync cannot be expressed in one call; dd conv=fdatasync syncs once at
    // the end, an upper bound for the pattern. Reported for reference.
    var ddMBs: Double? = nil
    do {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/dd")
        p.arguments = ["if=/dev/zero", "of=\(base)/dd.bin", "bs=16k", "count=\(batches)", "conv=fdatasync"]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        let t = Date()
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus == 0 { ddMBs = Double(batches * 16384) / Date().timeIntervalSince(t) / 1e6 }
        try? FileSystem.remove(base + "/dd.bin")
    }

    // Fjord: leader appends (validation, offset assignment, index maintenance) + group flush.
    var cfg = LogConfig()
    cfg.segmentBytes = 256 * 1024 * 1024
    let log = try PartitionLog(dir: base + "/bench-0", topicPartition: TopicPartition("bench", 0), config: cfg, nowMs: 1_700_000_000_000)
    let t1 = Date()
    for i in 0..<batches {
        try log.appendAsLeader(batch, leaderEpoch: 0, nowMs: 1_700_000_000_000)
        if (i + 1) % syncEvery == 0 { try log.flush() }
    }
    try log.flush()
    let appendSecs = Date().timeIntervalSince(t1)
    let appendMBs = Double(batches * batchBytes) / appendSecs / 1e6
    print(String(format: "  append: %.0f MB/s (%.0f records/s); raw pwrite+fdatasync baseline %.0f MB/s; ratio %.2fx (target >= 0.8x)",
                 appendMBs, Double(batches * 16) / appendSecs, rawMBs, appendMBs / rawMBs))
    if let ddMBs { print(String(format: "  (dd bs=16k conv=fdatasync, one sync at the end: %.0f MB/s; ratio %.2fx)", ddMBs, appendMBs / ddMBs)) }

    // Read from the page cache: the log via PartitionLog.read, vs cat of the same files.
    let leo = log.logEndOffset
    let t2 = Date()
    var offset: Int64 = 0
    var bytesRead = 0
    var scratch = ByteBufferAllocator().buffer(capacity: 1 << 20)
    while offset < leo {
        let r = try log.read(from: offset, maxBytes: 1 << 20, minOneBatch: true)
        guard let slice = r.slice else { break }
        scratch.clear()
        try slice.file.read(into: &scratch, at: slice.position, count: slice.length)
        bytesRead += slice.length
        // Advance past the last whole batch in the chunk.
        var last = offset
        for item in RecordBatchReader(scratch) {
            if case let .batch(b, _) = item { last = b.nextOffset }
        }
        offset = last
    }
    let readSecs = Date().timeIntervalSince(t2)
    let readMBs = Double(bytesRead) / readSecs / 1e6
    let files = try FileSystem.list(base + "/bench-0").filter { $0.hasSuffix(".log") }.map { base + "/bench-0/" + $0 }
    let cat = Process()
    cat.executableURL = URL(fileURLWithPath: "/bin/cat")
    cat.arguments = files
    cat.standardOutput = FileHandle.nullDevice
    let t3 = Date()
    try cat.run()
    cat.waitUntilExit()
    let catMBs = Double(bytesRead) / Date().timeIntervalSince(t3) / 1e6
    print(String(format: "  read (page cache): %.0f MB/s; cat baseline %.0f MB/s; ratio %.2fx (target >= 0.8x)", readMBs, catMBs, readMBs / catMBs))

    // Index lookups: random offsets → batch position.
    var rng = SystemRandomNumberGenerator()
    let lookups = 200_000
    let t4 = Date()
    var sink = 0
    for _ in 0..<lookups {
        let o = Int64(rng.next() % UInt64(leo))
        sink &+= try log.read(from: o, maxBytes: 1).slice?.position ?? 0
    }
    let ns = Date().timeIntervalSince(t4) / Double(lookups) * 1e9
    print(String(format: "  offset lookup (index + header scan): %.0f ns each (%d)", ns, sink & 1))
    try log.close()
}
