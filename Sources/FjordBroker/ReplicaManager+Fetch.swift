import FjordProtocol
import FjordRecords
import FjordStorage
import FjordWire
import NIOConcurrencyHelpers
import NIOCore

extension ReplicaManager {
    /// Fetch from consumers (up to the high watermark) and from follower replicas (up to the
    /// log end; their fetch offset is their progress). Waits up to `maxWaitMs` for
    /// `minBytes` of data; appends and high-watermark moves wake it early.
    ///
    /// With `zeroCopy` the records stay in the segment files (see `SplicedFetchResponse`).
    public func fetch(_ r: FetchRequest, version: Int16, on loop: EventLoop, zeroCopy: Bool = false) -> EventLoopFuture<SplicedFetchResponse> {
        let replicaId = version >= 15 ? r.replicaState.replicaId : r.replicaId
        let isFollower = replicaId >= 0
        let now = clock()
        // Resolve partitions once; follower progress is recorded at arrival.
        var items: [FetchItem] = []
        let img = currentImage
        for (ti, t) in r.topics.enumerated() {
            let name: String? = version >= 13 ? img.topicNamesById[t.topicId] : t.topic
            for p in t.partitions {
                var item = FetchItem(topicIndex: ti, topicName: name ?? "", topicId: t.topicId, request: p, partition: nil, error: nil)
                guard let name else {
                    item.error = .unknownTopicId
                    items.append(item)
                    continue
                }
                let tp = TopicPartition(name, p.partition)
                guard let part = partition(tp) else {
                    item.error = img.topics[name]?.partitions[p.partition] != nil ? .notLeaderOrFollower : .unknownTopicOrPartition
                    items.append(item)
                    continue
                }
                let st = part.state
                if !st.isLeader || (!isFollower && !sessionIsCurrent()) {
                    item.error = .notLeaderOrFollower
                } else if version >= 9, p.currentLeaderEpoch >= 0, p.currentLeaderEpoch < st.leaderEpoch {
                    item.error = .fencedLeaderEpoch
                } else if version >= 9, p.currentLeaderEpoch > st.leaderEpoch {
                    item.error = .unknownLeaderEpoch
                } else if isFollower, !st.replicas.contains(replicaId) {
                    item.error = .notLeaderOrFollower
                }
                item.partition = part
                if item.error == nil, isFollower {
                    // Divergence (KIP-595 style, Fetch v12+): the follower's last epoch must end
                    // at or after its fetch offset in our log.
                    if version >= 12, p.lastFetchedEpoch >= 0 {
                        let (e, end) = part.log.endOffset(forLeaderEpoch: p.lastFetchedEpoch)
                        if e != p.lastFetchedEpoch || end < p.fetchOffset {
                            item.diverging = (e, end)
                        }
                    }
                    if item.diverging == nil, p.fetchOffset <= part.log.logEndOffset {
                        part.updateFollower(replicaId, fetchOffset: p.fetchOffset, nowMs: now)
                        maybeChangeIsr(part, nowMs: now)
                    }
                }
                items.append(item)
            }
        }
        let maxBytes = Int(min(r.maxBytes, config.fetchMaxBytes > 0 && !isFollower ? config.fetchMaxBytes : r.maxBytes))
        let first = readAll(items, version: version, isFollower: isFollower, maxBytes: maxBytes, zeroCopy: zeroCopy)
        let hasError = items.contains { $0.error != nil || $0.diverging != nil }
        if r.maxWaitMs <= 0 || first.bytes >= Int(max(1, r.minBytes)) || hasError || items.isEmpty {
            return loop.makeSucceededFuture(first.response)
        }
        let promise = loop.makePromise(of: SplicedFetchResponse.self)
        let op = DelayedFetch(items: items, promise: promise, minBytes: Int(max(1, r.minBytes))) { [self] in
            readAll(items, version: version, isFollower: isFollower, maxBytes: maxBytes, zeroCopy: zeroCopy)
        }
        op.arm(loop: loop, timeoutMs: Int64(r.maxWaitMs))
        return promise.futureResult
    }

    struct FetchItem: @unchecked Sendable {
        var topicIndex: Int
        var topicName: String
        var topicId: KafkaUUID
        var request: FetchRequest.FetchPartition
        var partition: Partition?
        var error: ErrorCode?
        var diverging: (epoch: Int32, endOffset: Int64)?
    }

