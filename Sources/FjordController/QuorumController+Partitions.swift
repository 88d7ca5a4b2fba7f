import FjordMetadata
import FjordProtocol
import FjordWire

extension QuorumController {
    /// AlterPartition at request version `version`: a partition leader's ISR (and leader
    /// recovery state) change. Rejected per partition with FENCED_LEADER_EPOCH for a stale
    /// leader epoch, INVALID_REQUEST when the sender does not lead or the ISR is malformed or
    /// lacks the leader, INVALID_UPDATE_VERSION for a stale partition epoch, and
    /// INELIGIBLE_REPLICA (OPERATION_NOT_ATTEMPTED before v2) when the new ISR names a
    /// fenced, shutting-down, unregistered or re-registered broker. The whole request fails
    /// with STALE_BROKER_EPOCH when the sender's epoch is not current.
    public func alterPartition(_ request: AlterPartitionRequest, version: Int16) -> ControllerResult<AlterPartitionResponse> {
        var response = AlterPartitionResponse()
        guard let sender = image.brokers[request.brokerId], sender.epoch == request.brokerEpoch else {
            response.errorCode = ErrorCode.staleBrokerEpoch.rawValue
            return ControllerResult(records: [], response: response)
        }
        var out: [MetadataRecord] = []
        for topicData in request.topics {
            var topicResult = AlterPartitionResponse.TopicData()
            topicResult.topicName = topicData.topicName
            topicResult.topicId = topicData.topicId
            let topic = version >= 2 ? image.topic(id: topicData.topicId) : image.topics[topicData.topicName]
            for pd in topicData.partitions {
                var pr = AlterPartitionResponse.PartitionData()
                pr.partitionIndex = pd.partitionIndex
                guard let t = topic else {
                    pr.errorCode = (version >= 2 ? ErrorCode.unknownTopicId : ErrorCode.unknownTopicOrPartition).rawValue
                    topicResult.partitions.append(pr)
                    continue
                }
                let newIsr: [AlterPartitionRequest.BrokerState] = version >= 3 ? pd.newIsrWithEpochs : pd.newIsr.map {
                    var s = AlterPartitionRequest.BrokerState()
                    s.brokerId = $0
                    s.brokerEpoch = -1
                    return s
                }
                if let error = validateAlterPartition(sender: request.brokerId, partition: t.partitions[pd.partitionIndex],
                                                      data: pd, newIsr: newIsr, version: version) {
                    pr.errorCode = error.rawValue
                    topicResult.partitions.append(pr)
                    continue
                }
                guard var p = t.partitions[pd.partitionIndex] else { continue }
                let image = self.image
                var builder = PartitionChangeBuilder(partition: p, topicId: t.id, partitionId: pd.partitionIndex,
                                                     isAcceptableLeader: { image.isActive(broker: $0) })
                builder.election = uncleanElectionEnabled(topic: t.name) ? .unclean : .online
                builder.targetIsr = newIsr.map(\.brokerId)
                builder.targetLeaderRecoveryState = pd.leaderRecoveryState
                if let rec = builder.build() {
                    emit([.partitionChange(rec)], into: &out)
                    p = p.merging(rec)
                    if rec.leader != PartitionImage.noLeaderChange && rec.leader != request.brokerId {
                        // The change moved leadership away from the sender (it is no longer
                        // an acceptable leader): it must learn the new state from the log.
                        pr.errorCode = (version >= 2 ? ErrorCode.newLeaderElected : ErrorCode.notLeaderOrFollower).rawValue
                        topicResult.partitions.append(pr)
                        continue
                    }
                }
                pr.errorCode = ErrorCode.noError.rawValue
                pr.leaderId = p.leader
                pr.leaderEpoch = p.leaderEpoch
                pr.isr = p.isr
                pr.leaderRecoveryState = p.leaderRecoveryState
                pr.partitionEpoch = p.partitionEpoch
                topicResult.partitions.append(pr)
            }
            response.topics.append(topicResult)
        }
        return ControllerResult(records: out, response: response)
    }

