import FjordProtocol
import FjordWire

/// The cluster metadata as of one offset of the metadata log: what brokers, standby
/// controllers and the active controller all derive, by `replay`, from the same records.
///
/// The image changes only through `replay(_:offset:)`, which applies one record exactly as
/// Kafka's `MetadataDelta` does, so every node that replays the same records holds an equal
/// image.
public struct MetadataImage: Sendable, Equatable {
    /// Registered brokers by id.
    public internal(set) var brokers: [Int32: BrokerRegistrationInfo] = [:]
    /// Registered controllers by id.
    public internal(set) var controllers: [Int32: ControllerInfo] = [:]
    /// Topics by name.
    public internal(set) var topics: [String: TopicImage] = [:]
    /// Topic names by topic id.
    public internal(set) var topicNamesById: [KafkaUUID: String] = [:]
    /// Dynamic topic configs (`ConfigRecord`s with resource type TOPIC) by topic name.
    public internal(set) var topicConfigs: [String: [String: String]] = [:]
    /// Dynamic broker configs by resource name: "" is the cluster-wide default, otherwise
    /// the broker id as text.
    public internal(set) var brokerConfigs: [String: [String: String]] = [:]
    /// Finalized feature levels, e.g. `metadata.version`.
    public internal(set) var features: [String: Int16] = [:]
    /// The first producer id of the next block to hand out.
    public internal(set) var nextProducerId: Int64 = 0
    /// The offset of the last replayed record, -1 before any.
    public internal(set) var offset: Int64 = -1

    /// An empty image (nothing replayed).
    public init() {}

    /// The feature name of the metadata version.
    public static let metadataVersionFeature = "metadata.version"

    /// The finalized `metadata.version`, if the log has been bootstrapped.
    public var metadataVersion: Int16? { features[Self.metadataVersionFeature] }
}

/// A feature's supported version range as a node declares it (min may exceed max in bad
/// input; nothing here traps on it).
public struct FeatureRange: Sendable, Hashable {
    public var min: Int16
    public var max: Int16

    public init(min: Int16, max: Int16) {
        self.min = min
        self.max = max
    }

    /// Whether `level` lies within the range.
    public func contains(_ level: Int16) -> Bool { level >= min && level <= max }
}

/// A listener a broker or controller can be reached on.
public struct Endpoint: Sendable, Hashable {
    /// The listener name, e.g. "PLAINTEXT".
    public var name: String
    public var host: String
    public var port: UInt16
    /// Kafka's security protocol id: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL.
    public var securityProtocol: Int16

    public init(name: String, host: String, port: UInt16, securityProtocol: Int16) {
        self.name = name
        self.host = host
        self.port = port
        self.securityProtocol = securityProtocol
    }
}

/// A broker's registration (`RegisterBrokerRecord`, then fencing and shutdown changes).
public struct BrokerRegistrationInfo: Sendable, Equatable {
    public var id: Int32
    /// The broker epoch: the offset of its `RegisterBrokerRecord`.
    public var epoch: Int64
    public var incarnationId: KafkaUUID
    public var endpoints: [Endpoint]
    public var rack: String?
    /// Fenced brokers lead nothing and are in no ISR (except as the last member of one).
    public var fenced: Bool
    public var inControlledShutdown: Bool
    /// Supported feature ranges the broker registered with.
    public var supportedFeatures: [String: FeatureRange]
    /// The broker's available log directories.
    public var logDirs: [KafkaUUID]

    public init(id: Int32, epoch: Int64, incarnationId: KafkaUUID, endpoints: [Endpoint] = [], rack: String? = nil,
                fenced: Bool = true, inControlledShutdown: Bool = false,
                supportedFeatures: [String: FeatureRange] = [:], logDirs: [KafkaUUID] = []) {
        self.id = id
        self.epoch = epoch
        self.incarnationId = incarnationId
        self.endpoints = endpoints
        self.rack = rack
        self.fenced = fenced
        self.inControlledShutdown = inControlledShutdown
        self.supportedFeatures = supportedFeatures
        self.logDirs = logDirs
    }

