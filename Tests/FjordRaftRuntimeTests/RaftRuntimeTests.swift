import FjordRaft
import FjordRaftRuntime
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
}
