import FjordMetadata
import FjordProtocol
import FjordRecords
import FjordStorage
import FjordWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The broker's partitions: follows the metadata image (become leader / follower / delete),
/// serves Produce, Fetch, ListOffsets, OffsetForLeaderEpoch and DeleteRecords, completes
/// delayed operations (acks=all waits for the high watermark, long-poll fetches wait for
/// data) when partitions change, keeps the ISR current through AlterPartition, and runs
/// the follower fetchers.
public final class ReplicaManager: @unchecked Sendable {
    public let config: BrokerConfig
    let logManager: LogManager
    let transport: BrokerTransport
    let group: EventLoopGroup
    let logger: Logger
    let clock: @Sendable () -> Int64
    private let lock = NIOLock()
    private var partitions: [TopicPartition: Partition] = [:]
    private var image = MetadataImage()
    private var minIsr: [String: Int32] = [:]
    let fetchers: ReplicaFetcherManager
    /// The broker epoch (for AlterPartition); set by the server once registered.
    public var brokerEpoch: @Sendable () -> Int64 = { -1 }
    /// Whether the log directories can be written (a failing broker asks to be fenced).
    public let logDirHealth: LogDirHealth
    /// Whether this broker's session with the controller is current: it heard back from a
    /// heartbeat sent less than `broker.session.timeout.ms` ago. Once that lapses the
    /// controller may have fenced it and moved its leaderships, so it stops acting as a
    /// leader (produce, consumer fetch) and as a group coordinator until a heartbeat
    /// succeeds again: a broker cut off from the controllers must not answer clients from
    /// state the rest of the cluster has moved past. Set by the server.
    public var sessionIsCurrent: @Sendable () -> Bool = { true }
    private var maintenance: RepeatedTask?

    public init(config: BrokerConfig, logManager: LogManager, transport: BrokerTransport, group: EventLoopGroup,
                clock: @escaping @Sendable () -> Int64, logger: Logger) {
        self.config = config
        self.logManager = logManager
        self.transport = transport
        self.group = group
        self.clock = clock
        self.logger = logger
        self.logDirHealth = LogDirHealth(dirs: logManager.logDirs)
        self.fetchers = ReplicaFetcherManager(config: config, transport: transport, group: group, logger: logger, clock: clock)
        fetchers.replicaManager = self
    }

