import NIOCore

/// The KRaft messages as the core sees them: the fields of Vote, BeginQuorumEpoch,
/// EndQuorumEpoch and Fetch that the protocol logic needs. `RaftWire` maps them to and from
/// the generated Kafka messages (VoteRequest v2, FetchRequest v17, ...) for the network.
public enum RaftMessage: Sendable, Equatable {
    case vote(VoteRequestData)
    case voteResponse(VoteResponseData)
    case beginQuorumEpoch(EpochData)
    case beginQuorumEpochResponse(EpochResponseData)
    case endQuorumEpoch(EndQuorumEpochData)
    case endQuorumEpochResponse(EpochResponseData)
    case fetch(FetchRequestData)
    case fetchResponse(FetchResponseData)
    case fetchSnapshot(FetchSnapshotRequestData)
    case fetchSnapshotResponse(FetchSnapshotResponseData)

    /// Whether this is a response (the shell pairs responses with requests by correlation id).
    public var isResponse: Bool {
        switch self {
        case .voteResponse, .beginQuorumEpochResponse, .endQuorumEpochResponse, .fetchResponse, .fetchSnapshotResponse: return true
        default: return false
        }
    }
}

/// A message with its sender and destination.
public struct RaftEnvelope: Sendable, Equatable {
    public var from: Int32
    public var to: Int32
    public var message: RaftMessage

    public init(from: Int32, to: Int32, message: RaftMessage) {
        self.from = from
        self.to = to
        self.message = message
    }
}

/// Vote (KIP-595), with KIP-996's pre-vote flag.
public struct VoteRequestData: Sendable, Equatable {
    /// The epoch the candidate stands for (its epoch + 1 for a pre-vote).
    public var candidateEpoch: Int32
    public var candidateId: Int32
    public var lastOffsetEpoch: Int32
    /// The candidate's log end offset.
    public var lastOffset: Int64
    public var preVote: Bool

    public init(candidateEpoch: Int32, candidateId: Int32, lastOffsetEpoch: Int32, lastOffset: Int64, preVote: Bool) {
        self.candidateEpoch = candidateEpoch
        self.candidateId = candidateId
        self.lastOffsetEpoch = lastOffsetEpoch
        self.lastOffset = lastOffset
        self.preVote = preVote
    }
}

public struct VoteResponseData: Sendable, Equatable {
    public var errorCode: Int16 = 0
    /// The responder's epoch and known leader (-1 if none).
    public var leaderEpoch: Int32
    public var leaderId: Int32
    public var voteGranted: Bool
    /// Echo of the request's epoch and kind, so a late response to an old election is ignored.
    public var requestEpoch: Int32
    public var preVote: Bool

    public init(errorCode: Int16 = 0, leaderEpoch: Int32, leaderId: Int32, voteGranted: Bool, requestEpoch: Int32, preVote: Bool) {
        self.errorCode = errorCode
        self.leaderEpoch = leaderEpoch
        self.leaderId = leaderId
        self.voteGranted = voteGranted
        self.requestEpoch = requestEpoch
        self.preVote = preVote
    }
}

/// BeginQuorumEpoch: the new leader announces itself.
public struct EpochData: Sendable, Equatable {
    public var leaderId: Int32
    public var leaderEpoch: Int32

    public init(leaderId: Int32, leaderEpoch: Int32) {
        self.leaderId = leaderId
        self.leaderEpoch = leaderEpoch
    }
}

public struct EpochResponseData: Sendable, Equatable {
    public var errorCode: Int16 = 0
    public var leaderId: Int32
    public var leaderEpoch: Int32

    public init(errorCode: Int16 = 0, leaderId: Int32, leaderEpoch: Int32) {
        self.errorCode = errorCode
        self.leaderId = leaderId
        self.leaderEpoch = leaderEpoch
    }
}

/// EndQuorumEpoch: a resigning leader asks its preferred successors to stand first.
public struct EndQuorumEpochData: Sendable, Equatable {
    public var leaderId: Int32
    public var leaderEpoch: Int32
    public var preferredSuccessors: [Int32]

    public init(leaderId: Int32, leaderEpoch: Int32, preferredSuccessors: [Int32]) {
        self.leaderId = leaderId
        self.leaderEpoch = leaderEpoch
        self.preferredSuccessors = preferredSuccessors
    }
}

