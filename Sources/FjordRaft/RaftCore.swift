import NIOCore

/// A node's role in the quorum.
///
/// Transitions (events → role):
///
/// | from | event | to |
/// |---|---|---|
/// | any | higher epoch seen with a leader | follower |
/// | any | higher epoch seen, no leader | unattached |
/// | unattached, voted, follower (voter) | election / fetch timeout | prospective |
/// | unattached, voted | vote granted (persisted first) | voted |
/// | unattached, voted, candidate, prospective | BeginQuorumEpoch / fetch answer of this epoch's leader | follower |
/// | prospective | majority of pre-votes | candidate (epoch + 1, votes for itself, persisted) |
/// | prospective (knew this epoch's leader) | pre-vote lost (majority refused) or election timeout | follower of that leader (KIP-996) |
/// | prospective (no known leader) | a Vote answer names this epoch's leader | follower |
/// | prospective (no known leader), candidate | election timeout | prospective (after backoff) |
/// | candidate | majority of votes | leader (persisted, LeaderChange record appended) |
/// | leader | no majority fetch for 1.5 × fetch timeout (check-quorum) | resigned |
/// | resigned | election timeout | prospective |
public enum RaftRole: Sendable, Equatable, CustomStringConvertible {
    case unattached
    case voted(Int32)
    case prospective
    case candidate
    case leader
    case follower(Int32)
    case resigned

    public var description: String {
        switch self {
        case .unattached: return "Unattached"
        case let .voted(id): return "Voted(\(id))"
        case .prospective: return "Prospective"
        case .candidate: return "Candidate"
        case .leader: return "Leader"
        case let .follower(id): return "Follower(\(id))"
        case .resigned: return "Resigned"
        }
    }
}

/// What the shell must do after an event, in this order: persist `persistState` (write and
/// fsync `quorum-state`), flush the log if `flushLog`, and only then send `sendAfterPersist`.
/// If either persistence was asked for, call `RaftNode.persisted(nowMs:)` afterwards.
/// A vote, a fetch acknowledging appended data, or a leader's count of its own log never
/// leaves before the state it depends on is durable.
public struct RaftReady: Sendable {
    public var persistState: ElectionState?
    public var flushLog = false
    public var sendAfterPersist: [RaftEnvelope] = []
    /// The high watermark advanced: entries below it are committed.
    public var newHighWatermark: Int64?
    /// The known leader changed (epoch, leader id or -1).
    public var leaderChanged: (epoch: Int32, leaderId: Int32)?
    /// A snapshot fetched from the leader replaced the log: the state machine must reload
    /// from it before reading the log at its end offset.
    public var snapshotInstalled: SnapshotId?

    public var needsPersist: Bool { persistState != nil || flushLog }
    public var isEmpty: Bool {
        persistState == nil && !flushLog && sendAfterPersist.isEmpty && newHighWatermark == nil && leaderChanged == nil
            && snapshotInstalled == nil
    }
}

/// Raised by `propose` on a node that is not the leader.
public struct NotLeaderError: Error, Equatable, Sendable {
    public var epoch: Int32
    public var leaderId: Int32

    public init(epoch: Int32, leaderId: Int32) {
        self.epoch = epoch
        self.leaderId = leaderId
    }
}

/// A replica's progress as the leader sees it (for the high watermark and DescribeQuorum).
public struct ReplicaProgress: Sendable, Equatable {
    public var endOffset: Int64 = -1
    public var lastFetchMs: Int64 = -1
    public var lastCaughtUpMs: Int64 = -1
}

/// The KRaft consensus core: sans-I/O and deterministic. It reads the log through `RaftLog`
/// and changes it only by buffered appends/truncations that the shell makes durable; time
/// comes in with every event and randomness from an injected seed.
public final class RaftNode {
    public let config: RaftConfig
    public let log: RaftLog
    public private(set) var election: ElectionState
    public private(set) var role: RaftRole = .unattached
    /// Committed offset (exclusive): never decreases.
    public private(set) var highWatermark: Int64 = 0
    /// Leader state.
    public private(set) var epochStartOffset: Int64 = -1
    public private(set) var replicas: [Int32: ReplicaProgress] = [:]
    public private(set) var observers: [Int32: ReplicaProgress] = [:]
    private var becameLeaderMs: Int64 = 0
    private var lastBeginSentMs: [Int32: Int64] = [:]
    private var parkedFetches: [Int32: (request: FetchRequestData, deadline: Int64)] = [:]
    /// Elections.
    private var grants: Set<Int32> = []
    private var rejections: Set<Int32> = []
    private var electionDeadline: Int64 = 0
    private var lastVoteSentMs: Int64 = 0
    /// Voters whose vote request failed to connect, and when to ask again.
    private var voteRetryAt: [Int32: Int64] = [:]
    /// Followers.
    private var fetchDeadline: Int64 = 0
    private var lastLeaderContactMs: Int64 = -1
    private var inflightFetch: (offset: Int64, to: Int32, sentMs: Int64, id: UInt64)?
    /// Numbers this node's fetches (see `FetchRequestData.fetchId`).
    private var fetchSeq: UInt64 = 0
    /// A snapshot being copied from the leader (the leader's log starts after our end), and
    /// the position of the next chunk.
    private var snapshotFetch: (id: SnapshotId, position: Int64)?
    private var inflightSnapshotFetch: (id: SnapshotId, position: Int64, to: Int32, sentMs: Int64, fetchId: UInt64)?
    private var nextFetchMs: Int64 = 0
    private var rng: SplitMix64
    private var ready = RaftReady()

