import FjordRaft
import FjordRecords
import NIOCore
import XCTest

/// Direct tests of the core's rules, driving nodes by hand (no network model).
final class RaftCoreTests: XCTestCase {
    func node(_ id: Int32, voters: [Int32] = [1, 2, 3], state: ElectionState = .initial, log: MemoryRaftLog = MemoryRaftLog()) -> RaftNode {
        RaftNode(config: RaftConfig(nodeId: id, voters: voters), log: log, state: state, seed: 42, nowMs: 0)
    }

    func testSingleVoterElectsItselfAndCommits() throws {
        let log = MemoryRaftLog()
        let n = node(1, voters: [1], log: log)
        var r = n.tick(nowMs: 5_000)
        XCTAssertEqual(n.role, .leader)
        XCTAssertEqual(r.persistState?.votedId, 1)
        XCTAssertEqual(r.persistState?.leaderId, 1, "leadership is persisted before anything is sent")
        XCTAssertTrue(r.flushLog, "the LeaderChange record must be flushed")
        try log.flush()
        r = n.persisted(nowMs: 5_000)
        XCTAssertEqual(r.newHighWatermark, 1, "the epoch's LeaderChange record commits")
        let (offsets, ready) = try n.propose([ByteBuffer(string: "a"), ByteBuffer(string: "b")], nowMs: 5_001)
        XCTAssertEqual(offsets, 1...2)
        XCTAssertTrue(ready.flushLog)
        XCTAssertNil(ready.newHighWatermark, "not committed before the leader's own flush")
        try log.flush()
        XCTAssertEqual(n.persisted(nowMs: 5_002).newHighWatermark, 3)
    }

    func testVoteIsPersistedBeforeTheGrantIsSent() {
        let v = node(2)
        let r = v.receive(RaftEnvelope(from: 1, to: 2, message: .vote(VoteRequestData(
            candidateEpoch: 1, candidateId: 1, lastOffsetEpoch: -1, lastOffset: 0, preVote: false))), nowMs: 10)
        XCTAssertEqual(r.persistState, ElectionState(epoch: 1, votedId: 1))
        guard case let .voteResponse(resp)? = r.sendAfterPersist.first?.message else { return XCTFail("no response") }
        XCTAssertTrue(resp.voteGranted)
        // A second candidate in the same epoch is refused.
        let r2 = v.receive(RaftEnvelope(from: 3, to: 2, message: .vote(VoteRequestData(
            candidateEpoch: 1, candidateId: 3, lastOffsetEpoch: -1, lastOffset: 0, preVote: false))), nowMs: 11)
        guard case let .voteResponse(resp2)? = r2.sendAfterPersist.first?.message else { return XCTFail("no response") }
        XCTAssertFalse(resp2.voteGranted)
        XCTAssertNil(r2.persistState)
    }

    func testPreVoteChangesNothingAndIsRefusedWhileTheLeaderIsAlive() throws {
        let log = MemoryRaftLog()
        let f = node(2, state: ElectionState(epoch: 3, leaderId: 1), log: log)
        // The follower hears from its leader...
        _ = f.receive(RaftEnvelope(from: 1, to: 2, message: .beginQuorumEpoch(EpochData(leaderId: 1, leaderEpoch: 3))), nowMs: 100)
        let r = f.receive(RaftEnvelope(from: 3, to: 2, message: .vote(VoteRequestData(
            candidateEpoch: 4, candidateId: 3, lastOffsetEpoch: -1, lastOffset: 0, preVote: true))), nowMs: 200)
        XCTAssertNil(r.persistState, "a pre-vote changes no state")
        guard case let .voteResponse(resp)? = r.sendAfterPersist.first?.message else { return XCTFail("no response") }
        XCTAssertFalse(resp.voteGranted, "a follower with a live leader refuses pre-votes")
        XCTAssertEqual(f.epoch, 3)
        // After the fetch timeout without the leader, it grants.
        let r2 = f.receive(RaftEnvelope(from: 3, to: 2, message: .vote(VoteRequestData(
            candidateEpoch: 4, candidateId: 3, lastOffsetEpoch: -1, lastOffset: 0, preVote: true))), nowMs: 3_000)
        guard case let .voteResponse(resp2)? = r2.sendAfterPersist.first?.message else { return XCTFail("no response") }
        XCTAssertTrue(resp2.voteGranted)
        XCTAssertEqual(f.epoch, 3)
    }