/// A replica's Fetch of the metadata log (pull replication).
public struct FetchRequestData: Sendable, Equatable {
    /// The leader epoch the fetcher believes in.
    public var currentLeaderEpoch: Int32
    public var fetchOffset: Int64
    /// The epoch of the fetcher's last entry (-1 for an empty log): the divergence check.
    public var lastFetchedEpoch: Int32
    public var replicaId: Int32
    public var maxWaitMs: Int32
    public var maxBytes: Int32
    /// Not on the wire: which of the fetcher's requests this is (the shell pairs a response
    /// with its request by correlation id and restores it), so a late or duplicated answer to
    /// an earlier fetch from the same offset is never taken for the current one's.
    public var fetchId: UInt64 = 0

    public init(currentLeaderEpoch: Int32, fetchOffset: Int64, lastFetchedEpoch: Int32, replicaId: Int32, maxWaitMs: Int32, maxBytes: Int32,
                fetchId: UInt64 = 0) {
        self.currentLeaderEpoch = currentLeaderEpoch
        self.fetchOffset = fetchOffset
        self.lastFetchedEpoch = lastFetchedEpoch
        self.replicaId = replicaId
        self.maxWaitMs = maxWaitMs
        self.maxBytes = maxBytes
        self.fetchId = fetchId
    }
}

public struct FetchResponseData: Sendable, Equatable {
    public var errorCode: Int16 = 0
    public var leaderId: Int32
    public var leaderEpoch: Int32
    public var highWatermark: Int64
    public var logStartOffset: Int64
    /// Set when the fetcher's log diverges: truncate to the end of this epoch and retry.
    public var divergingEpoch: Int32 = -1
    public var divergingEndOffset: Int64 = -1
    /// Set when the fetch offset lies before the leader's log start: fetch this snapshot.
    public var snapshotId: SnapshotId? = nil
    /// Record batches from `fetchOffset` (empty if none).
    public var records: ByteBuffer = ByteBuffer()
    /// Not on the wire: the request's fetch offset, restored by the shell from its
    /// correlation id so a stale response cannot be applied at the wrong position.
    public var fetchOffset: Int64
    /// Not on the wire: the request's `fetchId`, restored the same way.
    public var fetchId: UInt64 = 0

    public init(errorCode: Int16 = 0, leaderId: Int32, leaderEpoch: Int32, highWatermark: Int64, logStartOffset: Int64, divergingEpoch: Int32 = -1, divergingEndOffset: Int64 = -1, records: ByteBuffer = ByteBuffer(), fetchOffset: Int64) {
        self.errorCode = errorCode
        self.leaderId = leaderId
        self.leaderEpoch = leaderEpoch
        self.highWatermark = highWatermark
        self.logStartOffset = logStartOffset
        self.divergingEpoch = divergingEpoch
        self.divergingEndOffset = divergingEndOffset
        self.records = records
        self.fetchOffset = fetchOffset
    }
}

/// FetchSnapshot: a replica whose fetch offset lies before the leader's log start copies
/// the leader's snapshot in chunks.
public struct FetchSnapshotRequestData: Sendable, Equatable {
    public var currentLeaderEpoch: Int32
    public var snapshotId: SnapshotId
    public var position: Int64
    public var replicaId: Int32
    public var maxBytes: Int32
    /// Not on the wire (see `FetchRequestData.fetchId`).
    public var fetchId: UInt64 = 0

    public init(currentLeaderEpoch: Int32, snapshotId: SnapshotId, position: Int64, replicaId: Int32, maxBytes: Int32, fetchId: UInt64 = 0) {
        self.currentLeaderEpoch = currentLeaderEpoch
        self.snapshotId = snapshotId
        self.position = position
        self.replicaId = replicaId
        self.maxBytes = maxBytes
        self.fetchId = fetchId
    }
}

public struct FetchSnapshotResponseData: Sendable, Equatable {
    public var errorCode: Int16 = 0
    public var leaderId: Int32
    public var leaderEpoch: Int32
    public var snapshotId: SnapshotId
    /// The snapshot's total size in bytes.
    public var size: Int64
    /// Where `bytes` start in the snapshot.
    public var position: Int64
    public var bytes: ByteBuffer
    /// Not on the wire (see `FetchRequestData.fetchId`).
    public var fetchId: UInt64 = 0

    public init(errorCode: Int16 = 0, leaderId: Int32, leaderEpoch: Int32, snapshotId: SnapshotId, size: Int64 = 0, position: Int64 = 0,
                bytes: ByteBuffer = ByteBuffer()) {
        self.errorCode = errorCode
        self.leaderId = leaderId
        self.leaderEpoch = leaderEpoch
        self.snapshotId = snapshotId
        self.size = size
        self.position = position
        self.bytes = bytes
    }
}