    /// Restores a node from its persisted election state.
    public init(config: RaftConfig, log: RaftLog, state: ElectionState, seed: UInt64, nowMs: Int64) {
        self.config = config
        self.log = log
        self.election = state
        self.rng = SplitMix64(seed: seed ^ UInt64(UInt32(bitPattern: config.nodeId)))
        if state.leaderId == config.nodeId {
            // A leader restarting cannot know its followers' progress: it resigns its epoch.
            role = .resigned
            electionDeadline = nowMs + randomElectionTimeout()
        } else if state.leaderId >= 0 {
            role = .follower(state.leaderId)
            fetchDeadline = nowMs + config.fetchTimeoutMs
        } else if state.votedId >= 0 {
            role = .voted(state.votedId)
            electionDeadline = nowMs + randomElectionTimeout()
        } else {
            role = .unattached
            electionDeadline = nowMs + randomElectionTimeout()
        }
    }

    public var epoch: Int32 { election.epoch }
    public var leaderId: Int32 { election.leaderId }
    public var isLeader: Bool { role == .leader }

    // MARK: events

    /// Advances timers.
    public func tick(nowMs: Int64) -> RaftReady {
        switch role {
        case .unattached, .voted:
            if config.isVoter {
                if nowMs >= electionDeadline { becomeProspective(nowMs) }
            } else {
                discoverLeader(nowMs)
            }
        case let .follower(leader):
            if nowMs >= fetchDeadline {
                if config.isVoter { becomeProspective(nowMs) } else { becomeUnattached(epoch, nowMs) }
            } else {
                maybeSendFetch(to: leader, nowMs)
            }
        case .prospective, .candidate:
            if nowMs >= electionDeadline {
                if role == .prospective, returnToKnownLeader(nowMs) { break }
                becomeProspective(nowMs)
            } else if nowMs - lastVoteSentMs >= config.requestTimeoutMs {
                sendVoteRequests(preVote: role == .prospective, nowMs)
            } else {
                retryFailedVoteRequests(nowMs)
            }
        case .leader:
            checkQuorum(nowMs)
            if role == .leader {
                expireParkedFetches(nowMs)
                resendBeginQuorumEpoch(nowMs)
            }
        case .resigned:
            if nowMs >= electionDeadline && config.isVoter { becomeProspective(nowMs) }
        }
        return takeReady()
    }

    /// Handles a message from another node.
    public func receive(_ env: RaftEnvelope, nowMs: Int64) -> RaftReady {
        switch env.message {
        case let .vote(r): handleVoteRequest(r, from: env.from, nowMs)
        case let .voteResponse(r): handleVoteResponse(r, from: env.from, nowMs)
        case let .beginQuorumEpoch(r): handleBeginQuorumEpoch(r, from: env.from, nowMs)
        case let .endQuorumEpoch(r): handleEndQuorumEpoch(r, from: env.from, nowMs)
        case let .beginQuorumEpochResponse(r), let .endQuorumEpochResponse(r):
            _ = maybeTransition(epoch: r.leaderEpoch, leader: r.leaderId, nowMs)
        case let .fetch(r): handleFetchRequest(r, from: env.from, nowMs)
        case let .fetchResponse(r): handleFetchResponse(r, from: env.from, nowMs)
        case let .fetchSnapshot(r): handleFetchSnapshotRequest(r, from: env.from, nowMs)
        case let .fetchSnapshotResponse(r): handleFetchSnapshotResponse(r, from: env.from, nowMs)
        }
        return takeReady()
    }

    /// A request could not be delivered (connection refused or reset): retry after
    /// `controller.quorum.retry.backoff.ms` instead of waiting for the request timeout.
    public func requestFailed(_ env: RaftEnvelope, nowMs: Int64) -> RaftReady {
        switch env.message {
        case .vote:
            if role == .prospective || role == .candidate { voteRetryAt[env.to] = nowMs + config.retryBackoffMs }
        case .fetch:
            if inflightFetch?.to == env.to {
                inflightFetch = nil
                nextFetchMs = nowMs + config.retryBackoffMs
                leaderUnreachable(env.to, nowMs)
            }
        case .fetchSnapshot:
            if inflightSnapshotFetch?.to == env.to {
                inflightSnapshotFetch = nil
                nextFetchMs = nowMs + config.retryBackoffMs
                leaderUnreachable(env.to, nowMs)
            }
        case .beginQuorumEpoch:
            if role == .leader { lastBeginSentMs[env.to] = nowMs - config.requestTimeoutMs + config.retryBackoffMs }
        default:
            break
        }
        return takeReady()
    }

