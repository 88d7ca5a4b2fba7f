import FjordRaft
import FjordRecords
import NIOCore
import XCTest

/// KIP-630 in the core: a replica whose log ends before the leader's log start copies the
/// leader's snapshot with FetchSnapshot (in chunks), installs it and fetches on from it.
final class RaftSnapshotTests: XCTestCase {
    final class Peer {
        let node: RaftNode
        let log: MemoryRaftLog
        var installed: [SnapshotId] = []
        init(node: RaftNode, log: MemoryRaftLog) {
            self.node = node
            self.log = log
        }
    }

    /// Executes readies (flushing the log when asked) and delivers every message until the
    /// peers are quiet; returns the messages delivered.
    @discardableResult
    func pump(_ peers: [Int32: Peer], _ first: [(Int32, RaftReady)], now: Int64, maxSteps: Int = 500) throws -> [RaftMessage] {
        var queue: [RaftEnvelope] = []
        var seen: [RaftMessage] = []
        func run(_ id: Int32, _ ready: RaftReady) throws {
            var r = ready
            while true {
                if r.flushLog { try peers[id]!.log.flush() }
                if let s = r.snapshotInstalled { peers[id]!.installed.append(s) }
                queue.append(contentsOf: r.sendAfterPersist)
                guard r.needsPersist else { break }
                r = peers[id]!.node.persisted(nowMs: now)
                if r.isEmpty { break }
            }
        }
        for (id, r) in first { try run(id, r) }
        var steps = 0
        while !queue.isEmpty {
            steps += 1
            XCTAssertLessThan(steps, maxSteps, "the exchange does not end")
            if steps >= maxSteps { break }
            let env = queue.removeFirst()
            seen.append(env.message)
            guard let p = peers[env.to] else { continue }
            try run(env.to, p.node.receive(env, nowMs: now))
        }
        return seen
    }

    func values(_ log: MemoryRaftLog, from: Int64) throws -> [String] {
        var out: [String] = []
        for item in RecordBatchReader(try log.read(from: from, maxBytes: 1 << 20)) {
            guard case let .batch(b, _) = item, !b.isControl else { continue }
            try b.forEachRecord { r in
                if r.offset >= from, var v = r.value { out.append(v.readString(length: v.readableBytes) ?? "") }
            }
        }
        return out
    }

    func testLaggingObserverCatchesUpThroughTheLeadersSnapshot() throws {
        let leaderLog = MemoryRaftLog()
        let leader = RaftNode(config: RaftConfig(nodeId: 1, voters: [1]), log: leaderLog, state: .initial, seed: 1, nowMs: 0)
        var observerConfig = RaftConfig(nodeId: 2, voters: [1])
        observerConfig.fetchMaxBytes = 64  // several FetchSnapshot chunks
        let observerLog = MemoryRaftLog()
        let observer = RaftNode(config: observerConfig, log: observerLog, state: .initial, seed: 2, nowMs: 0)
        let peers: [Int32: Peer] = [1: Peer(node: leader, log: leaderLog), 2: Peer(node: observer, log: observerLog)]

        // The leader elects itself and commits 0..<20 (offset 0 is its LeaderChange record).
        try pump(peers, [(1, leader.tick(nowMs: 5_000))], now: 5_000)
        XCTAssertEqual(leader.role, .leader)
        for i in 0..<19 {
            try pump(peers, [(1, try leader.propose([ByteBuffer(string: "r\(i)")], nowMs: 5_001).ready)], now: 5_001)
        }
        XCTAssertEqual(leader.highWatermark, 20)
        // The state machine snapshots at 15 (everything below is committed) and the log
        // before it is deleted.
        let snap = SnapshotId(endOffset: 15, epoch: leader.epoch)
        leaderLog.createSnapshot(snap, bytes: ByteBuffer(string: String(repeating: "state-up-to-15;", count: 20)))
        leaderLog.deleteBeforeLatestSnapshot()
        XCTAssertEqual(leaderLog.startOffset, 15)

        // The observer, empty, fetches from 0: the leader names its snapshot.
        let seen = try pump(peers, [(2, observer.tick(nowMs: 5_100))], now: 5_100)
        let pointedToSnapshot = seen.contains { if case let .fetchResponse(r) = $0 { return r.snapshotId == snap }; return false }
        XCTAssertTrue(pointedToSnapshot, "a fetch before the log start is answered with the snapshot id")
        let chunks = seen.filter { if case .fetchSnapshot = $0 { return true }; return false }.count
        XCTAssertGreaterThan(chunks, 3, "the snapshot is copied in fetch.max.bytes chunks")
        XCTAssertEqual(peers[2]!.installed, [snap])
        XCTAssertEqual(observerLog.snapshots[snap], leaderLog.snapshots[snap], "the copy is byte for byte the leader's")
        XCTAssertEqual(observerLog.startOffset, 15)
        XCTAssertEqual(observerLog.endOffset, 20, "after the snapshot it fetched the log from 15")
        XCTAssertEqual(try values(observerLog, from: 15), (14..<19).map { "r\($0)" })
        XCTAssertEqual(observer.highWatermark, 20)
        XCTAssertEqual(observerLog.lastFetchedEpoch, leader.epoch)
    }

