import FjordRecords
import FjordStorage
import NIOCore
import XCTest

/// Compaction against an in-memory model: after cleaning, a full read yields exactly the
/// latest value of every key (tombstoned keys gone once past delete.retention.ms), offsets
/// increase, and appends continue.
final class CompactionTests: XCTestCase {
    let now: Int64 = 1_700_000_100_000

    private func config() -> LogConfig {
        var c = LogConfig()
        c.segmentBytes = 6 * 1024
        c.indexIntervalBytes = 512
        c.segmentIndexBytes = 4096
        c.cleanupPolicy = [.compact]
        c.deleteRetentionMs = 1000
        return c
    }

    /// Appends a random workload over `keys` keys; returns the model (key → latest value or nil).
    private func workload(_ log: PartitionLog, rng: inout SplitMix64, batches: Int, keys: Int, ts: Int64) throws -> [String: String?] {
        var model: [String: String?] = [:]
        for _ in 0..<batches {
            var b = RecordBatchBuilder(codec: CompressionCodec.allCases[Int(rng.next() % 5)])
            for _ in 0..<(1 + Int(rng.next() % 8)) {
                let k = "key-\(rng.next() % UInt64(keys))"
                let tomb = rng.next() % 10 == 0
                let v = tomb ? nil : "val-\(rng.next() % 1_000_000)"
                b.append(key: ByteBuffer(string: k), value: v.map { ByteBuffer(string: $0) }, timestamp: ts)
                model[k] = .some(v)
            }
            try log.appendAsLeader(try b.build().buffer, leaderEpoch: 0, nowMs: now)
        }
        log.highWatermark = log.logEndOffset
        return model
    }

    private func latest(_ log: PartitionLog) throws -> (values: [String: String?], offsets: [Int64]) {
        var out: [String: String?] = [:]
        var offsets: [Int64] = []
        for (off, k, v) in try readAll(log) {
            offsets.append(off)
            out[k!] = .some(v)
        }
        return (out, offsets)
    }

    func testCompactionKeepsExactlyTheLatestValuePerKey() throws {
        for seed in UInt64(1)...8 {
            var rng = SplitMix64(seed: seed)
            let dir = try tempDir("fjord-compact")
            defer { try? FileSystem.removeTree(dir) }
            let log = try PartitionLog(dir: dir + "/c-0", topicPartition: TopicPartition("c", 0), config: config(), nowMs: now)
            var model = try workload(log, rng: &rng, batches: 300, keys: 40, ts: now - 10_000)
            let leoBefore = log.logEndOffset
            let sizeBefore = log.sizeInBytes
            var cleaner = LogCleaner()
            cleaner.dedupeBufferBytes = seed % 2 == 0 ? 1 << 20 : 2_000  // small map: several passes
            var dirty: Int64 = 0
            var passes = 0
            var tombstonesDropped = 0
            while passes < 50 {
                let st = try XCTUnwrap(cleaner.cleanIfNeeded(log, firstDirtyOffset: dirty, nowMs: now, force: true))
                passes += 1
                tombstonesDropped += st.tombstonesDropped
                if st.firstDirtyOffset == dirty { break }
                dirty = st.firstDirtyOffset
            }
            // The passes above stamped a delete horizon (now + delete.retention.ms) on the
            // batches keeping tombstones (KIP-534); a full pass after it removes them.
            let afterHorizon = now + config().deleteRetentionMs
            tombstonesDropped += try cleaner.clean(log, firstDirtyOffset: dirty, nowMs: afterHorizon).tombstonesDropped
            XCTAssertGreaterThan(tombstonesDropped, 0, "seed \(seed): old tombstones are removed")
            XCTAssertEqual(log.logEndOffset, leoBefore, "offsets are kept")
            XCTAssertLessThan(log.sizeInBytes, sizeBefore, "seed \(seed): compaction freed space")
            let (got, offsets) = try latest(log)
            XCTAssertEqual(offsets, offsets.sorted(), "offsets increase")
            XCTAssertEqual(Set(offsets).count, offsets.count)
            // The active segment is not cleaned, so the model compares on inactive data as
            // latest values; every key's final value must match.
            for (k, v) in model {
                if let v { XCTAssertEqual(got[k], .some(v), "seed \(seed) key \(k)") }
                else if let g = got[k] { XCTAssertEqual(g, nil, "seed \(seed) key \(k): deleted key has a value") }
            }
            XCTAssertEqual(Set(got.keys).subtracting(model.keys), [])
            // Keys appear at most once in the cleaned (inactive) part.
            let activeBase = log.segmentBaseOffsets.last!
            let cleaned = try readAll(log).filter { $0.0 < activeBase }.map { $0.1! }
            XCTAssertEqual(cleaned.count, Set(cleaned).count, "seed \(seed): a key survives twice in cleaned segments")
            // The log is still appendable and reopenable.
            model.merge(try workload(log, rng: &rng, batches: 5, keys: 40, ts: now)) { $1 }
            let reopened = try PartitionLog(dir: dir + "/c-0", topicPartition: TopicPartition("c", 0), config: config(), nowMs: now)
            XCTAssertEqual(reopened.logEndOffset, log.logEndOffset)
        }
    }

    func testCrashAtEveryStepOfTheSwapRecoversWithNoLostKeys() throws {
        for point in CleanerCrashPoint.allCases {
            var rng = SplitMix64(seed: 99)
            let dir = try tempDir("fjord-compact-crash")
            defer { try? FileSystem.removeTree(dir) }
            let path = dir + "/c-0"
            let model: [String: String?]
            do {
                let log = try PartitionLog(dir: path, topicPartition: TopicPartition("c", 0), config: config(), nowMs: now)
                model = try workload(log, rng: &rng, batches: 200, keys: 30, ts: now)
                var cleaner = LogCleaner()
                cleaner.crashPoint = point
                XCTAssertThrowsError(try cleaner.clean(log, firstDirtyOffset: 0, nowMs: now)) { XCTAssertTrue($0 is SimulatedCrash) }
            }
            let files = try FileSystem.list(path)
            let log = try PartitionLog(dir: path, topicPartition: TopicPartition("c", 0), config: config(),
                                       recoveryPoint: 0, hadCleanShutdown: false, nowMs: now)
            let (got, offsets) = try latest(log)
            XCTAssertEqual(offsets, offsets.sorted(), "\(point)")
            for (k, v) in model { XCTAssertEqual(got[k] ?? nil, v, "\(point): key \(k) lost or wrong; files were \(files)") }
            XCTAssertFalse(try FileSystem.list(path).contains { $0.hasSuffix(".swap") || $0.hasSuffix(".cleaned") }, "\(point)")
            // Reads through the (rebuilt) indexes work at every offset present.
            for off in offsets.prefix(200) {
                XCTAssertNotNil(try log.read(from: off, maxBytes: 1).slice, "\(point): offset \(off)")
            }
        }
    }
}
