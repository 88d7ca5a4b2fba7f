import FjordProtocol

/// Why a config resource cannot be described: an error code and message for the response.
public struct ConfigLookupError: Error, Equatable, Sendable {
    public var code: ErrorCode
    public var message: String

    public init(code: ErrorCode, message: String) {
        self.code = code
        self.message = message
    }
}

extension MetadataImage {
    /// The configs of a resource as DescribeConfigs reports them, sorted by name.
    ///
    /// - TOPIC: every topic config with its effective value and source (see
    ///   `effectiveTopicConfigs`).
    /// - BROKER "N": the broker's dynamic configs, the cluster-wide dynamic defaults it does
    ///   not override, and `staticBrokerConfigs` (its properties) for the rest.
    /// - BROKER "": the cluster-wide dynamic defaults.
    public func configEntries(resourceType: Int8, resourceName: String,
                              staticBrokerConfigs: [String: String] = [:]) throws(ConfigLookupError) -> [ConfigEntry] {
        switch ConfigResourceType(rawValue: resourceType) {
        case .topic?:
            if let why = TopicName.validationError(resourceName) { throw ConfigLookupError(code: .invalidTopicException, message: why) }
            guard let entries = effectiveTopicConfigs(topic: resourceName) else {
                throw ConfigLookupError(code: .unknownTopicOrPartition, message: "The topic '\(resourceName)' does not exist.")
            }
            return entries
        case .broker?:
            let defaults = brokerConfigs[""] ?? [:]
            if resourceName.isEmpty {
                return defaults.keys.sorted().map {
                    ConfigEntry(name: $0, value: defaults[$0], source: .dynamicDefaultBrokerConfig, type: .unknown)
                }
            }
            guard Int32(resourceName) != nil else {
                throw ConfigLookupError(code: .invalidRequest, message: "Invalid broker name \(resourceName)")
            }
            let own = brokerConfigs[resourceName] ?? [:]
            let names = Set(own.keys).union(defaults.keys).union(staticBrokerConfigs.keys)
            return names.sorted().map { n in
                if let v = own[n] { return ConfigEntry(name: n, value: v, source: .dynamicBrokerConfig, type: .unknown) }
                if let v = defaults[n] { return ConfigEntry(name: n, value: v, source: .dynamicDefaultBrokerConfig, type: .unknown) }
                return ConfigEntry(name: n, value: staticBrokerConfigs[n], source: .staticBrokerConfig, type: .unknown)
            }
        default:
            throw ConfigLookupError(code: .invalidRequest, message: "Unknown resource type \(resourceType)")
        }
    }
}
