import FjordProtocol
import FjordWire

/// A topic and partition.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// Kafka's text form, `topic-partition`.
    public var description: String { "\(topic)-\(partition)" }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition
    }
}

/// A broker's address.
public struct BrokerNode: Hashable, Sendable {
    public var id: Int32
    public var host: String
    public var port: Int
    public var rack: String?

    public init(id: Int32, host: String, port: Int, rack: String? = nil) {
        self.id = id
        self.host = host
        self.port = port
        self.rack = rack
    }

    /// `host:port`.
    public var address: String { "\(host):\(port)" }
}

/// One partition of a topic as a Metadata response describes it.
public struct PartitionInfo: Hashable, Sendable {
    public var partition: Int32
    /// The leader's id, or -1 when there is none.
    public var leader: Int32
    public var leaderEpoch: Int32
    public var replicas: [Int32]
    public var isr: [Int32]
    public var offlineReplicas: [Int32]
    public var error: ErrorCode?

    public init(partition: Int32, leader: Int32, leaderEpoch: Int32 = -1, replicas: [Int32], isr: [Int32],
                offlineReplicas: [Int32] = [], error: ErrorCode? = nil) {
        self.partition = partition
        self.leader = leader
        self.leaderEpoch = leaderEpoch
        self.replicas = replicas
        self.isr = isr
        self.offlineReplicas = offlineReplicas
        self.error = error
    }

    /// Fewer in-sync replicas than replicas.
    public var isUnderReplicated: Bool { isr.count < replicas.count }
}

/// A topic as a Metadata response describes it.
public struct TopicInfo: Hashable, Sendable {
    public var name: String
    public var id: KafkaUUID
    public var isInternal: Bool
    /// Sorted by partition index.
    public var partitions: [PartitionInfo]
    public var error: ErrorCode?

    public init(name: String, id: KafkaUUID = .zero, isInternal: Bool = false, partitions: [PartitionInfo], error: ErrorCode? = nil) {
        self.name = name
        self.id = id
        self.isInternal = isInternal
        self.partitions = partitions.sorted { $0.partition < $1.partition }
        self.error = error
    }

    /// The replica count of the first partition (what `kafka-topics` reports).
    public var replicationFactor: Int { partitions.first?.replicas.count ?? 0 }
}

/// A snapshot of the cluster: brokers, controller, topics.
public struct ClusterMetadata: Sendable, Hashable {
    public var clusterId: String?
    public var controllerId: Int32
    public var brokers: [Int32: BrokerNode]
    public var topics: [String: TopicInfo]

    public init(clusterId: String? = nil, controllerId: Int32 = -1, brokers: [Int32: BrokerNode] = [:], topics: [String: TopicInfo] = [:]) {
        self.clusterId = clusterId
        self.controllerId = controllerId
        self.brokers = brokers
        self.topics = topics
    }

    /// The metadata a Metadata response holds.
    public init(_ r: MetadataResponse) {
        var brokers: [Int32: BrokerNode] = [:]
        for b in r.brokers { brokers[b.nodeId] = BrokerNode(id: b.nodeId, host: b.host, port: Int(b.port), rack: b.rack) }
        var topics: [String: TopicInfo] = [:]
        for t in r.topics {
            guard let name = t.name else { continue }
            let parts = t.partitions.map { p in
                PartitionInfo(partition: p.partitionIndex, leader: p.leaderId, leaderEpoch: p.leaderEpoch,
                              replicas: p.replicaNodes, isr: p.isrNodes, offlineReplicas: p.offlineReplicas,
                              error: p.errorCode == 0 ? nil : ErrorCode(rawValue: p.errorCode) ?? .unknownServerError)
            }
            topics[name] = TopicInfo(name: name, id: t.topicId, isInternal: t.isInternal, partitions: parts,
                                     error: t.errorCode == 0 ? nil : ErrorCode(rawValue: t.errorCode) ?? .unknownServerError)
        }
        self.init(clusterId: r.clusterId, controllerId: r.controllerId, brokers: brokers, topics: topics)
    }

    /// Merges a newer response for some topics into this snapshot (brokers and controller
    /// are replaced; topics named in `newer` are replaced, others kept).
    public mutating func merge(_ newer: ClusterMetadata, allTopics: Bool) {
        clusterId = newer.clusterId ?? clusterId
        controllerId = newer.controllerId
        brokers = newer.brokers
        if allTopics {
            topics = newer.topics
        } else {
            for (k, v) in newer.topics { topics[k] = v }
        }
    }

    /// The partition's leader id, or nil when unknown.
    public func leader(of tp: TopicPartition) -> Int32? {
        guard let t = topics[tp.topic], let p = t.partitions.first(where: { $0.partition == tp.partition }), p.leader >= 0 else { return nil }
        return p.leader
    }

    /// Sorted broker ids.
    public var brokerIds: [Int32] { brokers.keys.sorted() }
}
