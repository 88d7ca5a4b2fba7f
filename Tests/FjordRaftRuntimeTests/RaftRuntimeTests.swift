import FjordRaft
import FjordRaftRuntime
import FjordRecords
import FjordStorage
import FjordTestSupport
import NIOCore
import NIOPosix
import XCTest

/// Three in-process voters on real files with fsync: elect, commit, restart a node from
/// disk, and see it catch up; stop the leader and see a new one take over.
final class RaftRuntimeTests: XCTestCase {
    func waitFor(_ what: String, timeout: Double = 20, _ cond: () throws -> Bool) throws {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if try cond() { return }
            usleep(20_000)
        }
        XCTFail("timed out waiting for \(what)")
    }

    func testThreeVotersCommitRestartAndFailOver() throws {
        let dir = try TestPython.temporaryDirectory("fjord-raft")
        defer { try? FileSystem.removeTree(dir) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        defer { try? group.syncShutdownGracefully() }
        let transport = LocalRaftTransport()
        func make(_ id: Int32) throws -> RaftRuntime {
            let r = try RaftRuntime(config: RaftConfig(nodeId: id, voters: [1, 2, 3]), dataDir: "\(dir)/node\(id)",
                                    loop: group.next(), transport: transport, seed: UInt64(id) * 7919)
            transport.register(r)
            r.start()
            return r
        }
        var nodes: [Int32: RaftRuntime] = [:]
        for id: Int32 in 1...3 { nodes[id] = try make(id) }
        func leader() throws -> RaftRuntime? {
            for (_, n) in nodes { if try n.status().wait().role == .leader { return n } }
            return nil
        }
        try waitFor("a leader") { try leader() != nil }
        let l = try XCTUnwrap(leader())
        let futures = (0..<200).map { l.propose(ByteBuffer(string: "record-\($0)")) }
        let offsets = try futures.map { try $0.wait() }
        XCTAssertEqual(offsets, offsets.sorted())
        XCTAssertEqual(Set(offsets).count, 200)
        // Restart a follower from its files: it keeps its log and catches up.
        let follower = nodes.values.first { $0 !== l }!
        let fid = follower.nodeId
        try follower.stop().wait()
        transport.unregister(fid)
        let more = (0..<50).map { l.propose(ByteBuffer(string: "more-\($0)")) }
        for f in more { _ = try f.wait() }
        let leo = try l.status().wait().logEndOffset
        nodes[fid] = try make(fid)
        try waitFor("the restarted follower to catch up") { try nodes[fid]!.status().wait().logEndOffset == leo }
        // Stop the leader: another takes over in a higher epoch and commits.
        let oldEpoch = try l.status().wait().epoch
        try l.stop().wait()
        transport.unregister(l.nodeId)
        nodes[l.nodeId] = nil
        try waitFor("a new leader") { if let n = try leader() { return try n.status().wait().epoch > oldEpoch } else { return false } }
        let newLeader = try XCTUnwrap(leader())
        XCTAssertGreaterThan(try newLeader.propose(ByteBuffer(string: "after-failover")).wait(), leo - 1)
        for (_, n) in nodes { try n.stop().wait() }
        // The quorum-state file is Kafka's JSON form.
        let state = try FileSystem.readString("\(dir)/node\(newLeader.nodeId)/__cluster_metadata-0/quorum-state")
        XCTAssertTrue(state.contains("\"leaderId\":\(newLeader.nodeId)"), state)
        XCTAssertTrue(state.contains("\"data_version\":1"), state)
    }

    /// Records what a listener is handed, checking the API's promises as it goes: batches
    /// arrive in offset order with no gap and no repeat after the snapshot it loaded.
    final class Recorder: RaftListener, @unchecked Sendable {
        let lock = NSLock()
        var values: [String] = []
        var next: Int64 = 0
        var snapshots: [SnapshotId] = []
        var leaders: [(Int32, Int32)] = []
        var violations: [String] = []

        func handleCommit(_ batches: [CommittedBatch]) {
            lock.lock(); defer { lock.unlock() }
            for b in batches {
                if b.baseOffset != next { violations.append("batch at \(b.baseOffset), expected \(next)") }
                next = b.lastOffset + 1
                if b.isControl { if !b.records.isEmpty { violations.append("control batch with records") } }
                for r in b.records { values.append(String(buffer: r.value)) }
            }
        }
        func handleLoadSnapshot(_ snapshot: SnapshotReader) {
            lock.lock(); defer { lock.unlock() }
            snapshots.append(snapshot.id)
            values = snapshot.values.map { String(buffer: $0) }
            next = snapshot.id.endOffset
        }
        func handleLeaderChange(epoch: Int32, leaderId: Int32) {
            lock.lock(); defer { lock.unlock() }
            leaders.append((epoch, leaderId))
        }
        var state: (values: [String], snapshots: [SnapshotId], leaders: [(Int32, Int32)], violations: [String]) {
            lock.lock(); defer { lock.unlock() }
            return (values, snapshots, leaders, violations)
        }
    }

    /// The listener API: every voter's state machine sees exactly the committed values in
    /// order and every leader change; one registered on a node with a snapshot starts from
    /// it and then gets only what follows it.
    func testListenersSeeCommittedBatchesInOrderAndStartFromASnapshot() throws {
        let dir = try TestPython.temporaryDirectory("fjord-raft-listener")
        defer { try? FileSystem.removeTree(dir) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        defer { try? group.syncShutdownGracefully() }
        let transport = LocalRaftTransport()
        var nodes: [Int32: RaftRuntime] = [:]
        var recorders: [Int32: Recorder] = [:]
        func make(_ id: Int32) throws {
            let r = try RaftRuntime(config: RaftConfig(nodeId: id, voters: [1, 2, 3]), dataDir: "\(dir)/node\(id)",
                                    loop: group.next(), transport: transport, seed: UInt64(id) * 104_729)
            let rec = Recorder()
            try r.register(rec).wait()
            transport.register(r)
            r.start()
            nodes[id] = r
            recorders[id] = rec
        }
        for id: Int32 in 1...3 { try make(id) }
        func leader() throws -> RaftRuntime? {
            for (_, n) in nodes { if try n.status().wait().role == .leader { return n } }
            return nil
        }
        try waitFor("a leader") { try leader() != nil }
        let l = try XCTUnwrap(leader())
        let expected = (0..<300).map { "v\($0)" }
        // Proposals in batches of one to three values, so batches of several records occur.
        var futures: [EventLoopFuture<Int64>] = []
        var i = 0
        while i < expected.count {
            let n = min(1 + i % 3, expected.count - i)
            futures.append(l.propose(expected[i..<(i + n)].map { ByteBuffer(string: $0) }))
            i += n
        }
        for f in futures { _ = try f.wait() }
        try waitFor("every listener to see all 300 values") { recorders.values.allSatisfy { $0.state.values.count == 300 } }
        let epoch = try l.status().wait().epoch
        for (id, rec) in recorders {
            let st = rec.state
            XCTAssertEqual(st.values, expected, "node \(id)")
            XCTAssertEqual(st.violations, [], "node \(id)")
            XCTAssertEqual(st.snapshots, [], "node \(id)")
            XCTAssertTrue(st.leaders.contains { $0 == (epoch, l.nodeId) }, "node \(id) never heard of leader \(l.nodeId) in epoch \(epoch): \(st.leaders)")
        }
        // A snapshot of the first 150 values, as a state machine writes one; a listener
        // registered on that node afterwards loads it and then gets only the rest.
        let hw = try l.status().wait().highWatermark
        let node = try XCTUnwrap(nodes.values.first { $0 !== l })
        let snapshotEnd: Int64 = try node.loop.submit { () -> Int64 in
            // The offset just after the 150th value: values sit after the LeaderChange record(s).
            var seen = 0
            var offset: Int64 = 0
            for item in RecordBatchReader(try node.log.read(from: 0, maxBytes: 1 << 22)) {
                guard case let .batch(b, _) = item, b.lastOffset < hw, seen < 150 else { break }
                if !b.isControl { try b.forEachRecord { _ in seen += 1 } }
                offset = b.lastOffset + 1
            }
            return offset
        }.wait()
        // The values below snapshotEnd make up the snapshot.
        let inSnapshot: [String] = try node.loop.submit { () -> [String] in
            var out: [String] = []
            for item in RecordBatchReader(try node.log.read(from: 0, maxBytes: 1 << 22)) {
                guard case let .batch(b, _) = item, b.lastOffset < snapshotEnd else { break }
                if !b.isControl { try b.forEachRecord { r in if let v = r.value { out.append(String(buffer: v)) } } }
            }
            return out
        }.wait()
        let id = SnapshotId(endOffset: snapshotEnd, epoch: epoch)
        let bytes = try SnapshotFile.encode(inSnapshot.map { ByteBuffer(string: $0) }, id: id, lastContainedLogTimestamp: 0)
        try SnapshotFile.write(bytes, id: id, dir: node.log.dir)
        try node.loop.submit { node.snapshotWritten(id, retentionBytes: -1, retentionMs: -1) }.wait()
        let late = Recorder()
        try node.register(late).wait()
        try waitFor("the late listener to catch up") { late.state.values.count == 300 }
        let st = late.state
        XCTAssertEqual(st.snapshots, [id])
        XCTAssertEqual(st.values, expected)
        XCTAssertEqual(st.violations, [])
        for (_, n) in nodes { try n.stop().wait() }
    }
}