    /// The connection to `peer` closed (its process died or the network reset it): requests
    /// in flight to it have failed.
    public func peerDisconnected(_ peer: Int32, nowMs: Int64) -> RaftReady {
        if let f = inflightFetch, f.to == peer {
            inflightFetch = nil
            nextFetchMs = nowMs + config.retryBackoffMs
            leaderUnreachable(peer, nowMs)
        }
        if let f = inflightSnapshotFetch, f.to == peer {
            inflightSnapshotFetch = nil
            nextFetchMs = nowMs + config.retryBackoffMs
            leaderUnreachable(peer, nowMs)
        }
        if role == .prospective || role == .candidate, !grants.contains(peer), !rejections.contains(peer) {
            voteRetryAt[peer] = nowMs + config.retryBackoffMs
        }
        return takeReady()
    }

    /// The leader's process cannot be reached (connection refused or reset) — far stronger
    /// evidence than a quiet fetch timeout. A voter stops counting it as alive and stands soon.
    /// Survivors stand in turn (by id, a quarter of `election.backoff.max.ms` apart, with
    /// jitter), so the first candidate's Vote usually reaches the others before they stand
    /// and votes rarely split. Pre-vote keeps this safe: voters that still hear from the
    /// leader refuse.
    private func leaderUnreachable(_ peer: Int32, _ nowMs: Int64) {
        guard case let .follower(l) = role, l == peer, config.isVoter else { return }
        lastLeaderContactMs = -1
        let step = max(4, min(config.electionBackoffMaxMs, config.electionTimeoutMs) / 4)
        let rank = Int64(config.voters.filter { $0 != peer }.firstIndex(of: config.nodeId) ?? 0)
        let delay = rank * step + Int64(rng.next() % UInt64(step / 4))
        fetchDeadline = min(fetchDeadline, nowMs + delay)
    }

    /// The shell made the last `RaftReady`'s state and log durable: the leader may now count
    /// its own log towards the high watermark.
    public func persisted(nowMs: Int64) -> RaftReady {
        if role == .leader { updateHighWatermark(nowMs) }
        return takeReady()
    }

    /// Appends records as the leader; they commit once a majority has them.
    public func propose(_ records: [ByteBuffer], nowMs: Int64) throws -> (offsets: ClosedRange<Int64>, ready: RaftReady) {
        guard role == .leader else { throw NotLeaderError(epoch: epoch, leaderId: leaderId) }
        let range = try log.appendAsLeader(records, epoch: epoch, nowMs: nowMs)
        ready.flushLog = true
        completeParkedFetches(nowMs)
        return (range, takeReady())
    }

    private func takeReady() -> RaftReady {
        let r = ready
        ready = RaftReady()
        return r
    }

    // MARK: transitions

    private func randomElectionTimeout() -> Int64 {
        config.electionTimeoutMs + Int64(rng.next() % UInt64(max(1, config.electionTimeoutMs)))
    }

    private func persist(_ s: ElectionState) {
        let changedLeader = s.leaderId != election.leaderId || s.epoch != election.epoch
        election = s
        ready.persistState = s
        if changedLeader { ready.leaderChanged = (s.epoch, s.leaderId) }
    }

    private func clearLeaderState() {
        replicas = [:]
        observers = [:]
        parkedFetches = [:]
        lastBeginSentMs = [:]
        epochStartOffset = -1
    }

    /// Moves to a higher epoch, or learns this epoch's leader. Returns true if it did.
    @discardableResult
    private func maybeTransition(epoch e: Int32, leader l: Int32, _ nowMs: Int64) -> Bool {
        if e > epoch {
            if l >= 0 && l != config.nodeId { becomeFollower(e, l, nowMs) } else { becomeUnattached(e, nowMs) }
            return true
        }
        if e == epoch && l >= 0 && l != config.nodeId {
            switch role {
            case .follower(let cur) where cur == l: return false
            case .leader, .resigned: return false  // impossible for a correct peer: one leader per epoch
            default:
                becomeFollower(e, l, nowMs)
                return true
            }
        }
        return false
    }

    private func becomeUnattached(_ e: Int32, _ nowMs: Int64) {
        clearLeaderState()
        persist(ElectionState(epoch: e))
        role = .unattached
        electionDeadline = nowMs + randomElectionTimeout()
        inflightFetch = nil
        snapshotFetch = nil
        inflightSnapshotFetch = nil
    }

    private func becomeFollower(_ e: Int32, _ l: Int32, _ nowMs: Int64) {
        clearLeaderState()
        let voted = e == epoch ? election.votedId : -1
        let next = ElectionState(epoch: e, votedId: voted, leaderId: l)
        if next != election { persist(next) }  // back to a known leader: nothing to write
        role = .follower(l)
        fetchDeadline = nowMs + config.fetchTimeoutMs
        lastLeaderContactMs = -1
        inflightFetch = nil
        snapshotFetch = nil
        inflightSnapshotFetch = nil
        nextFetchMs = nowMs
        maybeSendFetch(to: l, nowMs)
    }

