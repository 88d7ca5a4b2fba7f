import FjordProtocol
import FjordWire
import NIOCore

/// Maps the core's messages to the real KRaft RPCs generated from Kafka's schemas — Vote v2
/// (with KIP-996's PreVote), BeginQuorumEpoch v1, EndQuorumEpoch v1, Fetch v17 on
/// `__cluster_metadata` partition 0 (topic id `AAAAAAAAAAAAAAAAAAAAAQ`) — and back. What the
/// wire does not carry about a response (which election or fetch it answers) is restored
/// from the request it answers, as the shell pairs them by correlation id.
public enum RaftWire {
    public static let topicName = "__cluster_metadata"
    /// Kafka's `Uuid.METADATA_TOPIC_ID`.
    public static let topicId = KafkaUUID.one
    public static let voteVersion: Int16 = 2
    public static let beginQuorumEpochVersion: Int16 = 1
    public static let endQuorumEpochVersion: Int16 = 1
    public static let fetchVersion: Int16 = 17
    public static let fetchSnapshotVersion: Int16 = 0

    public struct MalformedRaftMessage: Error, CustomStringConvertible {
        public var description: String
    }

    // MARK: requests

    /// The request to send for `message` (a request) to node `to`.
    public static func request(_ message: RaftMessage, to: Int32, clusterId: String?) throws -> (request: any KafkaRequest, version: Int16) {
        switch message {
        case let .vote(v):
            var p = VoteRequest.PartitionData()
            p.partitionIndex = 0
            p.candidateEpoch = v.candidateEpoch
            p.candidateId = v.candidateId
            p.lastOffsetEpoch = v.lastOffsetEpoch
            p.lastOffset = v.lastOffset
            p.preVote = v.preVote
            var t = VoteRequest.TopicData()
            t.topicName = topicName
            t.partitions = [p]
            var r = VoteRequest()
            r.clusterId = clusterId
            r.voterId = to
            r.topics = [t]
            return (r, voteVersion)
        case let .beginQuorumEpoch(b):
            var p = BeginQuorumEpochRequest.PartitionData()
            p.leaderId = b.leaderId
            p.leaderEpoch = b.leaderEpoch
            var t = BeginQuorumEpochRequest.TopicData()
            t.topicName = topicName
            t.partitions = [p]
            var r = BeginQuorumEpochRequest()
            r.clusterId = clusterId
            r.voterId = to
            r.topics = [t]
            return (r, beginQuorumEpochVersion)
        case let .endQuorumEpoch(e):
            var p = EndQuorumEpochRequest.PartitionData()
            p.leaderId = e.leaderId
            p.leaderEpoch = e.leaderEpoch
            p.preferredCandidates = e.preferredSuccessors.map { var c = EndQuorumEpochRequest.ReplicaInfo(); c.candidateId = $0; return c }
            var t = EndQuorumEpochRequest.TopicData()
            t.topicName = topicName
            t.partitions = [p]
            var r = EndQuorumEpochRequest()
            r.clusterId = clusterId
            r.topics = [t]
            return (r, endQuorumEpochVersion)
        case let .fetch(f):
            var p = FetchRequest.FetchPartition()
            p.partition = 0
            p.currentLeaderEpoch = f.currentLeaderEpoch
            p.fetchOffset = f.fetchOffset
            p.lastFetchedEpoch = f.lastFetchedEpoch
            p.partitionMaxBytes = f.maxBytes
            var t = FetchRequest.FetchTopic()
            t.topicId = topicId
            t.partitions = [p]
            var r = FetchRequest()
            r.clusterId = clusterId
            r.replicaState.replicaId = f.replicaId
            r.maxWaitMs = f.maxWaitMs
            r.minBytes = 0
            r.maxBytes = f.maxBytes
            r.topics = [t]
            return (r, fetchVersion)
        case let .fetchSnapshot(f):
            var p = FetchSnapshotRequest.PartitionSnapshot()
            p.partition = 0
            p.currentLeaderEpoch = f.currentLeaderEpoch
            p.snapshotId.endOffset = f.snapshotId.endOffset
            p.snapshotId.epoch = f.snapshotId.epoch
            p.position = f.position
            var t = FetchSnapshotRequest.TopicSnapshot()
            t.name = topicName
            t.partitions = [p]
            var r = FetchSnapshotRequest()
            r.clusterId = clusterId
            r.replicaId = f.replicaId
            r.maxBytes = f.maxBytes
            r.topics = [t]
            return (r, fetchSnapshotVersion)
        default:
            throw MalformedRaftMessage(description: "not a request: \(message)")
        }
    }

