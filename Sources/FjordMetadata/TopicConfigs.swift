/// A config's value type, numbered as DescribeConfigs v3+ reports it (`ConfigType`).
public enum ConfigType: Int8, Sendable {
    case unknown = 0, boolean = 1, string = 2, int = 3, short = 4, long = 5, double = 6, list = 7, `class` = 8, password = 9
}

/// Where a config value comes from, numbered as DescribeConfigs reports it (`ConfigSource`).
public enum ConfigSource: Int8, Sendable {
    case unknown = 0
    /// Set on the topic (`ConfigRecord` for the topic).
    case dynamicTopicConfig = 1
    /// Set dynamically for one broker.
    case dynamicBrokerConfig = 2
    /// Set dynamically as the cluster-wide default (broker resource "").
    case dynamicDefaultBrokerConfig = 3
    /// From the broker's properties file.
    case staticBrokerConfig = 4
    /// Kafka's built-in default.
    case defaultConfig = 5
    case dynamicBrokerLoggerConfig = 6
    case clientMetricsConfig = 7
    case groupConfig = 8
}

/// One effective config value, as DescribeConfigs and CreateTopics (v5+) report it.
public struct ConfigEntry: Sendable, Equatable {
    public var name: String
    public var value: String?
    public var source: ConfigSource
    public var type: ConfigType
    public var isSensitive: Bool
    public var readOnly: Bool

    public init(name: String, value: String?, source: ConfigSource, type: ConfigType, isSensitive: Bool = false, readOnly: Bool = false) {
        self.name = name
        self.value = value
        self.source = source
        self.type = type
        self.isSensitive = isSensitive
        self.readOnly = readOnly
    }
}

/// The definition of one topic-level config: Kafka's name, type, default, broker-level
/// synonym (whose cluster-wide dynamic value is the topic default) and value constraint.
public struct TopicConfigDefinition: Sendable {
    /// A constraint on a value, checked after the type.
    public enum Constraint: Sendable {
        case none
        case atLeast(Int64)
        case between(Double, Double)
        case oneOf([String])
        case eachOf([String])
        /// `compression.gzip.level`: -1 or 1...9.
        case gzipLevel
    }

    public var name: String
    public var type: ConfigType
    public var defaultValue: String
    public var brokerSynonym: String?
    public var constraint: Constraint

    public init(_ name: String, _ type: ConfigType, _ defaultValue: String, synonym: String? = nil, _ constraint: Constraint = .none) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.brokerSynonym = synonym
        self.constraint = constraint
    }

    /// Why `value` is not valid for this config (Kafka's `ConfigException` text), or nil.
    public func validationError(_ value: String) -> String? {
        let v = value.trimmingSpaces
        func invalid(_ why: String) -> String { "Invalid value \(value) for configuration \(name): \(why)" }
        var number: Double?
        switch type {
        case .boolean:
            guard v.lowercased() == "true" || v.lowercased() == "false" else {
                return invalid("Expected value to be either true or false")
            }
        case .int, .short, .long:
            let parsed: Int64?
            switch type {
            case .int: parsed = Int32(v).map(Int64.init)
            case .short: parsed = Int16(v).map(Int64.init)
            default: parsed = Int64(v)
            }
            guard let n = parsed else {
                return invalid("Not a number of type \(type == .int ? "INT" : type == .short ? "SHORT" : "LONG")")
            }
            number = Double(n)
            if case let .atLeast(min) = constraint, n < min { return invalid("Value must be at least \(min)") }
        case .double:
            guard let d = Double(v), d.isFinite else { return invalid("Not a number of type DOUBLE") }
            number = d
        default:
            break
        }
        switch constraint {
        case let .between(lo, hi):
            if let n = number, n < lo || n > hi {
                return invalid("Value must be no less than \(Self.format(lo)) and no more than \(Self.format(hi))")
            }
        case .gzipLevel:
            if let n = number, n != -1, n < 1 || n > 9 { return invalid("Value must be -1 or between 1 and 9") }
        case let .oneOf(allowed):
            if !allowed.contains(v) { return invalid("String must be one of: \(allowed.joined(separator: ", "))") }
        case let .eachOf(allowed):
            for item in v.split(separator: ",") where !allowed.contains(String(item).trimmingSpaces) {
                return invalid("String must be one of: \(allowed.joined(separator: ", "))")
            }
        case .none, .atLeast:
            break
        }
        return nil
    }

    private static func format(_ d: Double) -> String {
        d == d.rounded() ? String(Int64(d)) : String(d)
    }
}

