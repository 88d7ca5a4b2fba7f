import FjordMetadata
import FjordProtocol
import FjordWire

/// Computes the `PartitionChangeRecord` that moves one partition to a target ISR and
/// leader-recovery state and elects a leader if the current one is no longer valid — or nil
/// when nothing would change.
///
/// A valid leader is in the target ISR and acceptable (an active broker, as the caller
/// decides). The current leader stays if valid; otherwise the first valid replica in
/// replica order leads. An unclean election picks the first acceptable replica outside the
/// ISR and shrinks the ISR to it, marking the leader as recovering. The ISR is never set
/// empty: if the target is empty the ISR keeps its last member and the leader becomes -1.
struct PartitionChangeBuilder {
    enum Election {
        /// Keep a valid leader; otherwise elect from the ISR.
        case online
        /// Prefer the first replica if it is valid.
        case preferred
        /// Like `online`, then fall back to any acceptable replica (data may be lost).
        case unclean
    }

    let partition: PartitionImage
    let topicId: KafkaUUID
    let partitionId: Int32
    let isAcceptableLeader: (Int32) -> Bool
    var election: Election = .online
    var targetIsr: [Int32]
    var targetLeaderRecoveryState: Int8

    init(partition: PartitionImage, topicId: KafkaUUID, partitionId: Int32, isAcceptableLeader: @escaping (Int32) -> Bool) {
        self.partition = partition
        self.topicId = topicId
        self.partitionId = partitionId
        self.isAcceptableLeader = isAcceptableLeader
        self.targetIsr = partition.isr
        self.targetLeaderRecoveryState = partition.leaderRecoveryState
    }

    private func isValidNewLeader(_ r: Int32) -> Bool {
        targetIsr.contains(r) && isAcceptableLeader(r)
    }

    private func electLeader() -> (leader: Int32, unclean: Bool) {
        let replicas = partition.replicas
        if election == .preferred {
            if let first = replicas.first, isValidNewLeader(first) { return (first, false) }
            if partition.hasLeader, isValidNewLeader(partition.leader) { return (partition.leader, false) }
            if let r = replicas.dropFirst().first(where: isValidNewLeader) { return (r, false) }
            return (PartitionImage.noLeader, false)
        }
        if partition.hasLeader, isValidNewLeader(partition.leader) { return (partition.leader, false) }
        if let r = replicas.first(where: isValidNewLeader) { return (r, false) }
        if election == .unclean, let r = replicas.first(where: isAcceptableLeader) { return (r, true) }
        return (PartitionImage.noLeader, false)
    }

    /// The change record, or nil if the partition would not change.
    func build() -> PartitionChangeRecord? {
        var rec = PartitionChangeRecord()
        rec.topicId = topicId
        rec.partitionId = partitionId
        let (leader, unclean) = electLeader()
        if leader != partition.leader {
            rec.leader = leader
            if unclean {
                rec.isr = [leader]
                if partition.leaderRecoveryState != 1 { rec.leaderRecoveryState = 1 }
            }
        }
        if rec.isr == nil, !targetIsr.isEmpty, targetIsr != partition.isr {
            rec.isr = targetIsr
        }
        if rec.leaderRecoveryState == -1, targetLeaderRecoveryState != partition.leaderRecoveryState {
            rec.leaderRecoveryState = targetLeaderRecoveryState
        }
        let noChange = rec.leader == PartitionImage.noLeaderChange && rec.isr == nil && rec.replicas == nil
            && rec.removingReplicas == nil && rec.addingReplicas == nil && rec.leaderRecoveryState == -1
            && rec.directories == nil
        return noChange ? nil : rec
    }
}