    /// Unfenced and not shutting down: may lead partitions and join ISRs.
    public var isActive: Bool { !fenced && !inControlledShutdown }
}

/// A controller's registration (`RegisterControllerRecord`).
public struct ControllerInfo: Sendable, Equatable {
    public var id: Int32
    public var incarnationId: KafkaUUID
    public var zkMigrationReady: Bool
    public var endpoints: [Endpoint]
    public var supportedFeatures: [String: FeatureRange]

    public init(id: Int32, incarnationId: KafkaUUID, zkMigrationReady: Bool = false, endpoints: [Endpoint] = [],
                supportedFeatures: [String: FeatureRange] = [:]) {
        self.id = id
        self.incarnationId = incarnationId
        self.zkMigrationReady = zkMigrationReady
        self.endpoints = endpoints
        self.supportedFeatures = supportedFeatures
    }
}

/// A topic and its partitions.
public struct TopicImage: Sendable, Equatable {
    public var name: String
    public var id: KafkaUUID
    public var partitions: [Int32: PartitionImage]

    public init(name: String, id: KafkaUUID, partitions: [Int32: PartitionImage] = [:]) {
        self.name = name
        self.id = id
        self.partitions = partitions
    }

    /// Partition ids in ascending order.
    public var sortedPartitionIds: [Int32] { partitions.keys.sorted() }
}

/// One partition's replica set, ISR and leadership (`PartitionRecord` merged with the
/// `PartitionChangeRecord`s that followed).
public struct PartitionImage: Sendable, Equatable {
    /// The replicas in preferred order: the first is the preferred leader.
    public var replicas: [Int32]
    public var isr: [Int32]
    public var removingReplicas: [Int32]
    public var addingReplicas: [Int32]
    /// The leader, or -1 (`PartitionImage.noLeader`).
    public var leader: Int32
    /// 0 recovered, 1 recovering from an unclean election (KIP-704).
    public var leaderRecoveryState: Int8
    /// Incremented on every leader change.
    public var leaderEpoch: Int32
    /// Incremented on every change of the partition.
    public var partitionEpoch: Int32
    /// The log directory of each replica (KIP-858), in replica order; may be empty.
    public var directories: [KafkaUUID]

    /// No leader.
    public static let noLeader: Int32 = -1
    /// `PartitionChangeRecord.leader` meaning "unchanged".
    public static let noLeaderChange: Int32 = -2

    public init(replicas: [Int32], isr: [Int32], leader: Int32, leaderEpoch: Int32 = 0, partitionEpoch: Int32 = 0,
                leaderRecoveryState: Int8 = 0, removingReplicas: [Int32] = [], addingReplicas: [Int32] = [],
                directories: [KafkaUUID] = []) {
        self.replicas = replicas
        self.isr = isr
        self.removingReplicas = removingReplicas
        self.addingReplicas = addingReplicas
        self.leader = leader
        self.leaderRecoveryState = leaderRecoveryState
        self.leaderEpoch = leaderEpoch
        self.partitionEpoch = partitionEpoch
        self.directories = directories
    }

    /// The preferred leader (first replica), if any.
    public var preferredLeader: Int32? { replicas.first }
    /// Whether the partition has a leader.
    public var hasLeader: Bool { leader != Self.noLeader }
    /// Whether the preferred replica leads.
    public var hasPreferredLeader: Bool { leader != Self.noLeader && leader == replicas.first }
}

/// A partition named by topic id and index.
public struct TopicIdPartition: Sendable, Hashable, CustomStringConvertible {
    public var topicId: KafkaUUID
    public var partition: Int32

    public init(topicId: KafkaUUID, partition: Int32) {
        self.topicId = topicId
        self.partition = partition
    }

    public var description: String { "\(topicId):\(partition)" }
}