    private func becomeProspective(_ nowMs: Int64) {
        clearLeaderState()
        role = .prospective
        grants = [config.nodeId]
        rejections = []
        voteRetryAt = [:]
        inflightFetch = nil
        snapshotFetch = nil
        inflightSnapshotFetch = nil
        electionDeadline = nowMs + randomElectionTimeout()
        if grants.count >= config.majority {
            becomeCandidate(nowMs)
            return
        }
        sendVoteRequests(preVote: true, nowMs)
    }

    /// A prospective voter that followed this epoch's leader before it stood goes back to
    /// following it when its pre-vote election is lost or times out (KIP-996): the other
    /// voters still hear from that leader, so it is most likely alive and only this node was
    /// cut off. It does not count as contact: the node still grants others' pre-votes until
    /// a fetch succeeds, so a leader that really died is replaced as fast as before.
    private func returnToKnownLeader(_ nowMs: Int64) -> Bool {
        let l = election.leaderId
        guard role == .prospective, l >= 0, l != config.nodeId else { return false }
        becomeFollower(epoch, l, nowMs)
        return true
    }

    private func becomeCandidate(_ nowMs: Int64) {
        persist(ElectionState(epoch: epoch + 1, votedId: config.nodeId))
        role = .candidate
        grants = [config.nodeId]
        rejections = []
        voteRetryAt = [:]
        electionDeadline = nowMs + randomElectionTimeout()
        if grants.count >= config.majority {
            becomeLeader(nowMs)
            return
        }
        sendVoteRequests(preVote: false, nowMs)
    }

    private func becomeLeader(_ nowMs: Int64) {
        persist(ElectionState(epoch: epoch, votedId: election.votedId, leaderId: config.nodeId))
        role = .leader
        becameLeaderMs = nowMs
        epochStartOffset = log.endOffset
        do {
            _ = try log.appendLeaderChange(epoch: epoch, leaderId: config.nodeId, voters: config.voters, nowMs: nowMs)
        } catch {
            // The log could not take the epoch's first record: step down rather than lead blind.
            becomeResigned(nowMs)
            return
        }
        ready.flushLog = true
        replicas = [:]
        for v in config.voters where v != config.nodeId {
            replicas[v] = ReplicaProgress()
            send(to: v, .beginQuorumEpoch(EpochData(leaderId: config.nodeId, leaderEpoch: epoch)))
            lastBeginSentMs[v] = nowMs
        }
    }

    private func becomeResigned(_ nowMs: Int64) {
        let successors = replicas.sorted { ($0.value.endOffset, $1.key) > ($1.value.endOffset, $0.key) }.map(\.key)
        for v in config.voters where v != config.nodeId {
            send(to: v, .endQuorumEpoch(EndQuorumEpochData(leaderId: config.nodeId, leaderEpoch: epoch, preferredSuccessors: successors)))
        }
        clearLeaderState()
        role = .resigned
        electionDeadline = nowMs + randomElectionTimeout()
    }

    // MARK: elections

    private func send(to: Int32, _ m: RaftMessage) {
        ready.sendAfterPersist.append(RaftEnvelope(from: config.nodeId, to: to, message: m))
    }

    private func sendVoteRequests(preVote: Bool, _ nowMs: Int64) {
        lastVoteSentMs = nowMs
        let req = VoteRequestData(candidateEpoch: preVote ? epoch + 1 : epoch, candidateId: config.nodeId,
                                  lastOffsetEpoch: log.lastFetchedEpoch, lastOffset: log.endOffset, preVote: preVote)
        for v in config.voters where v != config.nodeId && !grants.contains(v) && !rejections.contains(v) {
            send(to: v, .vote(req))
        }
    }

    private func retryFailedVoteRequests(_ nowMs: Int64) {
        let due = voteRetryAt.filter { $0.value <= nowMs }.map(\.key).sorted()
        guard !due.isEmpty else { return }
        let preVote = role == .prospective
        let req = VoteRequestData(candidateEpoch: preVote ? epoch + 1 : epoch, candidateId: config.nodeId,
                                  lastOffsetEpoch: log.lastFetchedEpoch, lastOffset: log.endOffset, preVote: preVote)
        for v in due {
            voteRetryAt[v] = nil
            if !grants.contains(v) && !rejections.contains(v) { send(to: v, .vote(req)) }
        }
    }

    /// Whether a candidate's log is at least as up to date as ours.
    private func isUpToDate(lastEpoch: Int32, lastOffset: Int64) -> Bool {
        let mine = log.lastFetchedEpoch
        return lastEpoch > mine || (lastEpoch == mine && lastOffset >= log.endOffset)
    }

