/// The controller's settings, with Kafka's config keys and defaults.
public struct ControllerConfig: Sendable {
    /// `node.id`: this controller's id.
    public var nodeId: Int32
    /// The cluster id (`meta.properties` `cluster.id`); brokers registering with another are refused.
    public var clusterId: String
    /// The `metadata.version` feature level a new cluster is bootstrapped with:
    /// 21 is Kafka's 3.9-IV0.
    public var metadataVersion: Int16 = 21
    /// `broker.session.timeout.ms`: a broker without a heartbeat for this long is fenced.
    public var brokerSessionTimeoutMs: Int64 = 9_000
    /// `broker.heartbeat.interval.ms`: how often brokers heartbeat (for the brokers' side).
    public var brokerHeartbeatIntervalMs: Int64 = 2_000
    /// `num.partitions`: partitions of a topic created with -1.
    public var defaultNumPartitions: Int32 = 1
    /// `default.replication.factor`: replication factor of a topic created with -1.
    public var defaultReplicationFactor: Int16 = 1
    /// `min.insync.replicas`: the cluster's default (topics may override it). Brokers enforce
    /// it on produce; the controller does not use it (Kafka uses it for KIP-966 ELR only).
    public var minInsyncReplicas: Int32 = 1
    /// `unclean.leader.election.enable`: elect a replica outside the ISR when no ISR member
    /// is alive (topics and dynamic cluster configs may override it).
    public var uncleanLeaderElectionEnable: Bool = false
    /// `auto.leader.rebalance.enable`: move leadership back to preferred replicas periodically.
    public var autoLeaderRebalanceEnable: Bool = true
    /// `leader.imbalance.check.interval.seconds` (300) in milliseconds.
    public var leaderImbalanceCheckIntervalMs: Int64 = 300_000
    /// `leader.imbalance.per.broker.percentage`: rebalance a broker's partitions when more
    /// than this percentage of those it is preferred for are led by others.
    public var leaderImbalancePerBrokerPercentage: Int32 = 10
    /// Producer ids handed out per AllocateProducerIds (Kafka's block size, 1000).
    public var producerIdBlockSize: Int32 = 1_000
    /// `delete.topic.enable`: whether DeleteTopics is allowed.
    public var deleteTopicEnable: Bool = true
    /// Whether a broker config key may be changed at runtime (IncrementalAlterConfigs /
    /// AlterConfigs on a BROKER resource). The server knows Kafka's broker keys; a key it
    /// knows that Kafka cannot reload (`log.dirs`, `node.id`, ...) is refused.
    public var isDynamicBrokerConfig: @Sendable (String) -> Bool = { _ in true }

    /// A configuration with Kafka's defaults.
    public init(nodeId: Int32, clusterId: String) {
        self.nodeId = nodeId
        self.clusterId = clusterId
    }
}
