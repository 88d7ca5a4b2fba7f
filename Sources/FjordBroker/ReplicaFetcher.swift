import FjordProtocol
import FjordRecords
import FjordStorage
import FjordWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Follower replication: one fetcher per leader broker, each a loop of Fetch requests
/// (v15: replica state, topic ids, last fetched epoch) for the partitions this broker
/// follows from that leader. Responses are appended as follower batches; a diverging
/// epoch truncates the log; the high watermark follows the leader's.
final class ReplicaFetcherManager: @unchecked Sendable {
    let config: BrokerConfig
    let transport: BrokerTransport
    let group: EventLoopGroup
    let logger: Logger
    let clock: @Sendable () -> Int64
    weak var replicaManager: ReplicaManager?
    private let lock = NIOLock()
    private var fetchers: [Int32: ReplicaFetcher] = [:]
    private var stopped = false

    init(config: BrokerConfig, transport: BrokerTransport, group: EventLoopGroup, logger: Logger, clock: @escaping @Sendable () -> Int64) {
        self.config = config
        self.transport = transport
        self.group = group
        self.logger = logger
        self.clock = clock
    }

    func add(_ p: Partition, leader: Int32, leaderEpoch: Int32, endpointKnown: Bool) {
        let f: ReplicaFetcher? = lock.withLock {
            guard !stopped else { return nil }
            if let f = fetchers[leader] { return f }
            let f = ReplicaFetcher(leader: leader, manager: self, loop: group.next())
            fetchers[leader] = f
            return f
        }
        f?.add(p, leaderEpoch: leaderEpoch)
    }

    func remove(_ tp: TopicPartition) {
        let all = lock.withLock { Array(fetchers.values) }
        for f in all { f.remove(tp) }
    }

    func shutdown() {
        let all = lock.withLock { () -> [ReplicaFetcher] in
            stopped = true
            defer { fetchers = [:] }
            return Array(fetchers.values)
        }
        for f in all { f.stop() }
    }
}

final class ReplicaFetcher: @unchecked Sendable {
    let leader: Int32
    unowned let manager: ReplicaFetcherManager
    let loop: EventLoop
    private var partitions: [TopicPartition: (partition: Partition, leaderEpoch: Int32)] = [:]
    private var running = false
    private var stopped = false
    /// Partitions whose last fetch failed, left out until then (Kafka delays only the
    /// partition in error, not the whole fetcher).
    private var delayedUntil: [TopicPartition: Int64] = [:]

    init(leader: Int32, manager: ReplicaFetcherManager, loop: EventLoop) {
        self.leader = leader
        self.manager = manager
        self.loop = loop
    }

    func add(_ p: Partition, leaderEpoch: Int32) {
        loop.execute {
            self.partitions[p.topicPartition] = (p, leaderEpoch)
            if !self.running, !self.stopped {
                self.running = true
                self.fetchOnce()
            }
        }
    }

    func remove(_ tp: TopicPartition) {
        loop.execute { self.partitions[tp] = nil }
    }

    func stop() {
        loop.execute {
            self.stopped = true
            self.partitions = [:]
        }
    }

    private func fetchOnce() {
        guard !stopped, !partitions.isEmpty else {
            running = false
            return
        }
        let config = manager.config
        var req = FetchRequest()
        req.replicaState.replicaId = config.nodeId
        req.replicaState.replicaEpoch = manager.replicaManager?.brokerEpoch() ?? -1
        req.maxWaitMs = config.replicaFetchWaitMaxMs
        req.minBytes = 1
        req.maxBytes = config.replicaFetchResponseMaxBytes
        req.isolationLevel = 0
        req.sessionId = 0
        req.sessionEpoch = -1
        var byTopic: [KafkaUUID: FetchRequest.FetchTopic] = [:]
        let now = manager.clock()
        delayedUntil = delayedUntil.filter { $0.value > now && partitions[$0.key] != nil }
        let snapshot = partitions.filter { delayedUntil[$0.key] == nil }
        if snapshot.isEmpty {
            let wait = max(10, (delayedUntil.values.min() ?? now + 100) - now)
            loop.scheduleTask(in: .milliseconds(wait)) { self.fetchOnce() }
            return
        }
        for (tp, entry) in snapshot.sorted(by: { $0.key.description < $1.key.description }) {
            let log = entry.partition.log
            var fp = FetchRequest.FetchPartition()
            fp.partition = tp.partition
            fp.currentLeaderEpoch = entry.leaderEpoch
            fp.fetchOffset = log.logEndOffset
            fp.lastFetchedEpoch = log.leaderEpochCache.latestEpoch ?? -1
            fp.logStartOffset = log.logStartOffset
            fp.partitionMaxBytes = config.replicaFetchMaxBytes
            byTopic[entry.partition.topicId, default: { var t = FetchRequest.FetchTopic(); t.topicId = entry.partition.topicId; t.topic = tp.topic; return t }()].partitions.append(fp)
        }
        req.topics = byTopic.keys.sorted().compactMap { byTopic[$0] }
        let timeout = Int64(config.replicaFetchWaitMaxMs) + 30_000
        manager.transport.sendToBroker(leader, req, version: 15, timeoutMs: timeout).hop(to: loop).whenComplete { result in
            var backoff = false
            switch result {
            case let .success(resp as FetchResponse):
                backoff = self.handle(resp, sent: snapshot)
            case .success:
                backoff = true
            case let .failure(error):
                self.manager.logger.debug("replica fetch failed", metadata: ["leader": "\(self.leader)", "error": "\(error)"])
                backoff = true
            }
            if backoff {
                self.loop.scheduleTask(in: .milliseconds(self.manager.config.replicaFetchBackoffMs)) { self.fetchOnce() }
            } else {
                self.fetchOnce()
            }
        }
    }

