import FjordMetadata
import FjordProtocol
import FjordWire

/// The active controller's logic, after Kafka's `QuorumController`: sans-I/O, single-owner.
///
/// Every operation *generates* metadata records and a response from the current image, then
/// immediately *replays* its own records into that image — with `MetadataImage.replay`, the
/// code standbys and brokers run — at the offsets the shell will append them at, so the next
/// operation sees the effect of the previous one. The shell appends each result's records to
/// the metadata log as one batch and sends the response once they commit. If the controller
/// loses leadership before its records commit, the shell discards it and later builds a
/// fresh one from the last committed image.
///
/// Time comes in as `nowMs`; randomness (topic ids, placement) from the seed. The class is
/// not thread-safe: one serial executor owns it.
public final class QuorumController {
    /// The configuration.
    public let config: ControllerConfig
    /// The image with every record generated so far replayed (committed or not).
    public private(set) var image: MetadataImage
    /// The log offset the next generated record will have.
    public private(set) var nextWriteOffset: Int64

    var rng: SeededRandom
    /// Heartbeat state of unfenced brokers (and of brokers in controlled shutdown).
    var sessions: [Int32: BrokerSession] = [:]
    /// Brokers whose heartbeat connection closed, and when: fenced if no heartbeat follows
    /// within one heartbeat interval.
    var suspects: [Int32: Int64] = [:]
    /// When the next preferred-leader imbalance check is due.
    var nextImbalanceCheckMs: Int64

    /// What the controller tracks per live broker; not part of the metadata log, so a new
    /// active controller starts every unfenced broker's session afresh.
    struct BrokerSession {
        var lastContactMs: Int64
        /// The metadata offset the broker last reported, -1 before its first heartbeat.
        var metadataOffset: Int64 = -1
        /// The offset of the last record that moved the broker into controlled shutdown.
        var controlledShutdownOffset: Int64?
    }

    /// A controller over `image` (the last committed image; empty for a new cluster).
    /// `nextWriteOffset` is where the shell's next append lands (after the leader's
    /// LeaderChange control record); by default the offset after the image's.
    public init(config: ControllerConfig, image: MetadataImage = MetadataImage(), nextWriteOffset: Int64? = nil,
                seed: UInt64, nowMs: Int64) {
        self.config = config
        self.image = image
        self.nextWriteOffset = nextWriteOffset ?? (image.offset + 1)
        self.rng = SeededRandom(seed: seed ^ UInt64(UInt32(bitPattern: config.nodeId)))
        self.nextImbalanceCheckMs = nowMs + config.leaderImbalanceCheckIntervalMs
        for b in image.brokers.values where !b.fenced {
            sessions[b.id] = BrokerSession(lastContactMs: nowMs)
        }
    }

    /// Applies a committed record written by another controller (standby mode).
    public func replay(_ record: MetadataRecord, offset: Int64) {
        image.replay(record, offset: offset)
        nextWriteOffset = max(nextWriteOffset, offset + 1)
        switch record {
        case let .registerBroker(r): sessions[r.brokerId] = nil
        case let .unregisterBroker(r): sessions[r.brokerId] = nil
        default: break
        }
    }

    /// The records that initialize an empty log: the `metadata.version` feature level —
    /// `metadataVersion` (e.g. the one the storage was formatted with) or the configured
    /// one. Empty if the log already has it. Call when becoming active.
    public func bootstrapRecords(metadataVersion: Int16? = nil) -> [MetadataRecord] {
        guard image.metadataVersion == nil else { return [] }
        var r = FeatureLevelRecord()
        r.name = MetadataImage.metadataVersionFeature
        r.featureLevel = metadataVersion ?? config.metadataVersion
        let records: [MetadataRecord] = [.featureLevel(r)]
        commit(records)
        return records
    }

    // MARK: internals

    /// An error for one item of a request: a Kafka error code and message.
    struct ApiError: Error {
        var code: ErrorCode
        var message: String?

        init(_ code: ErrorCode, _ message: String? = nil) {
            self.code = code
            self.message = message
        }
    }

    /// Replays generated records at the next write offsets.
    func commit(_ records: [MetadataRecord]) {
        for r in records {
            image.replay(r, offset: nextWriteOffset)
            nextWriteOffset += 1
        }
    }

    /// Replays `records` and appends them to `out`.
    func emit(_ records: [MetadataRecord], into out: inout [MetadataRecord]) {
        commit(records)
        out.append(contentsOf: records)
    }

    /// A fresh topic id: random, never zero or one, never an existing topic's.
    func newTopicId() -> KafkaUUID {
        while true {
            let id = KafkaUUID.random(using: &rng)
            if image.topicNamesById[id] == nil { return id }
        }
    }

    /// Whether unclean leader election is enabled for `topic`: the topic's config, then this
    /// node's and the cluster's dynamic broker configs, then the static setting.
    func uncleanElectionEnabled(topic: String) -> Bool {
        let key = "unclean.leader.election.enable"
        let value = image.topicConfigs[topic]?[key] ?? image.brokerConfigs[String(config.nodeId)]?[key]
            ?? image.brokerConfigs[""]?[key]
        guard let v = value else { return config.uncleanLeaderElectionEnable }
        return v.lowercased() == "true"
    }

    /// Kafka's default log directory of a broker's replica: its only directory; UNASSIGNED
    /// (zero) when it has several; MIGRATING when it registered none.
    func defaultDirectory(broker: Int32) -> KafkaUUID {
        guard let b = image.brokers[broker] else { return .zero }
        if b.logDirs.isEmpty { return KafkaUUID(high: 0, low: 2) }
        if b.logDirs.count == 1 { return b.logDirs[0] }
        return .zero
    }

    /// Partition changes that take `brokerToRemove` out of ISRs and leaderships, or let
    /// `brokerToAdd` (about to be unfenced) lead leaderless partitions it is eligible for.
    func leaderAndIsrUpdates(remove brokerToRemove: Int32? = nil, add brokerToAdd: Int32? = nil,
                             partitions: [(topic: TopicImage, id: Int32, partition: PartitionImage)]) -> [MetadataRecord] {
        var out: [MetadataRecord] = []
        let image = self.image
        let acceptable: (Int32) -> Bool = { b in
            if b == brokerToAdd { return true }
            if b == brokerToRemove { return false }
            return image.isActive(broker: b)
        }
        for (topic, pid, p) in partitions {
            var builder = PartitionChangeBuilder(partition: p, topicId: topic.id, partitionId: pid, isAcceptableLeader: acceptable)
            builder.election = uncleanElectionEnabled(topic: topic.name) ? .unclean : .online
            if let r = brokerToRemove { builder.targetIsr = p.isr.filter { $0 != r } }
            if let rec = builder.build() { out.append(.partitionChange(rec)) }
        }
        return out
    }

    /// Partitions whose ISR contains `broker`.
    func partitionsWithBrokerInIsr(_ broker: Int32) -> [(topic: TopicImage, id: Int32, partition: PartitionImage)] {
        image.allPartitions().filter { $0.partition.isr.contains(broker) }
    }

    /// Partitions without a leader.
    func partitionsWithoutLeader() -> [(topic: TopicImage, id: Int32, partition: PartitionImage)] {
        image.allPartitions().filter { !$0.partition.hasLeader }
    }
}
