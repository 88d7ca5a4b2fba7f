/// Errors raised while decoding or encoding Kafka wire data.
///
/// Decoders never trap on bad input: every bounds or format problem surfaces as one of
/// these, so a server can answer with a Kafka error code or close the connection.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes were readable than the field needs.
    case truncated(needed: Int, available: Int)
    /// A length prefix is negative (where null is not allowed) or larger than the data.
    case invalidLength(Int)
    /// A varint ran past its maximum encoded width.
    case malformedVarint
    /// A string field was not valid UTF-8.
    case invalidUTF8
    /// A null arrived in a field (or version) that is not nullable.
    case unexpectedNull(field: String)
    /// A field holds a non-default value that the chosen version cannot carry.
    case fieldNotSupported(field: String, version: Int16)
    /// The message does not exist at this version.
    case unsupportedVersion(message: String, version: Int16)
    /// Any other structural problem, with a human-readable reason.
    case malformed(String)

    public var description: String {
        switch self {
        case let .truncated(needed, available): return "truncated: needed \(needed) bytes, \(available) available"
        case let .invalidLength(n): return "invalid length \(n)"
        case .malformedVarint: return "malformed varint"
        case .invalidUTF8: return "string is not valid UTF-8"
        case let .unexpectedNull(field): return "null is not allowed for \(field)"
        case let .fieldNotSupported(field, version): return "\(field) cannot be sent at version \(version)"
        case let .unsupportedVersion(message, version): return "\(message) has no version \(version)"
        case let .malformed(why): return why
        }
    }
}
