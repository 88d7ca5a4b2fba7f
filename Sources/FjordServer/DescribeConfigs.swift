import FjordMetadata
import FjordProtocol

/// DescribeConfigs for topics and brokers, from the metadata image: dynamic values where a
/// ConfigRecord set one, otherwise the broker's static value or Kafka's default, each with
/// Kafka's source codes so tools print "DYNAMIC_TOPIC_CONFIG", "DEFAULT_CONFIG", ...
enum ConfigDescriber {
    /// Config sources (DescribeConfigs v1+).
    enum Source: Int8 {
        case unknown = 0, dynamicTopic = 1, dynamicBroker = 2, dynamicDefaultBroker = 3, staticBroker = 4, defaultConfig = 5
    }

    /// Kafka's config types (DescribeConfigs v3+).
    enum ConfigType: Int8 {
        case unknown = 0, boolean = 1, string = 2, int = 3, short = 4, long = 5, double = 6, list = 7, `class` = 8, password = 9
    }

    /// Topic-level configs: name → (the broker config that supplies its default, the
    /// default, type).
    static let topicConfigs: [(name: String, brokerKey: String?, defaultValue: String, type: ConfigType)] = [
        ("cleanup.policy", "log.cleanup.policy", "delete", .list),
        ("compression.type", "compression.type", "producer", .string),
        ("delete.retention.ms", "log.cleaner.delete.retention.ms", "86400000", .long),
        ("file.delete.delay.ms", "log.segment.delete.delay.ms", "60000", .long),
        ("flush.messages", "log.flush.interval.messages", "9223372036854775807", .long),
        ("flush.ms", "log.flush.interval.ms", "9223372036854775807", .long),
        ("follower.replication.throttled.replicas", nil, "", .list),
        ("index.interval.bytes", "log.index.interval.bytes", "4096", .int),
        ("leader.replication.throttled.replicas", nil, "", .list),
        ("local.retention.bytes", "log.local.retention.bytes", "-2", .long),
        ("local.retention.ms", "log.local.retention.ms", "-2", .long),
        ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", "9223372036854775807", .long),
        ("max.message.bytes", "message.max.bytes", "1048588", .int),
        ("message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", "9223372036854775807", .long),
        ("message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", "9223372036854775807", .long),
        ("message.timestamp.type", "log.message.timestamp.type", "CreateTime", .string),
        ("min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "0.5", .double),
        ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "0", .long),
        ("min.insync.replicas", "min.insync.replicas", "1", .int),
        ("preallocate", "log.preallocate", "false", .boolean),
        ("remote.storage.enable", nil, "false", .boolean),
        ("retention.bytes", "log.retention.bytes", "-1", .long),
        ("retention.ms", "log.retention.ms", "604800000", .long),
        ("segment.bytes", "log.segment.bytes", "1073741824", .int),
        ("segment.index.bytes", "log.index.size.max.bytes", "10485760", .int),
        ("segment.jitter.ms", "log.roll.jitter.ms", "0", .long),
        ("segment.ms", "log.roll.ms", "604800000", .long),
        ("unclean.leader.election.enable", "unclean.leader.election.enable", "false", .boolean),
    ]

    /// The value a broker's static configuration gives a topic config, if it sets one
    /// (including the hours/minutes forms of retention and roll).
    static func staticValue(for brokerKey: String?, config: ServerConfig) -> String? {
        guard let key = brokerKey else { return nil }
        if let v = config.properties[key] { return v }
        switch key {
        case "log.retention.ms":
            if let m = config.properties["log.retention.minutes"].flatMap(Int64.init) { return "\(m * 60_000)" }
            if let h = config.properties["log.retention.hours"].flatMap(Int64.init) { return "\(h * 3_600_000)" }
        case "log.roll.ms":
            if let h = config.properties["log.roll.hours"].flatMap(Int64.init) { return "\(h * 3_600_000)" }
        default: break
        }
        return nil
    }

