import FjordProtocol

/// An error from the Kafka client: a Kafka error code with the broker's message, or a
/// problem reaching the cluster. Descriptions say what to do next where there is something to do.
public enum KafkaClientError: Error, CustomStringConvertible, Sendable {
    /// No bootstrap server or broker answered.
    case noBrokerReachable(tried: [String], lastError: String)
    /// A broker answered with a Kafka error code.
    case kafka(ErrorCode, message: String?, context: String)
    /// An error code this client does not know.
    case unknownErrorCode(Int16, message: String?, context: String)
    /// The broker does not serve an API (or no version both sides support).
    case unsupportedApi(ApiKey, broker: String, brokerVersions: ClosedRange<Int16>?)
    /// An operation did not finish in time.
    case timedOut(String)
    /// A caller mistake (bad argument, unknown topic, ...).
    case invalidArgument(String)
    /// The client was closed.
    case closed

    public var description: String {
        switch self {
        case let .noBrokerReachable(tried, last):
            return "could not reach any broker (tried \(tried.joined(separator: ", ")); last error: \(last)). "
                + "Check --bootstrap-server and that the cluster is running (e.g. `fjord dev-cluster status`)."
        case let .kafka(code, message, context):
            let m = (message?.isEmpty == false ? message! : code.message)
            return "\(context)\(context.isEmpty ? "" : ": ")\(code.name): \(m)"
        case let .unknownErrorCode(code, message, context):
            return "\(context)\(context.isEmpty ? "" : ": ")error code \(code)\(message.map { ": \($0)" } ?? "")"
        case let .unsupportedApi(api, broker, range):
            if let r = range {
                return "broker \(broker) serves \(api.name) versions \(r.lowerBound)-\(r.upperBound), none of which this client supports"
            }
            return "broker \(broker) does not serve \(api.name)"
        case let .timedOut(s):
            return "timed out: \(s)"
        case let .invalidArgument(s):
            return s
        case .closed:
            return "the client is closed"
        }
    }

    /// The Kafka error code, if this is one.
    public var errorCode: ErrorCode? {
        if case let .kafka(c, _, _) = self { return c }
        return nil
    }

    /// Whether retrying may help (retriable Kafka errors, timeouts, unreachable brokers).
    public var isRetriable: Bool {
        switch self {
        case let .kafka(c, _, _): return c.isRetriable
        case .noBrokerReachable, .timedOut: return true
        default: return false
        }
    }

    /// The error for `code` (nil for no error).
    public static func check(_ code: Int16, _ message: String? = nil, context: String = "") -> KafkaClientError? {
        if code == 0 { return nil }
        if let c = ErrorCode(rawValue: code) { return .kafka(c, message: message, context: context) }
        return .unknownErrorCode(code, message: message, context: context)
    }
}

/// Whether a transport-level error (closed connection, timeout, refused connect) is worth a retry.
func isRetriableTransportError(_ error: Error) -> Bool {
    if let e = error as? KafkaClientError { return e.isRetriable }
    if error is KafkaConnectionError { return true }
    // NIO connect errors (refused, timeout) and channel errors.
    return true
}