/// Kafka's topic-level configs (`TopicConfig`, `LogConfig`) with their defaults.
public enum TopicConfigs {
    /// Every topic config Kafka 3.9 knows, by name.
    public static let definitions: [String: TopicConfigDefinition] = {
        let longMax = String(Int64.max)
        let defs: [TopicConfigDefinition] = [
            .init("cleanup.policy", .list, "delete", synonym: "log.cleanup.policy", .eachOf(["compact", "delete"])),
            .init("compression.type", .string, "producer", synonym: "compression.type",
                  .oneOf(["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"])),
            .init("compression.gzip.level", .int, "-1", synonym: "compression.gzip.level", .gzipLevel),
            .init("compression.lz4.level", .int, "9", synonym: "compression.lz4.level", .between(1, 17)),
            .init("compression.zstd.level", .int, "3", synonym: "compression.zstd.level", .between(-131072, 22)),
            .init("delete.retention.ms", .long, "86400000", synonym: "log.cleaner.delete.retention.ms", .atLeast(0)),
            .init("file.delete.delay.ms", .long, "60000", synonym: "log.segment.delete.delay.ms", .atLeast(0)),
            .init("flush.messages", .long, longMax, synonym: "log.flush.interval.messages", .atLeast(1)),
            .init("flush.ms", .long, longMax, synonym: "log.flush.interval.ms", .atLeast(0)),
            .init("follower.replication.throttled.replicas", .list, ""),
            .init("index.interval.bytes", .int, "4096", synonym: "log.index.interval.bytes", .atLeast(0)),
            .init("leader.replication.throttled.replicas", .list, ""),
            .init("local.retention.bytes", .long, "-2", synonym: "log.local.retention.bytes", .atLeast(-2)),
            .init("local.retention.ms", .long, "-2", synonym: "log.local.retention.ms", .atLeast(-2)),
            .init("max.compaction.lag.ms", .long, longMax, synonym: "log.cleaner.max.compaction.lag.ms", .atLeast(1)),
            .init("max.message.bytes", .int, "1048588", synonym: "message.max.bytes", .atLeast(0)),
            .init("message.downconversion.enable", .boolean, "true", synonym: "log.message.downconversion.enable"),
            .init("message.format.version", .string, "3.0-IV1", synonym: "log.message.format.version"),
            .init("message.timestamp.after.max.ms", .long, longMax, synonym: "log.message.timestamp.after.max.ms", .atLeast(0)),
            .init("message.timestamp.before.max.ms", .long, longMax, synonym: "log.message.timestamp.before.max.ms", .atLeast(0)),
            .init("message.timestamp.difference.max.ms", .long, longMax, synonym: "log.message.timestamp.difference.max.ms", .atLeast(0)),
            .init("message.timestamp.type", .string, "CreateTime", synonym: "log.message.timestamp.type",
                  .oneOf(["CreateTime", "LogAppendTime"])),
            .init("min.cleanable.dirty.ratio", .double, "0.5", synonym: "log.cleaner.min.cleanable.ratio", .between(0, 1)),
            .init("min.compaction.lag.ms", .long, "0", synonym: "log.cleaner.min.compaction.lag.ms", .atLeast(0)),
            .init("min.insync.replicas", .int, "1", synonym: "min.insync.replicas", .atLeast(1)),
            .init("preallocate", .boolean, "false", synonym: "log.preallocate"),
            .init("remote.log.copy.disable", .boolean, "false"),
            .init("remote.log.delete.on.disable", .boolean, "false"),
            .init("remote.storage.enable", .boolean, "false"),
            .init("retention.bytes", .long, "-1", synonym: "log.retention.bytes"),
            .init("retention.ms", .long, "604800000", synonym: "log.retention.ms", .atLeast(-1)),
            .init("segment.bytes", .int, "1073741824", synonym: "log.segment.bytes", .atLeast(14)),
            .init("segment.index.bytes", .int, "10485760", synonym: "log.index.size.max.bytes", .atLeast(4)),
            .init("segment.jitter.ms", .long, "0", synonym: "log.roll.jitter.ms", .atLeast(0)),
            .init("segment.ms", .long, "604800000", synonym: "log.roll.ms", .atLeast(1)),
            .init("unclean.leader.election.enable", .boolean, "false", synonym: "unclean.leader.election.enable"),
        ]
        return Dictionary(uniqueKeysWithValues: defs.map { ($0.name, $0) })
    }()

    /// Why `name=value` cannot be set on a topic, or nil if it can.
    public static func validationError(name: String, value: String) -> String? {
        guard let def = definitions[name] else { return "Unknown topic config name: \(name)" }
        return def.validationError(value)
    }
}

extension MetadataImage {
    /// A topic's effective configs, sorted by name: the topic's own values, then the
    /// cluster-wide dynamic default of the broker-level synonym, then `staticBrokerConfigs`
    /// (topic config name → value from the broker's properties), then Kafka's default.
    /// `overrides` stands in for the topic's own values (for a topic not created yet).
    public func effectiveTopicConfigs(overrides: [String: String], staticBrokerConfigs: [String: String] = [:]) -> [ConfigEntry] {
        let clusterDefaults = brokerConfigs[""] ?? [:]
        var out: [ConfigEntry] = []
        for name in TopicConfigs.definitions.keys.sorted() {
            guard let def = TopicConfigs.definitions[name] else { continue }
            if let v = overrides[name] {
                out.append(ConfigEntry(name: name, value: v, source: .dynamicTopicConfig, type: def.type))
            } else if let syn = def.brokerSynonym, let v = clusterDefaults[syn] {
                out.append(ConfigEntry(name: name, value: v, source: .dynamicDefaultBrokerConfig, type: def.type))
            } else if let v = staticBrokerConfigs[name] {
                out.append(ConfigEntry(name: name, value: v, source: .staticBrokerConfig, type: def.type))
            } else {
                out.append(ConfigEntry(name: name, value: def.defaultValue, source: .defaultConfig, type: def.type))
            }
        }
        return out
    }

    /// The effective configs of an existing topic, or nil if it does not exist.
    public func effectiveTopicConfigs(topic: String, staticBrokerConfigs: [String: String] = [:]) -> [ConfigEntry]? {
        guard topics[topic] != nil else { return nil }
        return effectiveTopicConfigs(overrides: topicConfigs[topic] ?? [:], staticBrokerConfigs: staticBrokerConfigs)
    }

    /// The effective value of one topic config (same precedence, without static configs).
    public func effectiveTopicConfig(topic: String, name: String) -> String? {
        if let v = topicConfigs[topic]?[name] { return v }
        guard let def = TopicConfigs.definitions[name] else { return nil }
        if let syn = def.brokerSynonym, let v = brokerConfigs[""]?[syn] { return v }
        return def.defaultValue
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
