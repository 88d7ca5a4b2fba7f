import FjordProtocol
import FjordWire
import NIOCore

/// Kafka's config resource types (DescribeConfigs / AlterConfigs).
public enum ConfigResourceType: Int8, Sendable, CaseIterable {
    case unknown = 0
    case topic = 2
    case broker = 4
    case brokerLogger = 8
    case clientMetrics = 16
    case group = 32
}

/// Where a config value comes from (Kafka's `ConfigSource`).
public enum ConfigSource: Int8, Sendable, CaseIterable {
    case unknown = 0
    case dynamicTopicConfig = 1
    case dynamicBrokerConfig = 2
    case dynamicDefaultBrokerConfig = 3
    case staticBrokerConfig = 4
    case defaultConfig = 5
    case dynamicBrokerLoggerConfig = 6
    case clientMetricsConfig = 7
    case groupConfig = 8

    /// The Java enum name Kafka's tools print, e.g. `DYNAMIC_TOPIC_CONFIG`.
    public var name: String {
        switch self {
        case .unknown: return "UNKNOWN"
        case .dynamicTopicConfig: return "DYNAMIC_TOPIC_CONFIG"
        case .dynamicBrokerConfig: return "DYNAMIC_BROKER_CONFIG"
        case .dynamicDefaultBrokerConfig: return "DYNAMIC_DEFAULT_BROKER_CONFIG"
        case .staticBrokerConfig: return "STATIC_BROKER_CONFIG"
        case .defaultConfig: return "DEFAULT_CONFIG"
        case .dynamicBrokerLoggerConfig: return "DYNAMIC_BROKER_LOGGER_CONFIG"
        case .clientMetricsConfig: return "CLIENT_METRICS_CONFIG"
        case .groupConfig: return "GROUP_CONFIG"
        }
    }
}

/// A synonym of a config entry: the same setting under another name or at another level.
public struct ConfigSynonym: Sendable, Hashable {
    public var name: String
    public var value: String?
    public var source: ConfigSource

    public init(name: String, value: String?, source: ConfigSource) {
        self.name = name
        self.value = value
        self.source = source
    }
}

/// One config entry of a DescribeConfigs answer.
public struct ConfigEntry: Sendable, Hashable {
    public var name: String
    public var value: String?
    public var source: ConfigSource
    public var isSensitive: Bool
    public var isReadOnly: Bool
    public var synonyms: [ConfigSynonym]

    public init(name: String, value: String?, source: ConfigSource, isSensitive: Bool = false, isReadOnly: Bool = false,
                synonyms: [ConfigSynonym] = []) {
        self.name = name
        self.value = value
        self.source = source
        self.isSensitive = isSensitive
        self.isReadOnly = isReadOnly
        self.synonyms = synonyms
    }

    /// Whether the value is the built-in default (`kafka-topics --describe` hides those).
    public var isDefault: Bool { source == .defaultConfig }
}

/// An operation of IncrementalAlterConfigs.
public enum AlterConfigOp: Sendable, Hashable {
    case set(String, String)
    case delete(String)
    case append(String, String)
    case subtract(String, String)

    var wire: IncrementalAlterConfigsRequest.AlterableConfig {
        var c = IncrementalAlterConfigsRequest.AlterableConfig()
        switch self {
        case let .set(n, v): c.name = n; c.configOperation = 0; c.value = v
        case let .delete(n): c.name = n; c.configOperation = 1; c.value = nil
        case let .append(n, v): c.name = n; c.configOperation = 2; c.value = v
        case let .subtract(n, v): c.name = n; c.configOperation = 3; c.value = v
        }
        return c
    }
}

/// A topic to create.
public struct NewTopic: Sendable, Hashable {
    public var name: String
    /// -1: the broker's `num.partitions`.
    public var partitions: Int32
    /// -1: the broker's `default.replication.factor`.
    public var replicationFactor: Int16
    public var configs: [(String, String)]
    /// Explicit replica lists per partition (partition index = array index); empty for placement by the controller.
    public var assignments: [[Int32]]

    public init(name: String, partitions: Int32 = -1, replicationFactor: Int16 = -1, configs: [(String, String)] = [],
                assignments: [[Int32]] = []) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
        self.assignments = assignments
    }

    public static func == (a: NewTopic, b: NewTopic) -> Bool {
        a.name == b.name && a.partitions == b.partitions && a.replicationFactor == b.replicationFactor
            && a.configs.map { "\($0.0)=\($0.1)" } == b.configs.map { "\($0.0)=\($0.1)" } && a.assignments == b.assignments
    }

    public func hash(into h: inout Hasher) { h.combine(name) }
}

/// The result of one partition's leader election.
public struct ElectionResult: Sendable, Hashable {
    public var partition: TopicPartition
    /// nil: elected; `.electionNotNeeded`: the preferred/a valid leader already leads.
    public var error: ErrorCode?
    public var errorCode: Int16
    public var message: String?

    public init(partition: TopicPartition, error: ErrorCode?, errorCode: Int16, message: String?) {
        self.partition = partition
        self.error = error
        self.errorCode = errorCode
        self.message = message
    }
}