    func handleVoteRequest(_ r: VoteRequestData, from: Int32, _ nowMs: Int64) {
        func respond(_ granted: Bool) {
            send(to: from, .voteResponse(VoteResponseData(leaderEpoch: epoch, leaderId: leaderId, voteGranted: granted,
                                                          requestEpoch: r.candidateEpoch, preVote: r.preVote)))
        }
        guard config.isVoter, config.voters.contains(r.candidateId) else {
            send(to: from, .voteResponse(VoteResponseData(errorCode: 94, leaderEpoch: epoch, leaderId: leaderId,
                                                          voteGranted: false, requestEpoch: r.candidateEpoch, preVote: r.preVote)))
            return
        }
        if r.candidateEpoch < epoch { return respond(false) }
        if r.preVote {
            // KIP-996: no state changes; refuse while a leader is known to be alive.
            let leaderAlive: Bool
            switch role {
            case .leader: leaderAlive = true
            case .follower: leaderAlive = lastLeaderContactMs >= 0 && nowMs - lastLeaderContactMs < config.fetchTimeoutMs
            default: leaderAlive = false
            }
            return respond(!leaderAlive && isUpToDate(lastEpoch: r.lastOffsetEpoch, lastOffset: r.lastOffset))
        }
        if r.candidateEpoch > epoch {
            becomeUnattached(r.candidateEpoch, nowMs)
        }
        let canVote = (election.votedId < 0 || election.votedId == r.candidateId) && election.leaderId < 0
        if canVote && isUpToDate(lastEpoch: r.lastOffsetEpoch, lastOffset: r.lastOffset) {
            if election.votedId != r.candidateId {
                persist(ElectionState(epoch: epoch, votedId: r.candidateId))
            }
            role = .voted(r.candidateId)
            electionDeadline = nowMs + randomElectionTimeout()
            respond(true)
        } else {
            respond(false)
        }
    }

    func handleVoteResponse(_ r: VoteResponseData, from: Int32, _ nowMs: Int64) {
        // A higher epoch moves us at once. A voter's hint about this epoch's leader is not
        // proof the leader lives (it may be the one that just died): a node that already
        // knew that leader counts it as a rejection and goes back to it only when the
        // election is lost or times out.
        if r.leaderEpoch > epoch {
            maybeTransition(epoch: r.leaderEpoch, leader: r.leaderId, nowMs)
            return
        }
        switch role {
        case .prospective where r.preVote && r.requestEpoch == epoch + 1:
            if r.leaderEpoch == epoch, r.leaderId >= 0, r.leaderId != config.nodeId, election.leaderId < 0 {
                // We knew no leader of this epoch and a voter names one: follow it (KIP-996).
                becomeFollower(epoch, r.leaderId, nowMs)
                return
            }
            if r.voteGranted { grants.insert(from) } else { rejections.insert(from) }
            if grants.count >= config.majority {
                becomeCandidate(nowMs)
            } else if config.voters.count - rejections.count < config.majority {
                // Lost: a majority still hears from the leader. Go back to following it
                // (if we knew one) instead of asking again and again while its log moves on.
                _ = returnToKnownLeader(nowMs)
            }
        case .candidate where !r.preVote && r.requestEpoch == epoch:
            if r.voteGranted { grants.insert(from) } else { rejections.insert(from) }
            if grants.count >= config.majority { becomeLeader(nowMs) }
        default:
            break
        }
    }

    func handleBeginQuorumEpoch(_ r: EpochData, from: Int32, _ nowMs: Int64) {
        if r.leaderEpoch >= epoch {
            maybeTransition(epoch: r.leaderEpoch, leader: r.leaderId, nowMs)
            if case let .follower(l) = role, l == r.leaderId, r.leaderEpoch == epoch { lastLeaderContactMs = nowMs }
        }
        send(to: from, .beginQuorumEpochResponse(EpochResponseData(
            errorCode: r.leaderEpoch < epoch ? 74 : 0, leaderId: leaderId, leaderEpoch: epoch)))
    }

    func handleEndQuorumEpoch(_ r: EndQuorumEpochData, from: Int32, _ nowMs: Int64) {
        if case let .follower(l) = role, r.leaderEpoch == epoch, l == r.leaderId, config.isVoter {
            // The leader is leaving: stand soon, the most caught-up successors first.
            let rank = r.preferredSuccessors.firstIndex(of: config.nodeId) ?? r.preferredSuccessors.count
            let backoff = Int64(rank) * max(config.retryBackoffMs, config.electionBackoffMaxMs / Int64(max(1, config.voters.count)))
            fetchDeadline = min(fetchDeadline, nowMs + backoff + Int64(rng.next() % UInt64(max(1, config.retryBackoffMs))))
            lastLeaderContactMs = -1
        } else {
            maybeTransition(epoch: r.leaderEpoch, leader: -1, nowMs)
        }
        send(to: from, .endQuorumEpochResponse(EpochResponseData(leaderId: leaderId, leaderEpoch: epoch)))
    }

    // MARK: replication (leader side)

    private func fetchResponse(_ r: FetchRequestData, error: Int16 = 0) -> FetchResponseData {
        var resp = FetchResponseData(errorCode: error, leaderId: leaderId, leaderEpoch: epoch, highWatermark: highWatermark,
                                     logStartOffset: log.startOffset, fetchOffset: r.fetchOffset)
        resp.fetchId = r.fetchId
        return resp
    }

