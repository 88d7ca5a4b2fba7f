import FjordProtocol

/// The API versions a broker serves, and the version this client uses for each API: the
/// highest version both sides support.
public struct ApiVersionTable: Sendable, Hashable {
    /// The broker's ranges, from its ApiVersions response.
    public var broker: [ApiKey: ClosedRange<Int16>]
    /// Unknown API keys the broker advertised (raw key → range).
    public var unknownKeys: [Int16: ClosedRange<Int16>]

    public init(broker: [ApiKey: ClosedRange<Int16>], unknownKeys: [Int16: ClosedRange<Int16>] = [:]) {
        self.broker = broker
        self.unknownKeys = unknownKeys
    }

    /// The table from an ApiVersions response.
    public init(_ response: ApiVersionsResponse) {
        var b: [ApiKey: ClosedRange<Int16>] = [:]
        var u: [Int16: ClosedRange<Int16>] = [:]
        for k in response.apiKeys where k.minVersion <= k.maxVersion {
            if let api = ApiKey(rawValue: k.apiKey) { b[api] = k.minVersion...k.maxVersion } else { u[k.apiKey] = k.minVersion...k.maxVersion }
        }
        self.init(broker: b, unknownKeys: u)
    }

    /// The highest version of `api` in both `client` and the broker's range, or nil.
    public func version(for api: ApiKey, client: ClosedRange<Int16>? = nil) -> Int16? {
        guard let c = client ?? ClientApiVersions.supported[api], let b = broker[api] else { return nil }
        return Self.negotiate(client: c, broker: b)
    }

    /// The highest version in both ranges, or nil when they do not overlap.
    public static func negotiate(client: ClosedRange<Int16>, broker: ClosedRange<Int16>) -> Int16? {
        let hi = min(client.upperBound, broker.upperBound)
        let lo = max(client.lowerBound, broker.lowerBound)
        return hi >= lo ? hi : nil
    }
}

/// The versions of each API this client implements (requests built and responses read
/// correctly at every version in the range).
public enum ClientApiVersions {
    public static let supported: [ApiKey: ClosedRange<Int16>] = [
        .apiVersions: 0...3,
        .metadata: 1...12,
        .produce: 3...11,
        .fetch: 4...16,
        .listOffsets: 1...10,
        .createTopics: 2...7,
        .deleteTopics: 1...6,
        .createPartitions: 0...3,
        .describeConfigs: 1...4,
        .alterConfigs: 0...2,
        .incrementalAlterConfigs: 0...1,
        .electLeaders: 0...2,
        .describeCluster: 0...1,
        .initProducerId: 0...5,
        .describeQuorum: 0...2,
        .findCoordinator: 0...4,
        .joinGroup: 0...9,
        .syncGroup: 0...5,
        .heartbeat: 0...4,
        .leaveGroup: 0...5,
        .offsetCommit: 2...8,
        .offsetFetch: 1...7,
    ]
}