    static func describe(_ r: DescribeConfigsRequest, version: Int16, image: MetadataImage, config: ServerConfig) -> DescribeConfigsResponse {
        var resp = DescribeConfigsResponse()
        resp.results = r.resources.map { res in
            var out = DescribeConfigsResponse.DescribeConfigsResult()
            out.resourceType = res.resourceType
            out.resourceName = res.resourceName
            let wanted = res.configurationKeys.map(Set.init)
            switch res.resourceType {
            case 2: // TOPIC
                guard image.topics[res.resourceName] != nil else {
                    out.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    out.errorMessage = "Topic \(res.resourceName) does not exist."
                    return out
                }
                let dynamic = image.topicConfigs[res.resourceName] ?? [:]
                out.configs = topicConfigs.filter { wanted?.contains($0.name) ?? true }.map { c in
                    var e = DescribeConfigsResponse.DescribeConfigsResourceResult()
                    e.name = c.name
                    e.configType = c.type.rawValue
                    var synonyms: [DescribeConfigsResponse.DescribeConfigsSynonym] = []
                    if let v = dynamic[c.name] {
                        e.value = v
                        e.configSource = Source.dynamicTopic.rawValue
                        synonyms.append(synonym(c.name, v, .dynamicTopic))
                    }
                    if let b = c.brokerKey, let v = staticValue(for: b, config: config) {
                        if e.configSource < 0 {
                            e.value = v
                            e.configSource = Source.staticBroker.rawValue
                        }
                        synonyms.append(synonym(b, v, .staticBroker))
                    }
                    if e.configSource < 0 {
                        e.value = c.defaultValue
                        e.configSource = Source.defaultConfig.rawValue
                    }
                    if let b = c.brokerKey { synonyms.append(synonym(b, c.defaultValue, .defaultConfig)) }
                    if r.includeSynonyms { e.synonyms = synonyms }
                    return e
                }
            case 4: // BROKER
                let isDefault = res.resourceName.isEmpty
                if !isDefault, Int32(res.resourceName) == nil {
                    out.errorCode = ErrorCode.invalidRequest.rawValue
                    out.errorMessage = "Invalid broker name \(res.resourceName)"
                    return out
                }
                let dynamic = image.brokerConfigs[res.resourceName] ?? [:]
                let clusterDefaults = image.brokerConfigs[""] ?? [:]
                var keys = Set(ServerConfig.defaults.keys).union(dynamic.keys).union(clusterDefaults.keys)
                if !isDefault { keys.formUnion(config.properties.values.keys) }
                out.configs = keys.sorted().filter { wanted?.contains($0) ?? true }.map { k in
                    var e = DescribeConfigsResponse.DescribeConfigsResourceResult()
                    e.name = k
                    e.configType = ConfigType.string.rawValue
                    if let v = dynamic[k] {
                        e.value = v
                        e.configSource = isDefault ? Source.dynamicDefaultBroker.rawValue : Source.dynamicBroker.rawValue
                    } else if !isDefault, let v = clusterDefaults[k] {
                        e.value = v
                        e.configSource = Source.dynamicDefaultBroker.rawValue
                    } else if !isDefault, let v = config.properties[k] {
                        e.value = v
                        e.configSource = Source.staticBroker.rawValue
                    } else {
                        e.value = ServerConfig.defaults[k] ?? ""
                        e.configSource = Source.defaultConfig.rawValue
                    }
                    e.readOnly = !isDefault && dynamic[k] == nil
                    return e
                }
            default:
                out.errorCode = ErrorCode.invalidRequest.rawValue
                out.errorMessage = "Unsupported resource type \(res.resourceType)"
            }
            return out
        }
        return resp
    }

    static func synonym(_ name: String, _ value: String, _ source: Source) -> DescribeConfigsResponse.DescribeConfigsSynonym {
        var s = DescribeConfigsResponse.DescribeConfigsSynonym()
        s.name = name
        s.value = value
        s.source = source.rawValue
        return s
    }
}