    func handleFetchRequest(_ r: FetchRequestData, from: Int32, _ nowMs: Int64) {
        guard role == .leader else {
            let code: Int16 = r.currentLeaderEpoch > epoch ? 75 : (r.currentLeaderEpoch < epoch ? 74 : 6)
            send(to: from, .fetchResponse(fetchResponse(r, error: code)))
            return
        }
        if r.currentLeaderEpoch < epoch { return send(to: from, .fetchResponse(fetchResponse(r, error: 74))) }
        if r.currentLeaderEpoch > epoch { return send(to: from, .fetchResponse(fetchResponse(r, error: 75))) }
        if let snap = snapshotToFetch(r) {
            // The fetcher needs records we no longer hold: it copies our snapshot first.
            var resp = fetchResponse(r)
            resp.snapshotId = snap
            noteFetch(from: from, endOffset: nil, nowMs)
            send(to: from, .fetchResponse(resp))
            return
        }
        // Divergence: the fetcher's last epoch must end, in our log, at or after its offset.
        if r.fetchOffset > 0 || r.lastFetchedEpoch >= 0 {
            let (e, end) = endOffset(forEpoch: r.lastFetchedEpoch)
            if e != r.lastFetchedEpoch || end < r.fetchOffset {
                var resp = fetchResponse(r)
                resp.divergingEpoch = e
                resp.divergingEndOffset = e < 0 ? log.startOffset : end
                send(to: from, .fetchResponse(resp))
                return
            }
        }
        noteFetch(from: from, endOffset: r.fetchOffset, nowMs)
        updateHighWatermark(nowMs)
        if r.fetchOffset >= log.endOffset && r.maxWaitMs > 0 {
            parkedFetches[from] = (r, nowMs + Int64(r.maxWaitMs))
            return
        }
        parkedFetches[from] = nil
        answerFetch(r, to: from)
    }

    /// Records a replica's fetch (`endOffset` nil: it fetches a snapshot, its log end is
    /// unchanged) for the high watermark, check-quorum and DescribeQuorum.
    private func noteFetch(from: Int32, endOffset: Int64?, _ nowMs: Int64) {
        var progress = (config.voters.contains(from) ? replicas[from] : observers[from]) ?? ReplicaProgress()
        if let e = endOffset {
            progress.endOffset = e
            if e >= log.endOffset { progress.lastCaughtUpMs = nowMs }
        }
        progress.lastFetchMs = nowMs
        if config.voters.contains(from) { replicas[from] = progress } else { observers[from] = progress }
    }

    /// The epoch of the record just before the log start (0 when nothing was deleted).
    private var logStartEpoch: Int32 {
        guard log.startOffset > 0 else { return -1 }
        if let s = log.earliestSnapshotId, s.endOffset == log.startOffset { return s.epoch }
        return log.latestSnapshotId?.epoch ?? -1
    }

    /// KIP-630's check: a fetcher whose position lies before our log start, or whose last
    /// epoch is older than anything our log can vouch for, must load our latest snapshot.
    private func snapshotToFetch(_ r: FetchRequestData) -> SnapshotId? {
        guard log.startOffset > 0, let latest = log.latestSnapshotId else { return nil }
        if r.fetchOffset < log.startOffset { return latest }
        let startEpoch = logStartEpoch
        if r.fetchOffset == log.startOffset && r.lastFetchedEpoch != startEpoch { return latest }
        if r.lastFetchedEpoch < startEpoch { return latest }
        return nil
    }

    /// `RaftLog.endOffset(forEpoch:)` that also knows the epoch at the log start (after the
    /// prefix was deleted, the log may hold no record of it).
    private func endOffset(forEpoch e: Int32) -> (epoch: Int32, endOffset: Int64) {
        let r = log.endOffset(forEpoch: e)
        let startEpoch = logStartEpoch
        if log.startOffset > 0, e >= startEpoch, r.epoch < startEpoch {
            return (startEpoch, log.startOffset)
        }
        return r
    }

    func handleFetchSnapshotRequest(_ r: FetchSnapshotRequestData, from: Int32, _ nowMs: Int64) {
        func fail(_ code: Int16) {
            var resp = FetchSnapshotResponseData(errorCode: code, leaderId: leaderId, leaderEpoch: epoch, snapshotId: r.snapshotId)
            resp.fetchId = r.fetchId
            send(to: from, .fetchSnapshotResponse(resp))
        }
        guard role == .leader else { return fail(r.currentLeaderEpoch > epoch ? 75 : (r.currentLeaderEpoch < epoch ? 74 : 6)) }
        if r.currentLeaderEpoch < epoch { return fail(74) }
        if r.currentLeaderEpoch > epoch { return fail(75) }
        noteFetch(from: from, endOffset: nil, nowMs)
        let chunk: (bytes: ByteBuffer, size: Int64)?
        do {
            chunk = try log.readSnapshot(r.snapshotId, position: r.position, maxBytes: Int(max(1, r.maxBytes)))
        } catch {
            return fail(99)  // POSITION_OUT_OF_RANGE
        }
        guard let chunk else { return fail(98) }  // SNAPSHOT_NOT_FOUND
        if r.position < 0 || r.position > chunk.size { return fail(99) }
        var resp = FetchSnapshotResponseData(leaderId: leaderId, leaderEpoch: epoch, snapshotId: r.snapshotId,
                                             size: chunk.size, position: r.position, bytes: chunk.bytes)
        resp.fetchId = r.fetchId
        send(to: from, .fetchSnapshotResponse(resp))
    }