    /// Applies a fetch response; returns whether to back off before the next fetch.
    private func handle(_ resp: FetchResponse, sent: [TopicPartition: (partition: Partition, leaderEpoch: Int32)]) -> Bool {
        if resp.errorCode != 0 { return true }
        let backoff = false
        let now = manager.clock()
        for t in resp.responses {
            for pd in t.partitions {
                guard let (tp, entry) = sent.first(where: { $0.value.partition.topicId == t.topicId && $0.key.partition == pd.partitionIndex }),
                      let current = partitions[tp], current.leaderEpoch == entry.leaderEpoch else { continue }
                let log = entry.partition.log
                if pd.errorCode != 0 {
                    let code = ErrorCode(rawValue: pd.errorCode)
                    if code == .offsetOutOfRange {
                        // Our log end is outside the leader's range: below its start we start
                        // over at its start; above its end we truncate to its end.
                        do {
                            if log.logEndOffset < pd.logStartOffset || pd.logStartOffset < 0 {
                                try log.truncateFullyAndStart(at: max(0, pd.logStartOffset), nowMs: now)
                            } else if pd.highWatermark >= 0, log.logEndOffset > pd.highWatermark {
                                try log.truncate(to: pd.highWatermark)
                            }
                        } catch {
                            manager.logger.error("follower truncation failed", metadata: ["partition": "\(tp)", "error": "\(error)"])
                        }
                    }
                    delayedUntil[tp] = now + manager.config.replicaFetchBackoffMs
                    continue
                }
                do {
                    if pd.divergingEpoch.epoch >= 0 || pd.divergingEpoch.endOffset >= 0 {
                        let local = log.endOffset(forLeaderEpoch: pd.divergingEpoch.epoch)
                        var to = pd.divergingEpoch.endOffset
                        if local.epoch == pd.divergingEpoch.epoch { to = min(to, local.endOffset) } else if local.epoch >= 0 { to = min(to, local.endOffset) }
                        to = max(to, log.logStartOffset)
                        if to < log.logEndOffset {
                            manager.logger.info("truncating a diverging follower log", metadata: ["partition": "\(tp)", "to": "\(to)", "from": "\(log.logEndOffset)"])
                            try log.truncate(to: to)
                        }
                        continue
                    }
                    if let records = pd.records, records.readableBytes > 0 {
                        _ = try log.appendAsFollower(records, leaderEpoch: entry.leaderEpoch, nowMs: now)
                    }
                    if pd.logStartOffset > log.logStartOffset, pd.logStartOffset <= log.logEndOffset {
                        _ = try log.deleteRecords(before: pd.logStartOffset)
                    }
                    let hw = min(pd.highWatermark, log.logEndOffset)
                    if hw > log.highWatermark { log.highWatermark = hw }
                    entry.partition.notifyWaiters()
                } catch {
                    if !(error is LogAppendError) { manager.replicaManager?.logDirHealth.noteFailure(error, nowMs: now) }
                    manager.logger.error("follower append failed", metadata: ["partition": "\(tp)", "error": "\(error)"])
                    delayedUntil[tp] = now + manager.config.replicaFetchBackoffMs
                }
            }
        }
        return backoff
    }
}
