import FjordProtocol

/// Output of `fjord topics` in Kafka's `kafka-topics` formats.
public enum TopicsFormat {
    /// Which partitions `--describe` reports.
    public struct Filter: Sendable {
        public var underReplicated = false
        public var unavailable = false
        public var underMinIsr = false
        public var atMinIsr = false
        public init() {}
        /// Any partition filter set: Kafka then prints only the partition lines.
        public var filtersPartitions: Bool { underReplicated || unavailable || underMinIsr || atMinIsr }
    }

    static func ids(_ a: [Int32]) -> String { a.map(String.init).joined(separator: ",") }

    /// The topic line: `Topic: t\tTopicId: id\tPartitionCount: n\tReplicationFactor: r\tConfigs: k=v,...`
    /// (configs not at their defaults, in the order given).
    public static func topicLine(_ t: TopicInfo, configs: [ConfigEntry]) -> String {
        let shown = configs.filter { !$0.isDefault }.map { "\($0.name)=\($0.isSensitive ? "<sensitive>" : ($0.value ?? "null"))" }
        return "Topic: \(t.name)\tTopicId: \(t.id)\tPartitionCount: \(t.partitions.count)\tReplicationFactor: \(t.replicationFactor)\tConfigs: \(shown.joined(separator: ","))"
    }

    /// A partition line: `\tTopic: t\tPartition: p\tLeader: id|none\tReplicas: a,b\tIsr: a,b`.
    public static func partitionLine(topic: String, _ p: PartitionInfo) -> String {
        "\tTopic: \(topic)\tPartition: \(p.partition)\tLeader: \(p.leader >= 0 ? String(p.leader) : "none")\tReplicas: \(ids(p.replicas))\tIsr: \(ids(p.isr))"
    }

    /// Whether `p` passes `filter` (`liveBrokers`: registered brokers; `minIsr`: the topic's
    /// `min.insync.replicas`).
    public static func matches(_ p: PartitionInfo, filter: Filter, liveBrokers: Set<Int32>, minIsr: Int?) -> Bool {
        if !filter.filtersPartitions { return true }
        if filter.underReplicated && p.isr.count < p.replicas.count { return true }
        if filter.unavailable && (p.leader < 0 || !liveBrokers.contains(p.leader)) { return true }
        if let m = minIsr {
            if filter.underMinIsr && p.isr.count < m { return true }
            if filter.atMinIsr && p.isr.count == m { return true }
        }
        return false
    }

    /// The `--describe` lines for one topic.
    public static func describe(_ t: TopicInfo, configs: [ConfigEntry], filter: Filter, liveBrokers: Set<Int32>) -> [String] {
        var out: [String] = []
        let minIsr = configs.first { $0.name == "min.insync.replicas" }.flatMap { $0.value.flatMap { Int($0) } }
        if !filter.filtersPartitions { out.append(topicLine(t, configs: configs)) }
        for p in t.partitions where matches(p, filter: filter, liveBrokers: liveBrokers, minIsr: minIsr) {
            out.append(partitionLine(topic: t.name, p))
        }
        return out
    }

    /// One topic as a JSON object (for `--output json`).
    public static func json(_ t: TopicInfo, configs: [ConfigEntry], filter: Filter, liveBrokers: Set<Int32>) -> String {
        let minIsr = configs.first { $0.name == "min.insync.replicas" }.flatMap { $0.value.flatMap { Int($0) } }
        let cfg = configs.filter { !$0.isDefault }.map { "\(ToolSupport.jsonString($0.name)): \($0.value.map(ToolSupport.jsonString) ?? "null")" }
        let parts = t.partitions.filter { matches($0, filter: filter, liveBrokers: liveBrokers, minIsr: minIsr) }.map { p in
            "{\"partition\": \(p.partition), \"leader\": \(p.leader >= 0 ? String(p.leader) : "null"), \"leaderEpoch\": \(p.leaderEpoch), "
                + "\"replicas\": [\(ids(p.replicas).replacingCommas())], \"isr\": [\(ids(p.isr).replacingCommas())], "
                + "\"offline\": [\(ids(p.offlineReplicas).replacingCommas())]}"
        }
        return "{\"topic\": \(ToolSupport.jsonString(t.name)), \"topicId\": \"\(t.id)\", \"partitionCount\": \(t.partitions.count), "
            + "\"replicationFactor\": \(t.replicationFactor), \"configs\": {\(cfg.joined(separator: ", "))}, "
            + "\"partitions\": [\(parts.joined(separator: ", "))]}"
    }
}

extension String {
    func replacingCommas() -> String { split(separator: ",").joined(separator: ", ") }
}

