import FjordRecords
import FjordStorage
import FjordTestSupport
import NIOCore
import XCTest

/// Real file damage: torn tails and flipped bytes in the active segment, damaged indexes.
/// After reopening, every batch before the damage is served, nothing at or after it, offsets
/// stay contiguous, and the indexes are rebuilt.
final class CrashRecoveryTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000

    private func config() -> LogConfig {
        var c = LogConfig()
        c.segmentBytes = 16 * 1024
        c.indexIntervalBytes = 700
        c.segmentIndexBytes = 4096
        return c
    }

    /// Writes `batches` batches of 3 records; returns the batch boundaries (file positions) of
    /// the active segment, and its path.
    private func writeLog(_ dir: String, batches: Int, rng: inout SplitMix64) throws -> (active: String, bounds: [(pos: Int, base: Int64, end: Int)]) {
        let log = try PartitionLog(dir: dir, topicPartition: TopicPartition("c", 0), config: config(), nowMs: now)
        for i in 0..<batches {
            let codec = CompressionCodec.allCases[Int(rng.next() % 5)]
            try log.appendAsLeader(try makeBatch(first: i * 3, count: 3, valueSize: 50 + Int(rng.next() % 400), codec: codec), leaderEpoch: 1, nowMs: now)
        }
        // No close(): the process "dies" here with everything in the page cache.
        let base = log.segmentBaseOffsets.last!
        let active = dir + "/" + LogSegment.fileName(base, ".log")
        let bytes = try StorageFile(path: active, readOnly: true)
        let all = try bytes.read(at: 0, count: try bytes.size())
        var bounds: [(Int, Int64, Int)] = []
        for item in RecordBatchReader(all) {
            if case let .batch(b, pos) = item { bounds.append((pos, b.baseOffset, pos + b.sizeInBytes)) }
        }
        return (active, bounds)
    }

    func testTornTailsAndFlippedBytesRecoverToTheIntactPrefix() throws {
        var rng = SplitMix64(seed: 0xF10D)
        for round in 0..<40 {
            let dir = try tempDir("fjord-crash")
            defer { try? FileSystem.removeTree(dir) }
            let (active, bounds) = try writeLog(dir, batches: 30 + Int(rng.next() % 40), rng: &rng)
            let size = bounds.last!.end
            let flip = round % 2 == 1
            var damageAt = Int(rng.next() % UInt64(size))
            let f = try StorageFile(path: active)
            if flip {
                // baseOffset (bytes 0-7) and partitionLeaderEpoch (12-15) are outside the CRC by
                // the format's design; damage the covered part of that batch instead.
                let b = bounds.first { $0.pos <= damageAt && damageAt < $0.end }!
                let rel = damageAt - b.pos
                if rel < 8 || (rel >= 12 && rel < 16) { damageAt = b.pos + 21 + Int(rng.next() % UInt64(b.end - b.pos - 21)) }
                var byte = try f.read(at: damageAt, count: 1)
                let old: UInt8 = byte.readInteger()!
                try f.write(ByteBuffer(bytes: [old ^ UInt8(1 + rng.next() % 255)]), at: damageAt)
            } else {
                try f.truncate(to: damageAt)
            }
            // Expected: every batch that ends before the damage (flip: before its batch).
            let intact = bounds.filter { flip ? $0.end <= damageAt : $0.end <= damageAt }
            let intactInActive = flip ? bounds.filter { $0.end <= damageAt && !($0.pos <= damageAt && damageAt < $0.end) } : intact
            let expectedEnd = intactInActive.last.map { $0.base + 3 } ?? LogSegment.baseOffset(fromFileName: FileSystem.fileName(of: active))!

            let log = try PartitionLog(dir: dir, topicPartition: TopicPartition("c", 0), config: config(),
                                       recoveryPoint: 0, hadCleanShutdown: false, nowMs: now)
            XCTAssertEqual(log.logEndOffset, expectedEnd, "round \(round) (flip: \(flip), at \(damageAt) of \(size))")
            let all = try readAll(log)
            XCTAssertEqual(all.map(\.0), Array(Int64(0)..<expectedEnd), "round \(round): offsets contiguous from 0")
            for (off, key, value) in all {
                XCTAssertEqual(key, "k\(off)")
                XCTAssertTrue(value?.hasPrefix("v\(off)-") ?? false)
            }
            // Appends continue right after the intact prefix.
            try log.appendAsLeader(try makeBatch(first: Int(expectedEnd), count: 3), leaderEpoch: 2, nowMs: now)
            XCTAssertEqual(log.logEndOffset, expectedEnd + 3)
            XCTAssertEqual(try readAll(log).count, Int(expectedEnd) + 3)
        }
    }

    func testDamagedOrMissingIndexesAreRebuilt() throws {
        var rng = SplitMix64(seed: 7)
        let dir = try tempDir("fjord-crash")
        defer { try? FileSystem.removeTree(dir) }
        let (_, _) = try writeLog(dir, batches: 120, rng: &rng)
        let names = try FileSystem.list(dir)
        // Garbage in one index, delete another.
        let indexes = names.filter { $0.hasSuffix(".index") }
        XCTAssertGreaterThan(indexes.count, 2)
        let g = try StorageFile(path: dir + "/" + indexes[0])
        try g.write(ByteBuffer(bytes: Array(repeating: 0x7F, count: 64)), at: 0)
        try FileSystem.remove(dir + "/" + indexes[1])
        let log = try PartitionLog(dir: dir, topicPartition: TopicPartition("c", 0), config: config(),
                                   recoveryPoint: 360, hadCleanShutdown: true, nowMs: now)
        XCTAssertEqual(log.logEndOffset, 360)
        for off in stride(from: Int64(0), to: 360, by: 1) {
            XCTAssertEqual(try log.read(from: off, maxBytes: 1).firstBatchBaseOffset, off - off % 3)
        }
    }
}

/// A small deterministic generator for reproducible damage.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