/// The cluster as DescribeCluster reports it.
public struct ClusterDescription: Sendable, Hashable {
    public var clusterId: String
    public var controllerId: Int32
    public var brokers: [BrokerNode]
}

/// Admin operations (Kafka's `Admin` client): topics, partitions, configs, leader election,
/// cluster description. Requests go to any broker (brokers forward controller requests to
/// the active controller), broker configs to that broker.
public final class KafkaAdmin: Sendable {
    public let client: KafkaClient
    /// The `timeoutMs` admin requests carry (how long the controller may take).
    public let operationTimeoutMs: Int32

    public init(client: KafkaClient, operationTimeoutMs: Int32 = 30_000) {
        self.client = client
        self.operationTimeoutMs = operationTimeoutMs
    }

    // MARK: topics

    /// Lists topic names (internal topics included when `includeInternal`).
    public func listTopics(includeInternal: Bool = true) -> EventLoopFuture<[String]> {
        client.refreshMetadata(topics: nil).map { md in
            md.topics.values.filter { includeInternal || !$0.isInternal }.map(\.name).sorted()
        }
    }

    /// Metadata for all topics (or the named ones).
    public func describeTopics(_ names: [String]? = nil) -> EventLoopFuture<ClusterMetadata> {
        client.refreshMetadata(topics: names)
    }

    /// Creates `topic`; the result carries the id, partition count and replication factor.
    public func createTopic(_ topic: NewTopic, validateOnly: Bool = false) -> EventLoopFuture<CreateTopicsResponse.CreatableTopicResult> {
        let timeout = operationTimeoutMs
        return client.send(to: .any, expecting: CreateTopicsResponse.self, timeoutMs: Int64(timeout) + 5_000) { _ in
            var r = CreateTopicsRequest()
            var t = CreateTopicsRequest.CreatableTopic()
            t.name = topic.name
            t.numPartitions = topic.assignments.isEmpty ? topic.partitions : -1
            t.replicationFactor = topic.assignments.isEmpty ? topic.replicationFactor : -1
            t.assignments = topic.assignments.enumerated().map { i, ids in
                var a = CreateTopicsRequest.CreatableReplicaAssignment()
                a.partitionIndex = Int32(i)
                a.brokerIds = ids
                return a
            }
            t.configs = topic.configs.map { k, v in
                var c = CreateTopicsRequest.CreatableTopicConfig()
                c.name = k
                c.value = v
                return c
            }
            r.topics = [t]
            r.timeoutMs = timeout
            r.validateOnly = validateOnly
            return r
        }.flatMapThrowing { resp in
            guard let res = resp.topics.first(where: { $0.name == topic.name }) else {
                throw KafkaClientError.invalidArgument("CreateTopics answer did not mention \(topic.name)")
            }
            if let e = KafkaClientError.check(res.errorCode, res.errorMessage) { throw e }
            return res
        }
    }

    /// Deletes topics by name; the result maps each name to its error (nil: deleted).
    public func deleteTopics(_ names: [String]) -> EventLoopFuture<[String: KafkaClientError?]> {
        let timeout = operationTimeoutMs
        return client.send(to: .any, expecting: DeleteTopicsResponse.self, timeoutMs: Int64(timeout) + 5_000) { v in
            var r = DeleteTopicsRequest()
            if v >= 6 {
                r.topics = names.map { n in
                    var s = DeleteTopicsRequest.DeleteTopicState()
                    s.name = n
                    return s
                }
            } else {
                r.topicNames = names
            }
            r.timeoutMs = timeout
            return r
        }.map { resp in
            var out: [String: KafkaClientError?] = [:]
            for n in names { out[n] = .some(nil) }
            for t in resp.responses {
                guard let n = t.name else { continue }
                out[n] = .some(KafkaClientError.check(t.errorCode, t.errorMessage))
            }
            return out
        }
    }

    /// Grows `topic` to `count` partitions.
    public func createPartitions(topic: String, count: Int32, assignments: [[Int32]]? = nil, validateOnly: Bool = false) -> EventLoopFuture<Void> {
        let timeout = operationTimeoutMs
        return client.send(to: .any, expecting: CreatePartitionsResponse.self, timeoutMs: Int64(timeout) + 5_000) { _ in
            var r = CreatePartitionsRequest()
            var t = CreatePartitionsRequest.CreatePartitionsTopic()
            t.name = topic
            t.count = count
            if let a = assignments {
                t.assignments = a.map { ids in
                    var x = CreatePartitionsRequest.CreatePartitionsAssignment()
                    x.brokerIds = ids
                    return x
                }
            } else {
                t.assignments = nil
            }
            r.topics = [t]
            r.timeoutMs = timeout
            r.validateOnly = validateOnly
            return r
        }.flatMapThrowing { resp in
            for res in resp.results where res.name == topic {
                if let e = KafkaClientError.check(res.errorCode, res.errorMessage) { throw e }
            }
        }
    }

    // MARK: configs

