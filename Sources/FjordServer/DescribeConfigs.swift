import FjordMetadata
import FjordProtocol

/// DescribeConfigs for topics and brokers, from the metadata image: dynamic values where a
/// ConfigRecord set one, otherwise the broker's static value or Kafka's default, each with
/// Kafka's source codes so tools print "DYNAMIC_TOPIC_CONFIG", "DEFAULT_CONFIG", ...
enum ConfigDescriber {
    /// Topic configs in name order, from the one table the controller validates against.
    static let topicConfigs: [TopicConfigDefinition] = TopicConfigs.definitions.values.sorted { $0.name < $1.name }

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
                    let brokerKey = c.brokerSynonym
                    var e = DescribeConfigsResponse.DescribeConfigsResourceResult()
                    e.name = c.name
                    e.configType = c.type.rawValue
                    var synonyms: [DescribeConfigsResponse.DescribeConfigsSynonym] = []
                    if let v = dynamic[c.name] {
                        e.value = v
                        e.configSource = ConfigSource.dynamicTopicConfig.rawValue
                        synonyms.append(synonym(c.name, v, .dynamicTopicConfig))
                    }
                    // Then the broker-wide synonym: this broker's dynamic value, the cluster's
                    // dynamic default, the static file, Kafka's default (Kafka's precedence).
                    if let b = brokerKey, let v = image.brokerConfigs[String(config.nodeId)]?[b] {
                        if e.configSource < 0 {
                            e.value = v
                            e.configSource = ConfigSource.dynamicBrokerConfig.rawValue
                        }
                        synonyms.append(synonym(b, v, .dynamicBrokerConfig))
                    }
                    if let b = brokerKey, let v = image.brokerConfigs[""]?[b] {
                        if e.configSource < 0 {
                            e.value = v
                            e.configSource = ConfigSource.dynamicDefaultBrokerConfig.rawValue
                        }
                        synonyms.append(synonym(b, v, .dynamicDefaultBrokerConfig))
                    }
                    if let b = brokerKey, let v = staticValue(for: b, config: config) {
                        if e.configSource < 0 {
                            e.value = v
                            e.configSource = ConfigSource.staticBrokerConfig.rawValue
                        }
                        synonyms.append(synonym(b, v, .staticBrokerConfig))
                    }
                    if e.configSource < 0 {
                        e.value = c.defaultValue
                        e.configSource = ConfigSource.defaultConfig.rawValue
                    }
                    if let b = brokerKey { synonyms.append(synonym(b, c.defaultValue, .defaultConfig)) }
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
                    e.configType = FjordMetadata.ConfigType.string.rawValue
                    if let v = dynamic[k] {
                        e.value = v
                        e.configSource = (isDefault ? ConfigSource.dynamicDefaultBrokerConfig : ConfigSource.dynamicBrokerConfig).rawValue
                    } else if !isDefault, let v = clusterDefaults[k] {
                        e.value = v
                        e.configSource = ConfigSource.dynamicDefaultBrokerConfig.rawValue
                    } else if !isDefault, let v = config.properties[k] {
                        e.value = v
                        e.configSource = ConfigSource.staticBrokerConfig.rawValue
                    } else {
                        e.value = ServerConfig.defaults[k] ?? ""
                        e.configSource = ConfigSource.defaultConfig.rawValue
                    }
                    e.readOnly = !ServerConfig.isDynamicBrokerConfig(k)
                    if r.includeSynonyms {
                        var syn: [DescribeConfigsResponse.DescribeConfigsSynonym] = []
                        if let v = dynamic[k] { syn.append(synonym(k, v, isDefault ? .dynamicDefaultBrokerConfig : .dynamicBrokerConfig)) }
                        if !isDefault, let v = clusterDefaults[k] { syn.append(synonym(k, v, .dynamicDefaultBrokerConfig)) }
                        if !isDefault, let v = config.properties[k] { syn.append(synonym(k, v, .staticBrokerConfig)) }
                        if let v = ServerConfig.defaults[k] { syn.append(synonym(k, v, .defaultConfig)) }
                        e.synonyms = syn
                    }
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

    static func synonym(_ name: String, _ value: String, _ source: ConfigSource) -> DescribeConfigsResponse.DescribeConfigsSynonym {
        var s = DescribeConfigsResponse.DescribeConfigsSynonym()
        s.name = name
        s.value = value
        s.source = source.rawValue
        return s
    }
}