    public func start() {
        let loop = group.next()
        // ISR shrink checks run every replica.lag.time.max.ms / 2, as Kafka's do; log
        // maintenance (checkpoints, flush.ms, retention) every second.
        let period = max(100, config.replicaLagTimeMaxMs / 2)
        var lastIsrCheck: Int64 = 0
        maintenance = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let now = self.clock()
            if now - lastIsrCheck >= period {
                lastIsrCheck = now
                self.checkIsr()
            }
            do {
                try self.logManager.runMaintenance(nowMs: now)
            } catch {
                self.logger.error("log maintenance failed", metadata: ["error": "\(error)"])
            }
        }
    }

    public func shutdown() {
        maintenance?.cancel()
        fetchers.shutdown()
        do {
            try logManager.shutdown()
        } catch {
            logger.error("log manager shutdown failed", metadata: ["error": "\(error)"])
        }
    }

    func partition(_ tp: TopicPartition) -> Partition? { lock.withLock { partitions[tp] } }

    public var currentImage: MetadataImage { lock.withLock { image } }

    // MARK: metadata

    /// Applies a new metadata image: creates logs for partitions this broker now hosts,
    /// makes it leader or follower as the image says, and deletes logs of partitions it no
    /// longer hosts (deleted topics, reassigned replicas).
    public func applyImage(_ newImage: MetadataImage) {
        let now = clock()
        let me = config.nodeId
        var wanted: [TopicPartition: (KafkaUUID, PartitionImage)] = [:]
        for (name, topic) in newImage.topics {
            for (pid, p) in topic.partitions where p.replicas.contains(me) {
                wanted[TopicPartition(name, pid)] = (topic.id, p)
            }
        }
        let (existing, removed): ([TopicPartition: Partition], [Partition]) = lock.withLock {
            image = newImage
            var mins: [String: Int32] = [:]
            for (name, cfg) in newImage.topicConfigs {
                if let v = cfg["min.insync.replicas"].flatMap(Int32.init) { mins[name] = v }
            }
            minIsr = mins
            var gone: [Partition] = []
            for (tp, p) in partitions where wanted[tp] == nil || wanted[tp]?.0 != p.topicId {
                gone.append(p)
                partitions[tp] = nil
            }
            return (partitions, gone)
        }
        for p in removed {
            fetchers.remove(p.topicPartition)
            p.notifyWaiters()
            do {
                try logManager.deleteLog(p.topicPartition)
                logger.info("deleted the log of a partition this broker no longer hosts", metadata: ["partition": "\(p.topicPartition)"])
            } catch {
                logger.error("cannot delete log", metadata: ["partition": "\(p.topicPartition)", "error": "\(error)"])
            }
        }
        for (tp, (topicId, pi)) in wanted.sorted(by: { $0.key.description < $1.key.description }) {
            var part = existing[tp]
            if part == nil {
                do {
                    let cfg = try LogConfig(overrides: newImage.topicConfigs[tp.topic] ?? [:], base: logManager.defaultConfig)
                    if let old = logManager.log(for: tp), (try? PartitionMetadataFile.read(dir: old.dir)) ?? nil != topicId {
                        // A log left from an earlier topic of the same name.
                        try logManager.deleteLog(tp)
                    }
                    let log = try logManager.getOrCreateLog(tp, topicId: topicId, config: cfg, nowMs: now)
                    let p = Partition(topicPartition: tp, topicId: topicId, log: log, localId: me)
                    lock.withLock { partitions[tp] = p }
                    part = p
                } catch {
                    logger.error("cannot open the log of a hosted partition", metadata: ["partition": "\(tp)", "error": "\(error)"])
                    continue
                }
            }
            guard let p = part else { continue }
            let changed = p.update(leader: pi.leader, leaderEpoch: pi.leaderEpoch, partitionEpoch: pi.partitionEpoch,
                                   replicas: pi.replicas, isr: pi.isr, nowMs: now)
            if pi.leader == me || pi.leader < 0 {
                if changed { fetchers.remove(tp) }
                if changed, pi.leader == me {
                    logger.info("became leader", metadata: ["partition": "\(tp)", "leaderEpoch": "\(pi.leaderEpoch)", "isr": "\(pi.isr)"])
                }
            } else if changed {
                fetchers.remove(tp)
                let endpoint = newImage.brokers[pi.leader]
                fetchers.add(p, leader: pi.leader, leaderEpoch: pi.leaderEpoch, endpointKnown: endpoint != nil)
                logger.info("became follower", metadata: ["partition": "\(tp)", "leader": "\(pi.leader)", "leaderEpoch": "\(pi.leaderEpoch)"])
            }
        }
    }

    func minInsyncReplicas(_ topic: String) -> Int32 {
        lock.withLock { minIsr[topic] } ?? config.minInsyncReplicas
    }

    /// The leader and epoch clients should use for `tp`, from the image.
    func leaderHint(_ tp: TopicPartition) -> (leaderId: Int32, leaderEpoch: Int32) {
        let img = currentImage
        guard let p = img.topics[tp.topic]?.partitions[tp.partition] else { return (-1, -1) }
        return (p.leader, p.leaderEpoch)
    }

    // MARK: ISR

    private func checkIsr() {
        let now = clock()
        let (all, live) = lock.withLock { () -> ([Partition], Set<Int32>) in
            (Array(partitions.values), Set(image.brokers.values.filter { !$0.fenced }.map(\.id)))
        }
        for p in all { maybeChangeIsr(p, nowMs: now, live: live) }
    }

    func maybeChangeIsr(_ p: Partition, nowMs: Int64, live: Set<Int32>? = nil) {
        let liveSet = live ?? lock.withLock { Set(image.brokers.values.filter { !$0.fenced }.map(\.id)) }
        guard let change = p.isrChange(nowMs: nowMs, lagMs: config.replicaLagTimeMaxMs, liveBrokers: liveSet) else { return }
        var pd = AlterPartitionRequest.PartitionData()
        pd.partitionIndex = p.topicPartition.partition
        pd.leaderEpoch = change.leaderEpoch
        pd.partitionEpoch = change.partitionEpoch
        // v3 names ISR members with their broker epochs (KIP-903); v0-2 carried bare ids.
        let epochs = lock.withLock { image.brokers }
        pd.newIsrWithEpochs = change.newIsr.map { id in
            var b = AlterPartitionRequest.BrokerState()
            b.brokerId = id
            b.brokerEpoch = epochs[id]?.epoch ?? -1
            return b
        }
        var td = AlterPartitionRequest.TopicData()
        td.topicId = p.topicId
        td.partitions = [pd]
        var req = AlterPartitionRequest()
        req.brokerId = config.nodeId
        req.brokerEpoch = brokerEpoch()
        req.topics = [td]
        logger.info("proposing an ISR change", metadata: ["partition": "\(p.topicPartition)", "isr": "\(change.newIsr)"])
        transport.sendToController(req, version: 3).whenComplete { result in
            switch result {
            case let .success(resp as AlterPartitionResponse):
                let part = resp.topics.first?.partitions.first
                if resp.errorCode == 0, let part, part.errorCode == 0 {
                    p.alterPartitionCompleted(isr: part.isr, leaderEpoch: part.leaderEpoch, partitionEpoch: part.partitionEpoch)
                } else {
                    let code = resp.errorCode != 0 ? resp.errorCode : (part?.errorCode ?? -1)
                    self.logger.info("ISR change not accepted", metadata: ["partition": "\(p.topicPartition)", "error": "\(ErrorCode(rawValue: code)?.name ?? "\(code)")"])
                    p.alterPartitionCompleted(isr: nil, leaderEpoch: -1, partitionEpoch: -1, retryAtMs: self.clock() + 1000)
                }
            case let .success(other):
                self.logger.warning("unexpected AlterPartition answer", metadata: ["partition": "\(p.topicPartition)", "response": "\(type(of: other))"])
                p.alterPartitionCompleted(isr: nil, leaderEpoch: -1, partitionEpoch: -1, retryAtMs: self.clock() + 1000)
            case let .failure(error):
                self.logger.info("AlterPartition failed; retrying later", metadata: ["partition": "\(p.topicPartition)", "error": "\(error)"])
                p.alterPartitionCompleted(isr: nil, leaderEpoch: -1, partitionEpoch: -1, retryAtMs: self.clock() + 1000)
            }
        }
    }
}