    /// The core's view of a received request; `from` is the sender's node id where the
    /// request names none (Vote and BeginQuorumEpoch carry it in their partition data).
    public static func message(fromRequest r: any KafkaRequest) throws -> RaftMessage {
        switch r {
        case let v as VoteRequest:
            guard let p = v.topics.first?.partitions.first else { throw MalformedRaftMessage(description: "Vote without a partition") }
            return .vote(VoteRequestData(candidateEpoch: p.candidateEpoch, candidateId: p.candidateId,
                                         lastOffsetEpoch: p.lastOffsetEpoch, lastOffset: p.lastOffset, preVote: p.preVote))
        case let b as BeginQuorumEpochRequest:
            guard let p = b.topics.first?.partitions.first else { throw MalformedRaftMessage(description: "BeginQuorumEpoch without a partition") }
            return .beginQuorumEpoch(EpochData(leaderId: p.leaderId, leaderEpoch: p.leaderEpoch))
        case let e as EndQuorumEpochRequest:
            guard let p = e.topics.first?.partitions.first else { throw MalformedRaftMessage(description: "EndQuorumEpoch without a partition") }
            let successors = p.preferredCandidates.isEmpty ? p.preferredSuccessors : p.preferredCandidates.map(\.candidateId)
            return .endQuorumEpoch(EndQuorumEpochData(leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, preferredSuccessors: successors))
        case let f as FetchRequest:
            guard let p = f.topics.first?.partitions.first else { throw MalformedRaftMessage(description: "Fetch without a partition") }
            let replica = f.replicaState.replicaId >= 0 ? f.replicaState.replicaId : f.replicaId
            return .fetch(FetchRequestData(currentLeaderEpoch: p.currentLeaderEpoch, fetchOffset: p.fetchOffset,
                                           lastFetchedEpoch: p.lastFetchedEpoch, replicaId: replica,
                                           maxWaitMs: f.maxWaitMs, maxBytes: min(f.maxBytes, p.partitionMaxBytes)))
        case let f as FetchSnapshotRequest:
            guard let p = f.topics.first?.partitions.first else { throw MalformedRaftMessage(description: "FetchSnapshot without a partition") }
            return .fetchSnapshot(FetchSnapshotRequestData(currentLeaderEpoch: p.currentLeaderEpoch,
                                                           snapshotId: SnapshotId(endOffset: p.snapshotId.endOffset, epoch: p.snapshotId.epoch),
                                                           position: p.position, replicaId: f.replicaId, maxBytes: f.maxBytes))
        default:
            throw MalformedRaftMessage(description: "not a KRaft request: \(type(of: r).messageName)")
        }
    }

    // MARK: responses

    /// The response to send for the core's `message` (a response).
    public static func response(_ message: RaftMessage) throws -> any KafkaResponse {
        switch message {
        case let .voteResponse(v):
            var p = VoteResponse.PartitionData()
            p.errorCode = v.errorCode
            p.leaderId = v.leaderId
            p.leaderEpoch = v.leaderEpoch
            p.voteGranted = v.voteGranted
            var t = VoteResponse.TopicData()
            t.topicName = topicName
            t.partitions = [p]
            var r = VoteResponse()
            r.topics = [t]
            return r
        case let .beginQuorumEpochResponse(e):
            var p = BeginQuorumEpochResponse.PartitionData()
            p.errorCode = e.errorCode
            p.leaderId = e.leaderId
            p.leaderEpoch = e.leaderEpoch
            var t = BeginQuorumEpochResponse.TopicData()
            t.topicName = topicName
            t.partitions = [p]
            var r = BeginQuorumEpochResponse()
            r.topics = [t]
            return r
        case let .endQuorumEpochResponse(e):
            var p = EndQuorumEpochResponse.PartitionData()
            p.errorCode = e.errorCode
            p.leaderId = e.leaderId
            p.leaderEpoch = e.leaderEpoch
            var t = EndQuorumEpochResponse.TopicData()
            t.topicName = topicName
            t.partitions = [p]
            var r = EndQuorumEpochResponse()
            r.topics = [t]
            return r
        case let .fetchResponse(f):
            var p = FetchResponse.PartitionData()
            p.partitionIndex = 0
            p.errorCode = f.errorCode
            p.highWatermark = f.highWatermark
            p.logStartOffset = f.logStartOffset
            p.divergingEpoch.epoch = f.divergingEpoch
            p.divergingEpoch.endOffset = f.divergingEndOffset
            p.currentLeader.leaderId = f.leaderId
            p.currentLeader.leaderEpoch = f.leaderEpoch
            p.records = f.records
            if let snap = f.snapshotId {
                p.snapshotId.endOffset = snap.endOffset
                p.snapshotId.epoch = snap.epoch
            }
            var t = FetchResponse.FetchableTopicResponse()
            t.topicId = topicId
            t.partitions = [p]
            var r = FetchResponse()
            r.responses = [t]
            return r
        case let .fetchSnapshotResponse(f):
            var p = FetchSnapshotResponse.PartitionSnapshot()
            p.index = 0
            p.errorCode = f.errorCode
            p.snapshotId.endOffset = f.snapshotId.endOffset
            p.snapshotId.epoch = f.snapshotId.epoch
            p.currentLeader.leaderId = f.leaderId
            p.currentLeader.leaderEpoch = f.leaderEpoch
            p.size = f.size
            p.position = f.position
            p.unalignedRecords = f.bytes
            var t = FetchSnapshotResponse.TopicSnapshot()
            t.name = topicName
            t.partitions = [p]
            var r = FetchSnapshotResponse()
            r.topics = [t]
            return r
        default:
            throw MalformedRaftMessage(description: "not a response: \(message)")
        }
    }

