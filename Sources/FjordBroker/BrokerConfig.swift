import FjordProtocol
import NIOCore

/// The broker's data-plane settings: Kafka's keys and defaults.
public struct BrokerConfig: Sendable {
    public var nodeId: Int32
    /// `min.insync.replicas` (1): the broker default; a topic's config overrides it.
    public var minInsyncReplicas: Int32 = 1
    /// `replica.lag.time.max.ms` (30000): a follower that has not caught up for this long
    /// leaves the ISR.
    public var replicaLagTimeMaxMs: Int64 = 30_000
    /// `replica.fetch.max.bytes` (1 MiB) per partition, `replica.fetch.response.max.bytes` (10 MiB).
    public var replicaFetchMaxBytes: Int32 = 1_048_576
    public var replicaFetchResponseMaxBytes: Int32 = 10 * 1_048_576
    /// `replica.fetch.wait.max.ms` (500).
    public var replicaFetchWaitMaxMs: Int32 = 500
    /// `replica.fetch.backoff.ms` (1000).
    public var replicaFetchBackoffMs: Int64 = 1000
    /// `message.max.bytes` (1048588).
    public var messageMaxBytes: Int32 = 1_048_588
    /// `fetch.max.bytes` (57671680): the most a consumer Fetch response carries.
    public var fetchMaxBytes: Int32 = 57_671_680
    /// `auto.create.topics.enable`.
    public var autoCreateTopicsEnable: Bool = true

    public init(nodeId: Int32) {
        self.nodeId = nodeId
    }
}

/// What the broker needs from the network, provided by the server: requests to the active
/// controller and to other brokers.
public protocol BrokerTransport: AnyObject, Sendable {
    /// Sends `request` to the active controller.
    func sendToController<R: KafkaRequest>(_ request: R, version: Int16) -> EventLoopFuture<any KafkaResponse>
    /// Sends `request` to broker `id` on the inter-broker listener.
    func sendToBroker<R: KafkaRequest>(_ id: Int32, _ request: R, version: Int16, timeoutMs: Int64) -> EventLoopFuture<any KafkaResponse>
}