    /// Kafka's per-partition checks of an AlterPartition request, or nil if it may apply.
    private func validateAlterPartition(sender: Int32, partition: PartitionImage?, data: AlterPartitionRequest.PartitionData,
                                        newIsr: [AlterPartitionRequest.BrokerState], version: Int16) -> ErrorCode? {
        guard let p = partition else { return .unknownTopicOrPartition }
        if data.leaderEpoch != p.leaderEpoch { return .fencedLeaderEpoch }
        if sender != p.leader { return .invalidRequest }
        if data.partitionEpoch != p.partitionEpoch { return .invalidUpdateVersion }
        let ids = newIsr.map(\.brokerId)
        if Set(ids).count != ids.count || !ids.allSatisfy(p.replicas.contains) { return .invalidRequest }
        if !ids.contains(p.leader) { return .invalidRequest }
        if data.leaderRecoveryState == 1 && ids.count > 1 { return .invalidRequest }
        if p.leaderRecoveryState == 0 && data.leaderRecoveryState == 1 { return .invalidRequest }
        if data.leaderRecoveryState != 0 && data.leaderRecoveryState != 1 { return .invalidRequest }
        for s in newIsr {
            let eligible: Bool
            if let b = image.brokers[s.brokerId] {
                eligible = !b.inControlledShutdown && !b.fenced && (s.brokerEpoch == -1 || s.brokerEpoch == b.epoch)
            } else {
                eligible = false
            }
            if !eligible { return version >= 2 ? .ineligibleReplica : .operationNotAttempted }
        }
        return nil
    }

    /// ElectLeaders: election type 0 (preferred) moves leadership to the first replica if
    /// it is an active ISR member; 1 (unclean) elects a leader for leaderless partitions,
    /// from outside the ISR if no ISR member is alive. Null topic partitions means every
    /// partition (only those that needed an election are reported).
    public func electLeaders(_ request: ElectLeadersRequest) -> ControllerResult<ElectLeadersResponse> {
        var response = ElectLeadersResponse()
        response.errorCode = ErrorCode.noError.rawValue
        let unclean = request.electionType == 1
        var out: [MetadataRecord] = []
        if let topics = request.topicPartitions {
            for tp in topics {
                var tr = ElectLeadersResponse.ReplicaElectionResult()
                tr.topic = tp.topic
                for pid in tp.partitions {
                    let (code, message) = electLeader(topic: tp.topic, partition: pid, unclean: unclean, into: &out)
                    var r = ElectLeadersResponse.PartitionResult()
                    r.partitionId = pid
                    r.errorCode = code.rawValue
                    r.errorMessage = message
                    tr.partitionResult.append(r)
                }
                response.replicaElectionResults.append(tr)
            }
        } else {
            for name in image.topics.keys.sorted() {
                guard let t = image.topics[name] else { continue }
                var tr = ElectLeadersResponse.ReplicaElectionResult()
                tr.topic = name
                for pid in t.sortedPartitionIds {
                    let (code, message) = electLeader(topic: name, partition: pid, unclean: unclean, into: &out)
                    if code == .electionNotNeeded { continue }
                    var r = ElectLeadersResponse.PartitionResult()
                    r.partitionId = pid
                    r.errorCode = code.rawValue
                    r.errorMessage = message
                    tr.partitionResult.append(r)
                }
                if !tr.partitionResult.isEmpty { response.replicaElectionResults.append(tr) }
            }
        }
        return ControllerResult(records: out, response: response)
    }

    private func electLeader(topic: String, partition pid: Int32, unclean: Bool,
                             into out: inout [MetadataRecord]) -> (ErrorCode, String?) {
        guard let t = image.topics[topic] else { return (.unknownTopicOrPartition, "No such topic as \(topic)") }
        guard let p = t.partitions[pid] else { return (.unknownTopicOrPartition, "No such partition as \(topic)-\(pid)") }
        if unclean ? p.hasLeader : p.hasPreferredLeader {
            return (.electionNotNeeded, ErrorCode.electionNotNeeded.message)
        }
        let image = self.image
        var builder = PartitionChangeBuilder(partition: p, topicId: t.id, partitionId: pid,
                                             isAcceptableLeader: { image.isActive(broker: $0) })
        builder.election = unclean ? .unclean : .preferred
        guard let rec = builder.build() else {
            return unclean
                ? (.eligibleLeadersNotAvailable, ErrorCode.eligibleLeadersNotAvailable.message)
                : (.preferredLeaderNotAvailable, ErrorCode.preferredLeaderNotAvailable.message)
        }
        emit([.partitionChange(rec)], into: &out)
        return (.noError, nil)
    }
}