/// Kafka's `kafka-configs --describe` lines.
public enum ConfigsFormat {
    /// The heading, e.g. `Dynamic configs for topic t are:` / `All configs for broker 1 are:` /
    /// `Default configs for brokers in the cluster are:`.
    public static func heading(entityType: ConfigResourceType, name: String, all: Bool) -> String {
        let kind = all ? "All" : "Dynamic"
        switch entityType {
        case .topic: return "\(kind) configs for topic \(name) are:"
        case .broker where name.isEmpty: return "\(all ? "All" : "Default") configs for brokers in the cluster are:"
        case .broker: return "\(kind) configs for broker \(name) are:"
        case .brokerLogger: return "\(kind) configs for broker-logger \(name) are:"
        default: return "\(kind) configs for \(name) are:"
        }
    }

    /// The entries shown: all of them with `--all`, else those set dynamically on this entity.
    public static func shown(_ entries: [ConfigEntry], entityType: ConfigResourceType, name: String, all: Bool) -> [ConfigEntry] {
        if all { return entries }
        let source: ConfigSource
        switch entityType {
        case .topic: source = .dynamicTopicConfig
        case .broker: source = name.isEmpty ? .dynamicDefaultBrokerConfig : .dynamicBrokerConfig
        case .brokerLogger: source = .dynamicBrokerLoggerConfig
        default: source = .unknown
        }
        return entries.filter { $0.source == source }
    }

    /// `  name=value sensitive=false synonyms={SOURCE:name=value, ...}`.
    public static func entryLine(_ e: ConfigEntry) -> String {
        let syn = e.synonyms.map { "\($0.source.name):\($0.name)=\($0.value ?? "null")" }.joined(separator: ", ")
        let value = e.isSensitive ? "null" : (e.value ?? "null")
        return "  \(e.name)=\(value) sensitive=\(e.isSensitive) synonyms={\(syn)}"
    }
}

/// `fjord leader-election` output (Kafka's `kafka-leader-election`).
public enum LeaderElectionFormat {
    /// Lines for successes and no-ops, then failures (the caller exits non-zero when there are failures).
    public static func lines(_ results: [ElectionResult], unclean: Bool) -> (lines: [String], failures: Int) {
        let type = unclean ? "UNCLEAN" : "PREFERRED"
        let ok = results.filter { $0.error == nil }.map(\.partition.description)
        let noop = results.filter { $0.error == .electionNotNeeded }.map(\.partition.description)
        let failed = results.filter { $0.error != nil && $0.error != .electionNotNeeded }
        var out: [String] = []
        if !ok.isEmpty { out.append("Successfully completed leader election (\(type)) for partitions \(ok.joined(separator: ", "))") }
        if !noop.isEmpty { out.append("Valid replica already elected for partitions \(noop.joined(separator: ", "))") }
        for f in failed {
            let name = f.error?.name ?? "error \(f.errorCode)"
            let msg = (f.message?.isEmpty == false ? f.message! : (f.error?.message ?? ""))
            out.append("Error completing leader election (\(type)) for partition: \(f.partition): \(name): \(msg)")
        }
        return (out, failed.count)
    }
}

/// `fjord broker-api-versions` output (Kafka's `kafka-broker-api-versions`).
public enum ApiVersionsFormat {
    /// `host:port (id: N rack: r) -> (` then one line per API this client knows, then `)`.
    public static func lines(address: String, id: Int32, rack: String?, table: ApiVersionTable) -> [String] {
        var out = ["\(address) (id: \(id) rack: \(rack ?? "null")) -> ("]
        let apis = ApiKey.allCases.filter { table.broker[$0] != nil || isClientFacing($0) }
        for (i, api) in apis.enumerated() {
            let sep = i == apis.count - 1 ? "" : ","
            guard let b = table.broker[api] else {
                out.append("\t\(api.name)(\(api.rawValue)): UNSUPPORTED\(sep)")
                continue
            }
            let client = ClientApiVersions.supported[api] ?? api.schemaVersions
            let usable: String
            if let v = ApiVersionTable.negotiate(client: client, broker: b) {
                usable = "[usable: \(v)]"
            } else if b.lowerBound > client.upperBound {
                usable = "[unusable: node too new]"
            } else {
                usable = "[unusable: node too old]"
            }
            let range = b.lowerBound == b.upperBound ? "\(b.lowerBound)" : "\(b.lowerBound) to \(b.upperBound)"
            out.append("\t\(api.name)(\(api.rawValue)): \(range) \(usable)\(sep)")
        }
        out.append(")")
        return out
    }

    /// APIs a client may send to a broker (Kafka's list omits broker-internal ones the node does not serve).
    static func isClientFacing(_ api: ApiKey) -> Bool {
        switch api {
        case .leaderAndIsr, .stopReplica, .updateMetadata, .controlledShutdown, .writeTxnMarkers, .vote, .beginQuorumEpoch,
             .endQuorumEpoch, .alterPartition, .envelope, .fetchSnapshot, .brokerRegistration, .brokerHeartbeat,
             .unregisterBroker, .allocateProducerIds, .controllerRegistration, .assignReplicasToDirs, .updateRaftVoter,
             .initializeShareGroupState, .readShareGroupState, .writeShareGroupState, .deleteShareGroupState,
             .readShareGroupStateSummary:
            return false
        default:
            return true
        }
    }
}
