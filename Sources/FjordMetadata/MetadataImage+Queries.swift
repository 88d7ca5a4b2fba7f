import FjordWire

extension MetadataImage {
    /// The topic with `id`, if it exists.
    public func topic(id: KafkaUUID) -> TopicImage? {
        guard let name = topicNamesById[id] else { return nil }
        return topics[name]
    }

    /// One partition, by topic id and index.
    public func partition(topicId: KafkaUUID, partition: Int32) -> PartitionImage? {
        topic(id: topicId)?.partitions[partition]
    }

    /// Whether `broker` is registered, unfenced and not in controlled shutdown — whether it
    /// may lead a partition or join an ISR.
    public func isActive(broker: Int32) -> Bool {
        brokers[broker]?.isActive ?? false
    }

    /// Ids of active brokers, ascending.
    public var activeBrokerIds: [Int32] {
        brokers.values.filter(\.isActive).map(\.id).sorted()
    }

    /// Every partition in a fixed order (topic name, then index), with its topic.
    public func allPartitions() -> [(topic: TopicImage, id: Int32, partition: PartitionImage)] {
        var out: [(topic: TopicImage, id: Int32, partition: PartitionImage)] = []
        for name in topics.keys.sorted() {
            guard let t = topics[name] else { continue }
            for pid in t.sortedPartitionIds {
                if let p = t.partitions[pid] { out.append((t, pid, p)) }
            }
        }
        return out
    }

    /// The partitions `broker` leads, in topic-name then index order.
    public func partitionsLed(by broker: Int32) -> [TopicIdPartition] {
        allPartitions().filter { $0.partition.leader == broker }.map { TopicIdPartition(topicId: $0.topic.id, partition: $0.id) }
    }

    /// The partitions whose ISR contains `broker`.
    public func partitions(inIsrOf broker: Int32) -> [TopicIdPartition] {
        allPartitions().filter { $0.partition.isr.contains(broker) }.map { TopicIdPartition(topicId: $0.topic.id, partition: $0.id) }
    }

    /// The partitions `broker` is a replica of.
    public func partitions(replicatedBy broker: Int32) -> [TopicIdPartition] {
        allPartitions().filter { $0.partition.replicas.contains(broker) }.map { TopicIdPartition(topicId: $0.topic.id, partition: $0.id) }
    }

    /// The partitions without a leader.
    public func leaderlessPartitions() -> [TopicIdPartition] {
        allPartitions().filter { !$0.partition.hasLeader }.map { TopicIdPartition(topicId: $0.topic.id, partition: $0.id) }
    }

    /// How every partition differs between `old` and this image: created, changed (any
    /// field) and deleted partitions, in topic-name then index order. A broker applies these
    /// to its replicas after replaying a batch of records.
    public func partitionChanges(since old: MetadataImage) -> [PartitionChange] {
        var out: [PartitionChange] = []
        var seen = Set<TopicIdPartition>()
        for (t, pid, p) in allPartitions() {
            let key = TopicIdPartition(topicId: t.id, partition: pid)
            seen.insert(key)
            let before = old.partition(topicId: t.id, partition: pid)
            if before != p {
                out.append(PartitionChange(topicName: t.name, topicId: t.id, partition: pid, old: before, new: p))
            }
        }
        for (t, pid, p) in old.allPartitions() where !seen.contains(TopicIdPartition(topicId: t.id, partition: pid)) {
            out.append(PartitionChange(topicName: t.name, topicId: t.id, partition: pid, old: p, new: nil))
        }
        return out
    }
}

/// One partition's difference between two images.
public struct PartitionChange: Sendable, Equatable {
    public var topicName: String
    public var topicId: KafkaUUID
    public var partition: Int32
    /// The partition before; nil if it was created.
    public var old: PartitionImage?
    /// The partition after; nil if its topic was deleted.
    public var new: PartitionImage?

    public init(topicName: String, topicId: KafkaUUID, partition: Int32, old: PartitionImage?, new: PartitionImage?) {
        self.topicName = topicName
        self.topicId = topicId
        self.partition = partition
        self.old = old
        self.new = new
    }
}