    /// The core's view of a response to `request`.
    public static func message(fromResponse r: any KafkaResponse, request: RaftMessage) throws -> RaftMessage {
        switch (r, request) {
        case let (v as VoteResponse, .vote(req)):
            guard let p = v.topics.first?.partitions.first else {
                return .voteResponse(VoteResponseData(errorCode: v.errorCode, leaderEpoch: -1, leaderId: -1, voteGranted: false,
                                                      requestEpoch: req.candidateEpoch, preVote: req.preVote))
            }
            return .voteResponse(VoteResponseData(errorCode: v.errorCode != 0 ? v.errorCode : p.errorCode, leaderEpoch: p.leaderEpoch,
                                                  leaderId: p.leaderId, voteGranted: p.voteGranted,
                                                  requestEpoch: req.candidateEpoch, preVote: req.preVote))
        case let (b as BeginQuorumEpochResponse, .beginQuorumEpoch):
            let p = b.topics.first?.partitions.first
            return .beginQuorumEpochResponse(EpochResponseData(errorCode: b.errorCode != 0 ? b.errorCode : (p?.errorCode ?? 0),
                                                               leaderId: p?.leaderId ?? -1, leaderEpoch: p?.leaderEpoch ?? -1))
        case let (e as EndQuorumEpochResponse, .endQuorumEpoch):
            let p = e.topics.first?.partitions.first
            return .endQuorumEpochResponse(EpochResponseData(errorCode: e.errorCode != 0 ? e.errorCode : (p?.errorCode ?? 0),
                                                             leaderId: p?.leaderId ?? -1, leaderEpoch: p?.leaderEpoch ?? -1))
        case let (f as FetchResponse, .fetch(req)):
            guard let p = f.responses.first?.partitions.first else {
                return .fetchResponse(FetchResponseData(errorCode: f.errorCode != 0 ? f.errorCode : 42, leaderId: -1, leaderEpoch: -1,
                                                        highWatermark: -1, logStartOffset: -1, fetchOffset: req.fetchOffset).withSnapshot(nil, fetchId: req.fetchId))
            }
            return .fetchResponse(FetchResponseData(errorCode: f.errorCode != 0 ? f.errorCode : p.errorCode,
                                                    leaderId: p.currentLeader.leaderId, leaderEpoch: p.currentLeader.leaderEpoch,
                                                    highWatermark: p.highWatermark, logStartOffset: p.logStartOffset,
                                                    divergingEpoch: p.divergingEpoch.epoch, divergingEndOffset: p.divergingEpoch.endOffset,
                                                    records: p.records ?? ByteBuffer(), fetchOffset: req.fetchOffset)
                .withSnapshot(p.snapshotId.endOffset >= 0 && p.snapshotId.epoch >= 0
                    ? SnapshotId(endOffset: p.snapshotId.endOffset, epoch: p.snapshotId.epoch) : nil, fetchId: req.fetchId))
        case let (f as FetchSnapshotResponse, .fetchSnapshot(req)):
            guard let p = f.topics.first?.partitions.first else {
                var resp = FetchSnapshotResponseData(errorCode: f.errorCode != 0 ? f.errorCode : 42, leaderId: -1, leaderEpoch: -1,
                                                     snapshotId: req.snapshotId, position: req.position)
                resp.fetchId = req.fetchId
                return .fetchSnapshotResponse(resp)
            }
            var resp = FetchSnapshotResponseData(errorCode: f.errorCode != 0 ? f.errorCode : p.errorCode,
                                                 leaderId: p.currentLeader.leaderId, leaderEpoch: p.currentLeader.leaderEpoch,
                                                 snapshotId: SnapshotId(endOffset: p.snapshotId.endOffset, epoch: p.snapshotId.epoch),
                                                 size: p.size, position: p.position, bytes: p.unalignedRecords)
            resp.fetchId = req.fetchId
            return .fetchSnapshotResponse(resp)
        default:
            throw MalformedRaftMessage(description: "\(type(of: r).messageName) does not answer \(request)")
        }
    }
}

extension FetchResponseData {
    func withSnapshot(_ id: SnapshotId?, fetchId: UInt64) -> FetchResponseData {
        var r = self
        r.snapshotId = id
        r.fetchId = fetchId
        return r
    }
}