    private func answerFetch(_ r: FetchRequestData, to: Int32) {
        var resp = fetchResponse(r)
        if r.fetchOffset < log.endOffset {
            resp.records = (try? log.read(from: r.fetchOffset, maxBytes: Int(r.maxBytes))) ?? ByteBuffer()
        }
        send(to: to, .fetchResponse(resp))
    }

    private func completeParkedFetches(_ nowMs: Int64) {
        let parked = parkedFetches
        parkedFetches = [:]
        // Sorted: the core's output must not depend on hash order (one seed, one run).
        for (id, p) in parked.sorted(by: { $0.key < $1.key }) { answerFetch(p.request, to: id) }
    }

    private func expireParkedFetches(_ nowMs: Int64) {
        for (id, p) in parkedFetches.sorted(by: { $0.key < $1.key }) where p.deadline <= nowMs {
            parkedFetches[id] = nil
            answerFetch(p.request, to: id)
        }
    }

    private func resendBeginQuorumEpoch(_ nowMs: Int64) {
        for (v, p) in replicas.sorted(by: { $0.key < $1.key }) where p.lastFetchMs < 0 && nowMs - (lastBeginSentMs[v] ?? 0) >= config.requestTimeoutMs {
            send(to: v, .beginQuorumEpoch(EpochData(leaderId: config.nodeId, leaderEpoch: epoch)))
            lastBeginSentMs[v] = nowMs
        }
    }

    /// HW = the largest offset a majority of voters hold (the leader counts only its flushed
    /// log), once that covers the leader's first record of this epoch. Never moves back.
    private func updateHighWatermark(_ nowMs: Int64) {
        guard role == .leader else { return }
        var offsets: [Int64] = []
        for v in config.voters {
            offsets.append(v == config.nodeId ? log.flushedEndOffset : (replicas[v]?.endOffset ?? -1))
        }
        offsets.sort(by: >)
        let candidate = offsets[config.majority - 1]
        if candidate > epochStartOffset && candidate > highWatermark {
            highWatermark = candidate
            ready.newHighWatermark = candidate
            completeParkedFetches(nowMs)
        }
    }

    /// Check-quorum: resign if a majority has not fetched within 1.5 × the fetch timeout.
    private func checkQuorum(_ nowMs: Int64) {
        let window = config.fetchTimeoutMs * 3 / 2
        guard nowMs - becameLeaderMs >= window else { return }
        let recent = 1 + replicas.values.filter { $0.lastFetchMs >= 0 && nowMs - $0.lastFetchMs < window }.count
        if recent < config.majority { becomeResigned(nowMs) }
    }

    // MARK: replication (follower side)

    private func maybeSendFetch(to leader: Int32, _ nowMs: Int64) {
        if let f = inflightFetch, nowMs - f.sentMs < config.requestTimeoutMs { return }
        if let f = inflightSnapshotFetch, nowMs - f.sentMs < config.requestTimeoutMs { return }
        guard nowMs >= nextFetchMs else { return }
        if let s = snapshotFetch {
            sendFetchSnapshot(to: leader, s.id, position: s.position, nowMs)
        } else {
            sendFetch(to: leader, nowMs)
        }
    }

    private func sendFetchSnapshot(to target: Int32, _ id: SnapshotId, position: Int64, _ nowMs: Int64) {
        inflightFetch = nil
        fetchSeq &+= 1
        inflightSnapshotFetch = (id, position, target, nowMs, fetchSeq)
        send(to: target, .fetchSnapshot(FetchSnapshotRequestData(currentLeaderEpoch: epoch, snapshotId: id, position: position,
                                                                 replicaId: config.nodeId, maxBytes: config.fetchMaxBytes, fetchId: fetchSeq)))
    }

    func handleFetchSnapshotResponse(_ r: FetchSnapshotResponseData, from: Int32, _ nowMs: Int64) {
        if r.errorCode != 0 {
            guard inflightSnapshotFetch?.to == from, inflightSnapshotFetch?.fetchId == r.fetchId else {
                _ = maybeTransition(epoch: r.leaderEpoch, leader: r.leaderId, nowMs)
                return
            }
            inflightSnapshotFetch = nil
            if r.errorCode == 98 || r.errorCode == 99 {
                // The leader no longer has it (a newer snapshot replaced it): ask again.
                snapshotFetch = nil
            }
            if !maybeTransition(epoch: r.leaderEpoch, leader: r.leaderId, nowMs) {
                nextFetchMs = nowMs + config.retryBackoffMs
            }
            return
        }
        if maybeTransition(epoch: r.leaderEpoch, leader: r.leaderId, nowMs) { return }
        guard case let .follower(leader) = role, leader == from, r.leaderEpoch == epoch else { return }
        guard let f = inflightSnapshotFetch, f.to == from, f.id == r.snapshotId, f.position == r.position, f.fetchId == r.fetchId,
              let s = snapshotFetch, s.id == r.snapshotId, s.position == r.position else { return }
        inflightSnapshotFetch = nil
        lastLeaderContactMs = nowMs
        fetchDeadline = nowMs + config.fetchTimeoutMs
        do {
            let next = r.position + Int64(r.bytes.readableBytes)
            try log.writeFetchedSnapshot(r.snapshotId, position: r.position, bytes: r.bytes)
            if next < r.size {
                guard r.bytes.readableBytes > 0 else { throw SnapshotFetchError.noProgress }
                snapshotFetch = (r.snapshotId, next)
                sendFetchSnapshot(to: leader, r.snapshotId, position: next, nowMs)
                return
            }
            try log.installFetchedSnapshot(r.snapshotId)
        } catch {
            // Start the copy again after a backoff (the leader may have a newer one by then).
            snapshotFetch = nil
            nextFetchMs = nowMs + config.retryBackoffMs
            return
        }
        snapshotFetch = nil
        ready.snapshotInstalled = r.snapshotId
        // A snapshot holds committed state only.
        if r.snapshotId.endOffset > highWatermark {
            highWatermark = r.snapshotId.endOffset
            ready.newHighWatermark = highWatermark
        }
        sendFetch(to: leader, nowMs)
    }

