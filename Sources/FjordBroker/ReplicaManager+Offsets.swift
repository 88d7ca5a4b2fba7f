import FjordProtocol
import FjordStorage
import NIOConcurrencyHelpers
import NIOCore

extension ReplicaManager {
    /// ListOffsets: earliest (-2), latest (-1: the high watermark for consumers), max
    /// timestamp (-3), earliest local (-4), or the first offset at or after a timestamp.
    public func listOffsets(_ r: ListOffsetsRequest, version: Int16) -> ListOffsetsResponse {
        var resp = ListOffsetsResponse()
        resp.topics = r.topics.map { t in
            var tr = ListOffsetsResponse.ListOffsetsTopicResponse()
            tr.name = t.name
            tr.partitions = t.partitions.map { p in
                var pr = ListOffsetsResponse.ListOffsetsPartitionResponse()
                pr.partitionIndex = p.partitionIndex
                let tp = TopicPartition(t.name, p.partitionIndex)
                guard let part = partition(tp) else {
                    pr.errorCode = currentImage.topics[t.name]?.partitions[p.partitionIndex] != nil
                        ? ErrorCode.notLeaderOrFollower.rawValue : ErrorCode.unknownTopicOrPartition.rawValue
                    return pr
                }
                let st = part.state
                // Only the leader answers clients; replicaId -2 (debug) may ask any replica.
                if !st.isLeader && r.replicaId != -2 {
                    pr.errorCode = ErrorCode.notLeaderOrFollower.rawValue
                    return pr
                }
                if version >= 4, p.currentLeaderEpoch >= 0, p.currentLeaderEpoch != st.leaderEpoch {
                    pr.errorCode = (p.currentLeaderEpoch < st.leaderEpoch ? ErrorCode.fencedLeaderEpoch : ErrorCode.unknownLeaderEpoch).rawValue
                    return pr
                }
                let log = part.log
                let hw = log.highWatermark
                let latest = r.replicaId >= 0 ? log.logEndOffset : hw
                func epoch(_ offset: Int64) -> Int32 {
                    log.leaderEpochCache.epoch(forOffset: max(0, offset - 1)) ?? -1
                }
                switch p.timestamp {
                case -1:
                    pr.offset = latest
                    pr.leaderEpoch = epoch(latest)
                case -2, -4, -5:
                    pr.offset = log.logStartOffset
                    pr.leaderEpoch = log.leaderEpochCache.epoch(forOffset: log.logStartOffset) ?? -1
                case -3:
                    let m = log.maxTimestampAndOffset
                    if m.offset >= 0, m.offset < hw {
                        pr.timestamp = m.timestamp
                        pr.offset = m.offset
                        pr.leaderEpoch = log.leaderEpochCache.epoch(forOffset: m.offset) ?? -1
                    }
                default:
                    do {
                        if let found = try log.offset(forTimestamp: p.timestamp), found.offset < hw {
                            pr.timestamp = found.timestamp
                            pr.offset = found.offset
                            pr.leaderEpoch = log.leaderEpochCache.epoch(forOffset: found.offset) ?? -1
                        }
                    } catch {
                        pr.errorCode = ErrorCode.kafkaStorageError.rawValue
                    }
                }
                if version < 4 { pr.leaderEpoch = -1 }
                if version == 0 { pr.oldStyleOffsets = pr.offset >= 0 ? [pr.offset] : [] }
                return pr
            }
            return tr
        }
        return resp
    }

    /// OffsetForLeaderEpoch: the end offset of the largest epoch ≤ the requested one.
    public func offsetForLeaderEpoch(_ r: OffsetForLeaderEpochRequest, version: Int16) -> OffsetForLeaderEpochResponse {
        var resp = OffsetForLeaderEpochResponse()
        resp.topics = r.topics.map { t in
            var tr = OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult()
            tr.topic = t.topic
            tr.partitions = t.partitions.map { p in
                var e = OffsetForLeaderEpochResponse.EpochEndOffset()
                e.partition = p.partition
                guard let part = partition(TopicPartition(t.topic, p.partition)) else {
                    e.errorCode = currentImage.topics[t.topic]?.partitions[p.partition] != nil
                        ? ErrorCode.notLeaderOrFollower.rawValue : ErrorCode.unknownTopicOrPartition.rawValue
                    return e
                }
                let st = part.state
                guard st.isLeader else {
                    e.errorCode = ErrorCode.notLeaderOrFollower.rawValue
                    return e
                }
                if p.currentLeaderEpoch >= 0, p.currentLeaderEpoch != st.leaderEpoch {
                    e.errorCode = (p.currentLeaderEpoch < st.leaderEpoch ? ErrorCode.fencedLeaderEpoch : ErrorCode.unknownLeaderEpoch).rawValue
                    return e
                }
                let (epoch, end) = part.log.endOffset(forLeaderEpoch: p.leaderEpoch)
                e.leaderEpoch = epoch
                e.endOffset = end
                return e
            }
            return tr
        }
        return resp
    }