    func testStaleCandidateLogIsRefused() throws {
        let log = MemoryRaftLog()
        _ = try log.appendAsLeader([ByteBuffer(string: "x")], epoch: 2, nowMs: 0)
        let v = node(2, state: ElectionState(epoch: 2), log: log)
        let r = v.receive(RaftEnvelope(from: 3, to: 2, message: .vote(VoteRequestData(
            candidateEpoch: 3, candidateId: 3, lastOffsetEpoch: 1, lastOffset: 10, preVote: false))), nowMs: 0)
        guard case let .voteResponse(resp)? = r.sendAfterPersist.first?.message else { return XCTFail("no response") }
        XCTAssertFalse(resp.voteGranted, "a log with an older last epoch is less up to date, whatever its length")
        XCTAssertEqual(v.epoch, 3, "the higher epoch is still adopted")
    }

    func testFollowerTruncatesOnDivergingEpoch() throws {
        // Leader log: epoch 1 offsets 0..1, epoch 3 offsets 2..3. Follower: epoch 1 0..1, epoch 2 2..4.
        let leaderLog = MemoryRaftLog()
        _ = try leaderLog.appendAsLeader([ByteBuffer(string: "a"), ByteBuffer(string: "b")], epoch: 1, nowMs: 0)
        _ = try leaderLog.appendAsLeader([ByteBuffer(string: "c"), ByteBuffer(string: "d")], epoch: 3, nowMs: 0)
        let followerLog = MemoryRaftLog()
        try followerLog.appendAsFollower(try leaderLog.read(from: 0, maxBytes: 1))
        _ = try followerLog.appendAsLeader([ByteBuffer(string: "x"), ByteBuffer(string: "y"), ByteBuffer(string: "z")], epoch: 2, nowMs: 0)
        XCTAssertEqual(followerLog.endOffset, 5)

        let leader = node(1, state: ElectionState(epoch: 3, votedId: 1, leaderId: 1), log: leaderLog)
        XCTAssertEqual(leader.role, .resigned, "a restarted leader does not lead blind")
        let follower = node(2, state: ElectionState(epoch: 3, leaderId: 1), log: followerLog)
        // The follower's fetch carries its last epoch (2) and end offset (5).
        let req = FetchRequestData(currentLeaderEpoch: 3, fetchOffset: 5, lastFetchedEpoch: 2, replicaId: 2, maxWaitMs: 0, maxBytes: 1 << 20)
        XCTAssertEqual(leaderLog.endOffset(forEpoch: 2).epoch, 1)
        XCTAssertEqual(leaderLog.endOffset(forEpoch: 2).endOffset, 2)
        // Answer as a leader would (divergence: epoch 1 ends at 2 < 5).
        var resp = FetchResponseData(leaderId: 1, leaderEpoch: 3, highWatermark: 2, logStartOffset: 0, fetchOffset: 5)
        resp.divergingEpoch = 1
        resp.divergingEndOffset = 2
        let sent = follower.tick(nowMs: 1)  // sends its fetch
        guard case let .fetch(f)? = sent.sendAfterPersist.first?.message else { return XCTFail("no fetch") }
        resp.fetchId = f.fetchId  // the shell pairs the answer with its request
        let r = follower.receive(RaftEnvelope(from: 1, to: 2, message: .fetchResponse(resp)), nowMs: 2)
        XCTAssertEqual(followerLog.endOffset, 2, "truncated to the end of the common epoch")
        XCTAssertTrue(r.flushLog)
        guard case let .fetch(next)? = r.sendAfterPersist.first?.message else { return XCTFail("no refetch") }
        XCTAssertEqual(next.fetchOffset, 2)
        XCTAssertEqual(next.lastFetchedEpoch, 1)
        _ = req
    }

    func testLeaderResignsWithoutAMajority() throws {
        let log = MemoryRaftLog()
        let n = node(1, log: log)
        _ = n.tick(nowMs: 2_500)  // prospective
        for v: Int32 in [2, 3] {
            _ = n.receive(RaftEnvelope(from: v, to: 1, message: .voteResponse(VoteResponseData(
                leaderEpoch: 0, leaderId: -1, voteGranted: true, requestEpoch: 1, preVote: true))), nowMs: 2_510)
        }
        XCTAssertEqual(n.role, .candidate)
        _ = n.receive(RaftEnvelope(from: 2, to: 1, message: .voteResponse(VoteResponseData(
            leaderEpoch: 1, leaderId: -1, voteGranted: true, requestEpoch: 1, preVote: false))), nowMs: 2_520)
        XCTAssertEqual(n.role, .leader)
        // Nobody fetches: after 1.5 × fetch timeout the leader resigns and says so.
        let r = n.tick(nowMs: 2_520 + 3_001)
        XCTAssertEqual(n.role, .resigned)
        XCTAssertEqual(r.sendAfterPersist.filter { if case .endQuorumEpoch = $0.message { return true } else { return false } }.count, 2)
    }
}