    private func sendFetch(to target: Int32, _ nowMs: Int64) {
        fetchSeq &+= 1
        let req = FetchRequestData(currentLeaderEpoch: epoch, fetchOffset: log.endOffset, lastFetchedEpoch: log.lastFetchedEpoch,
                                   replicaId: config.nodeId, maxWaitMs: config.fetchMaxWaitMs, maxBytes: config.fetchMaxBytes,
                                   fetchId: fetchSeq)
        inflightSnapshotFetch = nil
        inflightFetch = (req.fetchOffset, target, nowMs, fetchSeq)
        send(to: target, .fetch(req))
    }

    /// An observer (or a voter without a leader) asks a random voter; the answer names the leader.
    private func discoverLeader(_ nowMs: Int64) {
        if let f = inflightFetch, nowMs - f.sentMs < config.requestTimeoutMs { return }
        guard nowMs >= nextFetchMs, !config.voters.isEmpty else { return }
        let target = config.voters[Int(rng.next() % UInt64(config.voters.count))]
        if target == config.nodeId { return }
        sendFetch(to: target, nowMs)
    }

    func handleFetchResponse(_ r: FetchResponseData, from: Int32, _ nowMs: Int64) {
        if r.errorCode != 0 {
            if inflightFetch?.to == from && inflightFetch?.id == r.fetchId { inflightFetch = nil }
            if !maybeTransition(epoch: r.leaderEpoch, leader: r.leaderId, nowMs) {
                nextFetchMs = nowMs + config.retryBackoffMs
            }
            return
        }
        if maybeTransition(epoch: r.leaderEpoch, leader: r.leaderId, nowMs) {
            // Learned of a new leader from its answer; fetch afresh from it.
            return
        }
        guard case let .follower(leader) = role, leader == from, r.leaderEpoch == epoch else { return }
        guard let f = inflightFetch, f.to == from, f.id == r.fetchId, f.offset == r.fetchOffset, r.fetchOffset == log.endOffset else { return }
        inflightFetch = nil
        lastLeaderContactMs = nowMs
        fetchDeadline = nowMs + config.fetchTimeoutMs
        if let snap = r.snapshotId {
            // Our log ends before the leader's starts: copy its snapshot from the beginning.
            snapshotFetch = (snap, 0)
            sendFetchSnapshot(to: leader, snap, position: 0, nowMs)
            return
        }
        do {
            if r.divergingEpoch >= 0 || r.divergingEndOffset >= 0 {
                let local = endOffset(forEpoch: r.divergingEpoch)
                var to = min(r.divergingEndOffset, local.epoch < 0 ? log.startOffset : local.endOffset)
                to = max(to, log.startOffset)
                if to < log.endOffset {
                    try log.truncate(to: to)
                    ready.flushLog = true
                }
                // The prefix left is not yet known to match the leader's (when our epoch
                // there is older than the leader's, the next fetch may truncate again), so
                // the high watermark must not move on this answer.
                sendFetch(to: leader, nowMs)
                return
            } else if r.records.readableBytes > 0 {
                try log.appendAsFollower(r.records)
                ready.flushLog = true
            }
        } catch {
            // A bad batch from the leader: drop it and fetch again after a backoff.
            nextFetchMs = nowMs + config.retryBackoffMs
            return
        }
        let hw = min(r.highWatermark, log.endOffset)
        if hw > highWatermark {
            highWatermark = hw
            ready.newHighWatermark = hw
        }
        sendFetch(to: leader, nowMs)
    }

    // MARK: introspection (DescribeQuorum)

    /// The leader's view of every voter and observer.
    public func quorumInfo() -> (voters: [Int32: ReplicaProgress], observers: [Int32: ReplicaProgress]) {
        var v = replicas
        if role == .leader {
            v[config.nodeId] = ReplicaProgress(endOffset: log.endOffset, lastFetchMs: -1, lastCaughtUpMs: -1)
        }
        return (v, observers)
    }
}

enum SnapshotFetchError: Error {
    case noProgress
}

/// A small seedable generator (SplitMix64): the only randomness the core uses.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