    /// Reads every partition of a fetch; returns the response and the record bytes in it.
    func readAll(_ items: [FetchItem], version: Int16, isFollower: Bool, maxBytes: Int, zeroCopy: Bool) -> (response: SplicedFetchResponse, bytes: Int) {
        var resp = FetchResponse()
        var splices: [SplicedFetchResponse.Splice] = []
        var topics: [Int: FetchResponse.FetchableTopicResponse] = [:]
        var order: [Int] = []
        var remaining = maxBytes
        var total = 0
        var leaderHints: Set<Int32> = []
        for item in items {
            var pd = FetchResponse.PartitionData()
            pd.partitionIndex = item.request.partition
            pd.abortedTransactions = nil
            pd.records = ByteBuffer()
            if let err = item.error {
                pd.errorCode = err.rawValue
                pd.highWatermark = -1
                pd.logStartOffset = -1
                if err == .notLeaderOrFollower || err == .fencedLeaderEpoch, !item.topicName.isEmpty, version >= 12 {
                    let hint = leaderHint(TopicPartition(item.topicName, item.request.partition))
                    pd.currentLeader.leaderId = hint.leaderId
                    pd.currentLeader.leaderEpoch = hint.leaderEpoch
                    if hint.leaderId >= 0 { leaderHints.insert(hint.leaderId) }
                }
            } else if let part = item.partition {
                let log = part.log
                let hw = log.highWatermark
                pd.highWatermark = hw
                pd.lastStableOffset = hw
                pd.logStartOffset = log.logStartOffset
                if let d = item.diverging {
                    pd.divergingEpoch.epoch = d.epoch
                    pd.divergingEpoch.endOffset = d.endOffset
                } else {
                    let offset = item.request.fetchOffset
                    let leo = log.logEndOffset
                    if offset < log.logStartOffset || offset > leo {
                        pd.errorCode = ErrorCode.offsetOutOfRange.rawValue
                    } else if remaining > 0 || total == 0 {
                        let limit = min(Int(max(0, item.request.partitionMaxBytes)), max(0, remaining))
                        do {
                            let read = try log.read(from: offset, maxBytes: limit, maxOffset: isFollower ? nil : hw, minOneBatch: total == 0)
                            if let slice = read.slice, slice.length > 0 {
                                if zeroCopy {
                                    let marker = SplicedFetchResponse.newMarker()
                                    splices.append(SplicedFetchResponse.Splice(marker: marker, slice: slice))
                                    pd.records = marker
                                } else {
                                    pd.records = try slice.read()
                                }
                                total += slice.length
                                remaining -= slice.length
                            }
                        } catch let e as LogAppendError {
                            pd.errorCode = e.code.rawValue
                        } catch {
                            pd.errorCode = ErrorCode.kafkaStorageError.rawValue
                            logger.error("read failed", metadata: ["partition": "\(part.topicPartition)", "error": "\(error)"])
                        }
                    }
                }
            }
            if topics[item.topicIndex] == nil {
                var t = FetchResponse.FetchableTopicResponse()
                t.topic = item.topicName
                t.topicId = item.topicId
                topics[item.topicIndex] = t
                order.append(item.topicIndex)
            }
            topics[item.topicIndex]?.partitions.append(pd)
        }
        resp.responses = order.compactMap { topics[$0] }
        if version >= 16 {
            resp.nodeEndpoints = nodeEndpoints(leaderHints).map { id, host, port, rack in
                var e = FetchResponse.NodeEndpoint()
                e.nodeId = id
                e.host = host
                e.port = port
                e.rack = rack
                return e
            }
        }
        return (SplicedFetchResponse(response: resp, splices: splices), total)
    }
}

/// A long-poll fetch waiting for `minBytes` of data or its deadline.
final class DelayedFetch: @unchecked Sendable {
    private let lock = NIOLock()
    private let items: [ReplicaManager.FetchItem]
    private let promise: EventLoopPromise<SplicedFetchResponse>
    private let minBytes: Int
    private let read: () -> (response: SplicedFetchResponse, bytes: Int)
    private var done = false
    private var waiterIds: [(Partition, Int)] = []
    private var timeout: Scheduled<Void>?

    init(items: [ReplicaManager.FetchItem], promise: EventLoopPromise<SplicedFetchResponse>, minBytes: Int,
         read: @escaping () -> (response: SplicedFetchResponse, bytes: Int)) {
        self.items = items
        self.promise = promise
        self.minBytes = minBytes
        self.read = read
    }

    func arm(loop: EventLoop, timeoutMs: Int64) {
        lock.withLock {
            for item in items {
                if let p = item.partition {
                    waiterIds.append((p, p.addWaiter { self.check(timedOut: false) }))
                }
            }
            timeout = loop.scheduleTask(in: .milliseconds(timeoutMs)) { self.check(timedOut: true) }
        }
    }

    private func check(timedOut: Bool) {
        let claimed: Bool = lock.withLock { !done }
        guard claimed else { return }
        let r = read()
        let finish: Bool = lock.withLock {
            guard !done, timedOut || r.bytes >= minBytes else { return false }
            done = true
            timeout?.cancel()
            return true
        }
        guard finish else { return }
        for (p, id) in lock.withLock({ waiterIds }) { p.removeWaiter(id) }
        promise.succeed(r.response)
    }
}