    func testReplicaAtTheLogStartWithTheSnapshotsEpochNeedsNoSnapshot() throws {
        let leaderLog = MemoryRaftLog()
        let leader = RaftNode(config: RaftConfig(nodeId: 1, voters: [1]), log: leaderLog, state: .initial, seed: 1, nowMs: 0)
        let peers: [Int32: Peer] = [1: Peer(node: leader, log: leaderLog)]
        try pump(peers, [(1, leader.tick(nowMs: 5_000))], now: 5_000)
        for i in 0..<9 { try pump(peers, [(1, try leader.propose([ByteBuffer(string: "r\(i)")], nowMs: 5_001).ready)], now: 5_001) }
        let snap = SnapshotId(endOffset: 10, epoch: leader.epoch)
        leaderLog.createSnapshot(snap, bytes: ByteBuffer(string: "s"))
        leaderLog.deleteBeforeLatestSnapshot()
        func fetch(offset: Int64, epoch: Int32) -> FetchResponseData? {
            let r = leader.receive(RaftEnvelope(from: 2, to: 1, message: .fetch(FetchRequestData(
                currentLeaderEpoch: leader.epoch, fetchOffset: offset, lastFetchedEpoch: epoch, replicaId: 2, maxWaitMs: 0, maxBytes: 1000))), nowMs: 5_002)
            guard case let .fetchResponse(f)? = r.sendAfterPersist.first?.message else { return nil }
            return f
        }
        let atStart = try XCTUnwrap(fetch(offset: 10, epoch: leader.epoch))
        XCTAssertNil(atStart.snapshotId)
        XCTAssertEqual(atStart.divergingEpoch, -1)
        XCTAssertEqual(try XCTUnwrap(fetch(offset: 10, epoch: leader.epoch - 1)).snapshotId, snap,
                       "a different epoch at the log start cannot be checked against deleted records")
        XCTAssertEqual(try XCTUnwrap(fetch(offset: 4, epoch: leader.epoch)).snapshotId, snap)
        // A missing snapshot is SNAPSHOT_NOT_FOUND; a position past the end POSITION_OUT_OF_RANGE.
        func fetchSnapshot(_ id: SnapshotId, _ pos: Int64) -> FetchSnapshotResponseData? {
            let r = leader.receive(RaftEnvelope(from: 2, to: 1, message: .fetchSnapshot(FetchSnapshotRequestData(
                currentLeaderEpoch: leader.epoch, snapshotId: id, position: pos, replicaId: 2, maxBytes: 100))), nowMs: 5_003)
            guard case let .fetchSnapshotResponse(f)? = r.sendAfterPersist.first?.message else { return nil }
            return f
        }
        XCTAssertEqual(fetchSnapshot(SnapshotId(endOffset: 7, epoch: leader.epoch), 0)?.errorCode, 98)
        XCTAssertEqual(fetchSnapshot(snap, 5)?.errorCode, 99)
        XCTAssertEqual(fetchSnapshot(snap, 0)?.size, 1)
    }
}