    /// DescribeConfigs for one resource (`name` "" is the cluster-wide broker default).
    /// Broker resources are asked of that broker when it is known.
    public func describeConfigs(type: ConfigResourceType, name: String, keys: [String]? = nil,
                                includeSynonyms: Bool = true) -> EventLoopFuture<[ConfigEntry]> {
        var target = RequestTarget.any
        if type == .broker || type == .brokerLogger, let id = Int32(name), client.metadata.brokers[id] != nil {
            target = .broker(id)
        }
        return client.send(to: target, expecting: DescribeConfigsResponse.self) { _ in
            var r = DescribeConfigsRequest()
            var res = DescribeConfigsRequest.DescribeConfigsResource()
            res.resourceType = type.rawValue
            res.resourceName = name
            res.configurationKeys = keys
            r.resources = [res]
            r.includeSynonyms = includeSynonyms
            return r
        }.flatMapThrowing { resp in
            guard let res = resp.results.first else { throw KafkaClientError.invalidArgument("DescribeConfigs returned no result for \(name)") }
            if let e = KafkaClientError.check(res.errorCode, res.errorMessage) { throw e }
            return res.configs.map { c in
                ConfigEntry(name: c.name, value: c.value, source: ConfigSource(rawValue: c.configSource) ?? .unknown,
                            isSensitive: c.isSensitive, isReadOnly: c.readOnly,
                            synonyms: c.synonyms.map { ConfigSynonym(name: $0.name, value: $0.value, source: ConfigSource(rawValue: $0.source) ?? .unknown) })
            }
        }
    }

    /// IncrementalAlterConfigs for one resource.
    public func incrementalAlterConfigs(type: ConfigResourceType, name: String, ops: [AlterConfigOp],
                                        validateOnly: Bool = false) -> EventLoopFuture<Void> {
        client.send(to: .any, expecting: IncrementalAlterConfigsResponse.self) { _ in
            var r = IncrementalAlterConfigsRequest()
            var res = IncrementalAlterConfigsRequest.AlterConfigsResource()
            res.resourceType = type.rawValue
            res.resourceName = name
            res.configs = ops.map(\.wire)
            r.resources = [res]
            r.validateOnly = validateOnly
            return r
        }.flatMapThrowing { resp in
            for res in resp.responses {
                if let e = KafkaClientError.check(res.errorCode, res.errorMessage) { throw e }
            }
        }
    }

    // MARK: leaders, cluster

    /// ElectLeaders: `preferred` (0) or `unclean` (1); nil partitions means all partitions.
    public func electLeaders(unclean: Bool, partitions: [TopicPartition]?) -> EventLoopFuture<[ElectionResult]> {
        let timeout = operationTimeoutMs
        return client.send(to: .any, expecting: ElectLeadersResponse.self, timeoutMs: Int64(timeout) + 5_000) { v in
            if v == 0 && unclean {
                throw KafkaClientError.invalidArgument("the broker only supports preferred leader elections (ElectLeaders v0)")
            }
            var r = ElectLeadersRequest()
            r.electionType = unclean ? 1 : 0
            if let partitions {
                var byTopic: [String: [Int32]] = [:]
                for tp in partitions { byTopic[tp.topic, default: []].append(tp.partition) }
                r.topicPartitions = byTopic.keys.sorted().map { t in
                    var x = ElectLeadersRequest.TopicPartitions()
                    x.topic = t
                    x.partitions = byTopic[t]!
                    return x
                }
            } else {
                r.topicPartitions = nil
            }
            r.timeoutMs = timeout
            return r
        }.flatMapThrowing { resp in
            if let e = KafkaClientError.check(resp.errorCode, nil, context: "ElectLeaders") { throw e }
            var out: [ElectionResult] = []
            for t in resp.replicaElectionResults {
                for p in t.partitionResult {
                    out.append(ElectionResult(partition: TopicPartition(t.topic, p.partitionId),
                                              error: p.errorCode == 0 ? nil : ErrorCode(rawValue: p.errorCode) ?? .unknownServerError,
                                              errorCode: p.errorCode, message: p.errorMessage))
                }
            }
            return out.sorted { $0.partition < $1.partition }
        }
    }

    /// DescribeCluster (falls back to Metadata for brokers that do not serve it).
    public func describeCluster() -> EventLoopFuture<ClusterDescription> {
        client.anyConnection().flatMap { conn in
            if conn.versions.version(for: .describeCluster) != nil {
                return conn.send(expecting: DescribeClusterResponse.self, timeoutMs: self.client.config.requestTimeoutMs) { _ in
                    DescribeClusterRequest()
                }.flatMapThrowing { r in
                    if let e = KafkaClientError.check(r.errorCode, r.errorMessage, context: "DescribeCluster") { throw e }
                    return ClusterDescription(clusterId: r.clusterId, controllerId: r.controllerId,
                                              brokers: r.brokers.map { BrokerNode(id: $0.brokerId, host: $0.host, port: Int($0.port), rack: $0.rack) }
                                                  .sorted { $0.id < $1.id })
                }
            }
            return self.client.refreshMetadata(topics: []).map { md in
                ClusterDescription(clusterId: md.clusterId ?? "", controllerId: md.controllerId,
                                   brokers: md.brokers.values.sorted { $0.id < $1.id })
            }
        }
    }
}
