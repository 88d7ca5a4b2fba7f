/// Quorum settings, with Kafka's keys and defaults.
public struct RaftConfig: Sendable, Equatable {
    public var nodeId: Int32
    /// `controller.quorum.voters` ids (static voter set). An observer is not among them.
    public var voters: [Int32]
    /// `controller.quorum.election.timeout.ms` (1000): randomised in [t, 2t).
    public var electionTimeoutMs: Int64 = 1000
    /// `controller.quorum.fetch.timeout.ms` (2000): a follower that has not heard from the
    /// leader for this long starts an election; a leader resigns after 1.5× without a majority.
    public var fetchTimeoutMs: Int64 = 2000
    /// `controller.quorum.election.backoff.max.ms` (1000).
    public var electionBackoffMaxMs: Int64 = 1000
    /// `controller.quorum.request.timeout.ms` (2000).
    public var requestTimeoutMs: Int64 = 2000
    /// `controller.quorum.retry.backoff.ms` (20).
    public var retryBackoffMs: Int64 = 20
    /// `controller.quorum.append.linger.ms` (25).
    public var appendLingerMs: Int64 = 25
    /// Fetch long-poll wait a follower asks for (Kafka uses the fetch timeout / 2 at most).
    public var fetchMaxWaitMs: Int32 = 500
    /// Bytes per Fetch response.
    public var fetchMaxBytes: Int32 = 8 * 1024 * 1024

    public init(nodeId: Int32, voters: [Int32]) {
        self.nodeId = nodeId
        self.voters = voters.sorted()
    }

    public var isVoter: Bool { voters.contains(nodeId) }
    public var majority: Int { voters.count / 2 + 1 }
}

/// The election state persisted in `quorum-state` (Kafka's `QuorumStateData`) before any
/// message that depends on it is sent.
public struct ElectionState: Sendable, Equatable, CustomStringConvertible {
    public var epoch: Int32
    /// The node this node voted for in `epoch`, or -1.
    public var votedId: Int32
    /// The leader of `epoch` if known, or -1.
    public var leaderId: Int32

    public init(epoch: Int32, votedId: Int32 = -1, leaderId: Int32 = -1) {
        self.epoch = epoch
        self.votedId = votedId
        self.leaderId = leaderId
    }

    public static let initial = ElectionState(epoch: 0)

    public var description: String { "epoch \(epoch) voted \(votedId) leader \(leaderId)" }
}
