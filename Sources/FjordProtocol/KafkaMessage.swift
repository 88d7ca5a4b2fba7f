import FjordWire
import NIOCore

/// A top-level generated message (request, response, header, metadata or data record).
public protocol KafkaMessage: KafkaCodable, Hashable {
    /// The schema's name, e.g. "MetadataRequest".
    static var messageName: String { get }
    /// The versions the schema defines.
    static var validVersions: ClosedRange<Int16> { get }
    /// The first flexible version (compact encodings and tagged fields), or nil.
    static var firstFlexibleVersion: Int16? { get }
    init()
}

/// A request body of an API.
public protocol KafkaRequest: KafkaMessage {
    static var apiKey: ApiKey { get }
}

/// A response body of an API.
public protocol KafkaResponse: KafkaMessage {
    static var apiKey: ApiKey { get }
}

extension KafkaMessage {
    /// Whether `version` uses the flexible encoding.
    public static func isFlexible(_ version: Int16) -> Bool {
        guard let f = firstFlexibleVersion else { return false }
        return version >= f
    }

    /// Encodes into a new buffer.
    public func encoded(version: Int16) throws -> ByteBuffer {
        var buf = ByteBuffer()
        try encode(to: &buf, version: version)
        return buf
    }
}

extension ApiKey {
    /// The request header version used with `apiVersion` of this API: 2 for flexible
    /// versions, 1 otherwise (0 only for ControlledShutdown v0).
    public func requestHeaderVersion(for apiVersion: Int16) -> Int16 {
        if let f = firstFlexibleVersion, apiVersion >= f { return 2 }
        if self == .controlledShutdown && apiVersion == 0 { return 0 }
        return 1
    }

    /// The response header version: 1 for flexible versions, 0 otherwise. ApiVersions
    /// responses always use header v0, so a client can parse one from any broker (KIP-511).
    public func responseHeaderVersion(for apiVersion: Int16) -> Int16 {
        if self == .apiVersions { return 0 }
        if let f = firstFlexibleVersion, apiVersion >= f { return 1 }
        return 0
    }
}