    /// DeleteRecords: moves the log start offset (-1 means the high watermark) on the leader.
    public func deleteRecords(_ r: DeleteRecordsRequest) -> DeleteRecordsResponse {
        var resp = DeleteRecordsResponse()
        resp.topics = r.topics.map { t in
            var tr = DeleteRecordsResponse.DeleteRecordsTopicResult()
            tr.name = t.name
            tr.partitions = t.partitions.map { p in
                var pr = DeleteRecordsResponse.DeleteRecordsPartitionResult()
                pr.partitionIndex = p.partitionIndex
                pr.lowWatermark = -1
                guard let part = partition(TopicPartition(t.name, p.partitionIndex)) else {
                    pr.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    return pr
                }
                guard part.isLeader else {
                    pr.errorCode = ErrorCode.notLeaderOrFollower.rawValue
                    return pr
                }
                let hw = part.log.highWatermark
                let target = p.offset == -1 ? hw : p.offset
                guard target >= 0, target <= hw else {
                    pr.errorCode = ErrorCode.offsetOutOfRange.rawValue
                    return pr
                }
                do {
                    pr.lowWatermark = try part.log.deleteRecords(before: target)
                } catch let e as LogAppendError {
                    pr.errorCode = e.code.rawValue
                } catch {
                    pr.errorCode = ErrorCode.kafkaStorageError.rawValue
                }
                return pr
            }
            return tr
        }
        return resp
    }
}

/// Hands out producer ids for InitProducerId from blocks the controller allocates
/// (AllocateProducerIds), fetching the next block before the current one runs out.
public final class ProducerIdManager: @unchecked Sendable {
    let transport: BrokerTransport
    let brokerId: Int32
    let brokerEpoch: @Sendable () -> Int64
    private let lock = NIOLock()
    private var next: Int64 = 0
    private var end: Int64 = 0
    private var fetching: EventLoopFuture<Void>?

    public init(transport: BrokerTransport, brokerId: Int32, brokerEpoch: @escaping @Sendable () -> Int64) {
        self.transport = transport
        self.brokerId = brokerId
        self.brokerEpoch = brokerEpoch
    }

    struct AllocationFailed: Error {
        var code: Int16
    }

    public func nextProducerId(on loop: EventLoop) -> EventLoopFuture<Int64> {
        let (id, wait): (Int64?, EventLoopFuture<Void>?) = lock.withLock {
            if next < end {
                next += 1
                return (next - 1, nil)
            }
            if let f = fetching { return (nil, f) }
            var req = AllocateProducerIdsRequest()
            req.brokerId = brokerId
            req.brokerEpoch = brokerEpoch()
            let f = transport.sendToController(req, version: 0).flatMapThrowing { (resp: any KafkaResponse) -> Void in
                guard let r = resp as? AllocateProducerIdsResponse, r.errorCode == 0 else {
                    throw AllocationFailed(code: (resp as? AllocateProducerIdsResponse)?.errorCode ?? -1)
                }
                self.lock.withLock {
                    self.next = r.producerIdStart
                    self.end = r.producerIdStart + Int64(r.producerIdLen)
                    self.fetching = nil
                }
            }
            f.whenFailure { _ in self.lock.withLock { self.fetching = nil } }
            fetching = f
            return (nil, f)
        }
        if let id { return loop.makeSucceededFuture(id) }
        return wait!.hop(to: loop).flatMap { self.nextProducerId(on: loop) }
    }

    /// InitProducerId for idempotent (non-transactional) producers: a new producer id with
    /// epoch 0.
    public func initProducerId(_ r: InitProducerIdRequest, on loop: EventLoop) -> EventLoopFuture<InitProducerIdResponse> {
        if let tid = r.transactionalId, !tid.isEmpty {
            var resp = InitProducerIdResponse()
            resp.errorCode = ErrorCode.transactionalIdAuthorizationFailed.rawValue
            return loop.makeSucceededFuture(resp)
        }
        return nextProducerId(on: loop).map { id in
            var resp = InitProducerIdResponse()
            resp.producerId = id
            resp.producerEpoch = 0
            return resp
        }.flatMapErrorThrowing { _ in
            var resp = InitProducerIdResponse()
            resp.errorCode = ErrorCode.coordinatorNotAvailable.rawValue
            return resp
        }
    }
}
