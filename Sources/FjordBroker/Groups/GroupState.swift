import FjordProtocol
import NIOCore

/// The classic group protocol's states (Kafka's GroupState).
public enum GroupPhase: String, Sendable {
    case empty = "Empty"
    case preparingRebalance = "PreparingRebalance"
    case completingRebalance = "CompletingRebalance"
    case stable = "Stable"
    case dead = "Dead"
}

/// One member of a classic group.
final class GroupMember {
    let memberId: String
    var groupInstanceId: String?
    var clientId: String
    var clientHost: String
    var sessionTimeoutMs: Int32
    var rebalanceTimeoutMs: Int32
    var protocolType: String
    /// (name, metadata) in the member's order of preference.
    var protocols: [(name: String, metadata: ByteBuffer)]
    var assignment = ByteBuffer()
    /// The partitions the member was assigned in the previous generation (consumer groups),
    /// while the next generation's assignment is being computed (see `ownsPrevious`).
    var previousPartitions: Set<TopicPartitionKey> = []
    var lastHeartbeatMs: Int64
    /// A JoinGroup waiting for the rebalance to complete.
    var awaitingJoin: ((JoinGroupResponse) -> Void)?
    var joinVersion: Int16 = 0
    /// A SyncGroup waiting for the leader's assignment.
    var awaitingSync: ((SyncGroupResponse) -> Void)?

    init(memberId: String, groupInstanceId: String?, clientId: String, clientHost: String, sessionTimeoutMs: Int32,
         rebalanceTimeoutMs: Int32, protocolType: String, protocols: [(name: String, metadata: ByteBuffer)], nowMs: Int64) {
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
        self.clientId = clientId
        self.clientHost = clientHost
        self.sessionTimeoutMs = sessionTimeoutMs
        self.rebalanceTimeoutMs = rebalanceTimeoutMs
        self.protocolType = protocolType
        self.protocols = protocols
        self.lastHeartbeatMs = nowMs
    }

    func metadata(for proto: String) -> ByteBuffer {
        protocols.first { $0.name == proto }?.metadata ?? ByteBuffer()
    }

    /// Whether `other` is exactly the member's protocol list (names, metadata, order):
    /// Kafka's `MemberMetadata.matches`, which decides if a rejoin needs a rebalance.
    func matches(_ other: [(name: String, metadata: ByteBuffer)]) -> Bool {
        protocols.count == other.count && zip(protocols, other).allSatisfy { $0.name == $1.name && $0.metadata == $1.metadata }
    }
}

/// A committed offset.
public struct CommittedOffset: Sendable, Equatable {
    public var offset: Int64
    public var leaderEpoch: Int32
    public var metadata: String
    public var commitTimestamp: Int64
    public var expireTimestamp: Int64
}

/// A classic consumer group on its coordinator: members, generation, chosen protocol and
/// committed offsets.
final class ConsumerGroup {
    let groupId: String
    var phase: GroupPhase = .empty
    var generationId: Int32 = 0
    var protocolType: String?
    var protocolName: String?
    var leaderId: String?
    var members: [String: GroupMember] = [:]
    /// Member ids handed out with MEMBER_ID_REQUIRED and not joined yet (KIP-394), with the
    /// time each is dropped if it has not joined by then (its session timeout).
    var pendingMembers: [String: Int64] = [:]
    /// group.instance.id -> the member id that holds it now (KIP-345).
    var staticMembers: [String: String] = [:]
    /// The topics the members of a consumer group subscribe to, read from their metadata at
    /// each new generation; nil when unknown (not a consumer group, unreadable metadata),
    /// which counts as subscribed to everything.
    var subscribedTopics: Set<String>? = nil
    var offsets: [TopicPartitionKey: CommittedOffset] = [:]
    var stateTimestampMs: Int64 = -1
    /// When the current join phase ends at the latest (rebalance timeout / initial delay).
    var joinDeadlineMs: Int64 = 0
    /// The first rebalance of an empty group waits `group.initial.rebalance.delay.ms`,
    /// restarted by each new member, until at most `initialDelayCapMs` (the rebalance timeout).
    var initialDelayUntilMs: Int64 = 0
    var initialDelayCapMs: Int64 = 0

    init(groupId: String) {
        self.groupId = groupId
    }

    var isEmpty: Bool { members.isEmpty }

    /// The protocol every member supports, chosen by the members' votes (each votes for its
    /// most preferred candidate), as Kafka's `selectProtocol`.
    func selectProtocol() -> String? {
        guard let first = members.values.first else { return nil }
        var candidates = Set(first.protocols.map(\.name))
        for m in members.values { candidates.formIntersection(m.protocols.map(\.name)) }
        guard !candidates.isEmpty else { return nil }
        var votes: [String: Int] = [:]
        for m in members.values {
            if let pick = m.protocols.first(where: { candidates.contains($0.name) })?.name { votes[pick, default: 0] += 1 }
        }
        return votes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.first?.key
    }

    func supports(protocolType: String, protocols: [String]) -> Bool {
        if members.isEmpty { return !protocolType.isEmpty && !protocols.isEmpty }
        guard self.protocolType == protocolType else { return false }
        var candidates: Set<String>? = nil
        for m in members.values {
            let s = Set(m.protocols.map(\.name))
            candidates = candidates.map { $0.intersection(s) } ?? s
        }
        return !(candidates ?? []).isDisjoint(with: protocols)
    }

    var rebalanceTimeoutMs: Int64 {
        Int64(members.values.map(\.rebalanceTimeoutMs).max() ?? 0)
    }

    var allMembersJoined: Bool {
        members.values.allSatisfy { $0.awaitingJoin != nil } && pendingMembers.isEmpty
    }

    var isConsumerGroup: Bool { protocolType == "consumer" }

    /// A request names `groupInstanceId` that another member id holds now (Kafka's
    /// `isStaticMemberFenced`): the sender is an old incarnation of a static member.
    func isStaticMemberFenced(_ groupInstanceId: String?, _ memberId: String) -> Bool {
        guard let i = groupInstanceId, let current = staticMembers[i] else { return false }
        return current != memberId
    }

    func isSubscribed(to topic: String) -> Bool {
        subscribedTopics?.contains(topic) ?? true
    }
}

struct TopicPartitionKey: Hashable, Comparable, Sendable {
    var topic: String
    var partition: Int32

    static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
}
