import FjordProtocol
import FjordWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A `host:port` to bootstrap from.
public struct BootstrapAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `host:port[,host:port...]` (IPv6 hosts in brackets; surrounding whitespace and
    /// a `PLAINTEXT://` prefix are accepted).
    public static func parseList(_ text: String) throws -> [BootstrapAddress] {
        var out: [BootstrapAddress] = []
        for raw in text.split(separator: ",") {
            var s = raw.trimmingCharacters(in: " \t")
            if let i = s.firstIndex(of: ":"), s[i...].hasPrefix("://") { s = String(s[s.index(i, offsetBy: 3)...]) }
            guard !s.isEmpty else { continue }
            let host: String, portText: Substring
            if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
                host = String(s[s.index(after: s.startIndex)..<close])
                let rest = s[s.index(after: close)...]
                guard rest.hasPrefix(":") else { throw KafkaClientError.invalidArgument("bootstrap server '\(s)' has no port: use host:port, e.g. localhost:9092") }
                portText = rest.dropFirst()
            } else {
                guard let colon = s.lastIndex(of: ":") else {
                    throw KafkaClientError.invalidArgument("bootstrap server '\(s)' has no port: use host:port, e.g. localhost:9092")
                }
                host = String(s[..<colon])
                portText = s[s.index(after: colon)...]
            }
            guard let port = Int(portText), port > 0, port < 65536, !host.isEmpty else {
                throw KafkaClientError.invalidArgument("bootstrap server '\(s)' is not host:port (e.g. localhost:9092)")
            }
            out.append(BootstrapAddress(host: host, port: port))
        }
        if out.isEmpty { throw KafkaClientError.invalidArgument("no bootstrap server given: use --bootstrap-server host:port") }
        return out
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

/// Client settings shared by the admin, producer and consumer parts.
public struct ClientConfig: Sendable {
    public var bootstrap: [BootstrapAddress]
    public var clientId: String
    /// The time a request may take before it fails (`request.timeout.ms`).
    public var requestTimeoutMs: Int64
    /// The time a connect may take.
    public var connectTimeoutMs: Int64
    /// Largest response frame accepted.
    public var maxFrameSize: Int

    public init(bootstrap: [BootstrapAddress], clientId: String = "fjord-client", requestTimeoutMs: Int64 = 30_000,
                connectTimeoutMs: Int64 = 10_000, maxFrameSize: Int = 256 * 1024 * 1024) {
        self.bootstrap = bootstrap
        self.clientId = clientId
        self.requestTimeoutMs = requestTimeoutMs
        self.connectTimeoutMs = connectTimeoutMs
        self.maxFrameSize = maxFrameSize
    }

    public init(bootstrapServers: String, clientId: String = "fjord-client") throws {
        self.init(bootstrap: try BootstrapAddress.parseList(bootstrapServers), clientId: clientId)
    }
}

/// An open connection to one broker with the API versions it serves.
public final class BrokerConnection: Sendable {
    public let connection: KafkaConnection
    public let versions: ApiVersionTable
    /// The broker's id, or nil for a bootstrap connection.
    public let brokerId: Int32?
    public let address: String

    init(connection: KafkaConnection, versions: ApiVersionTable, brokerId: Int32?, address: String) {
        self.connection = connection
        self.versions = versions
        self.brokerId = brokerId
        self.address = address
    }

    public var isActive: Bool { connection.isActive }

    /// The version this client uses for `api` with this broker.
    public func version(for api: ApiKey) throws -> Int16 {
        guard let v = versions.version(for: api) else {
            throw KafkaClientError.unsupportedApi(api, broker: address, brokerVersions: versions.broker[api])
        }
        return v
    }

    /// Sends `build(version)` at the negotiated version and decodes the response.
    public func send<R: KafkaRequest, S: KafkaResponse>(expecting: S.Type, timeoutMs: Int64,
                                                        _ build: (Int16) throws -> R) -> EventLoopFuture<S> {
        let loop = connection.channel.eventLoop
        do {
            let v = try version(for: R.apiKey)
            let req = try build(v)
            return connection.send(req, version: v, expecting: S.self, timeoutMs: timeoutMs)
        } catch {
            return loop.makeFailedFuture(error)
        }
    }
}

/// Where a request goes.
public enum RequestTarget: Sendable, Hashable {
    /// Any reachable broker (known brokers first, then the bootstrap servers).
    case any
    /// A broker by id.
    case broker(Int32)
}

/// The core of the Kafka client: bootstrap, a cached view of the cluster metadata, one
/// connection per broker with its negotiated API versions.
///
/// All I/O runs on one event loop. Methods are thread-safe; the futures they return complete
/// on that loop. Callers outside an event loop may `wait()` on them (the CLI tools do).
public final class KafkaClient: @unchecked Sendable {
    public let config: ClientConfig
    public let group: EventLoopGroup
    /// The loop all connections of this client use.
    public let loop: EventLoop
    private let ownsGroup: Bool
    private let lock = NIOLock()
    private var _metadata = ClusterMetadata()
    private var connections: [ConnectionKey: EventLoopFuture<BrokerConnection>] = [:]
    private var established: [ConnectionKey: BrokerConnection] = [:]
    private var isClosed = false
    private var bootstrapCursor = 0

    enum ConnectionKey: Hashable {
        case broker(Int32)
        case bootstrap(Int)
    }

    /// A client with its own one-thread event loop group (shut down by ``close()``), or on
    /// `group` when given.
    public init(config: ClientConfig, group: EventLoopGroup? = nil) {
        self.config = config
        if let g = group {
            self.group = g
            ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            ownsGroup = true
        }
        loop = self.group.next()
    }

    public convenience init(bootstrapServers: String, clientId: String = "fjord-client") throws {
        self.init(config: try ClientConfig(bootstrapServers: bootstrapServers, clientId: clientId))
    }

    /// Closes every connection (and the event loop group if the client owns it). Not on the loop.
    public func close() {
        let conns: [EventLoopFuture<BrokerConnection>] = lock.withLock {
            isClosed = true
            let c = Array(connections.values)
            connections = [:]
            established = [:]
            return c
        }
        for c in conns { c.whenSuccess { $0.connection.close() } }
        if ownsGroup {
            try? group.syncShutdownGracefully()
        }
    }

    /// The latest metadata snapshot.
    public var metadata: ClusterMetadata { lock.withLock { _metadata } }

    // MARK: connections

    /// Opens (or reuses) the connection to broker `id` (its address from the metadata).
    public func connection(toBroker id: Int32) -> EventLoopFuture<BrokerConnection> {
        let (existing, node): (EventLoopFuture<BrokerConnection>?, BrokerNode?) = lock.withLock {
            (connections[.broker(id)], _metadata.brokers[id])
        }
        if let e = existing { return e }
        guard let node else {
            return loop.makeFailedFuture(KafkaClientError.invalidArgument("broker \(id) is not in the cluster metadata"))
        }
        return open(key: .broker(id), host: node.host, port: node.port, brokerId: id)
    }

    /// A connection to any reachable broker: an open one if there is one, else known brokers,
    /// then the bootstrap servers, in turn.
    public func anyConnection() -> EventLoopFuture<BrokerConnection> {
        let (open, candidates): (BrokerConnection?, [(ConnectionKey, String, Int, Int32?)]) = lock.withLock {
            let open = established.values.first { $0.isActive && $0.brokerId != nil } ?? established.values.first { $0.isActive }
            var c: [(ConnectionKey, String, Int, Int32?)] = []
            for id in _metadata.brokerIds {
                let b = _metadata.brokers[id]!
                c.append((.broker(id), b.host, b.port, id))
            }
            let n = config.bootstrap.count
            let start = bootstrapCursor
            for i in 0..<n {
                let idx = (start + i) % n
                let b = config.bootstrap[idx]
                c.append((.bootstrap(idx), b.host, b.port, nil))
            }
            return (open, c)
        }
        if let c = open { return loop.makeSucceededFuture(c) }
        return tryInTurn(candidates, index: 0, errors: [])
    }

    private func tryInTurn(_ cands: [(ConnectionKey, String, Int, Int32?)], index: Int, errors: [String]) -> EventLoopFuture<BrokerConnection> {
        guard index < cands.count else {
            let tried = cands.map { "\($0.1):\($0.2)" }
            var seen = Set<String>()
            let unique = tried.filter { seen.insert($0).inserted }
            return loop.makeFailedFuture(KafkaClientError.noBrokerReachable(tried: unique, lastError: errors.last ?? "none"))
        }
        let c = cands[index]
        return open(key: c.0, host: c.1, port: c.2, brokerId: c.3).flatMapError { error in
            self.tryInTurn(cands, index: index + 1, errors: errors + ["\(c.1):\(c.2): \(Self.connectErrorText(error))"])
        }
    }

    /// A connection error as a person reads it ("connection refused"), not NIO's structure.
    static func connectErrorText(_ error: any Error) -> String {
        let s = "\(error)"
        if s.contains("Connection refused") || s.contains("errno: 111") { return "connection refused" }
        if s.contains("connectTimeout") || s.contains("timed out") || s.contains("Timed out") { return "connection timed out" }
        if s.contains("NIOConnectionError") && (s.contains("dnsAError") || s.contains("resolution")) { return "cannot resolve the host name" }
        return s
    }

    private func open(key: ConnectionKey, host: String, port: Int, brokerId: Int32?) -> EventLoopFuture<BrokerConnection> {
        let (existing, promise): (EventLoopFuture<BrokerConnection>?, EventLoopPromise<BrokerConnection>?) = lock.withLock {
            if isClosed { return (loop.makeFailedFuture(KafkaClientError.closed), nil) }
            if let e = connections[key] { return (e, nil) }
            let p = loop.makePromise(of: BrokerConnection.self)
            connections[key] = p.futureResult
            return (nil, p)
        }
        guard let promise else { return existing! }
        let future = promise.futureResult
        let address = "\(host):\(port)"
        let cfg = config
        KafkaConnection.connect(host: host, port: port, group: loop, clientId: cfg.clientId,
                                connectTimeoutMs: cfg.connectTimeoutMs, maxFrameSize: cfg.maxFrameSize)
            .flatMap { conn in
                Self.negotiate(conn, timeoutMs: min(cfg.requestTimeoutMs, 10_000)).map { table in
                    BrokerConnection(connection: conn, versions: table, brokerId: brokerId, address: address)
                }.flatMapErrorThrowing { error in
                    conn.close()
                    throw error
                }
            }
            .whenComplete { result in
                switch result {
                case let .success(bc):
                    self.lock.withLock { self.established[key] = bc }
                    bc.connection.closeFuture.whenComplete { _ in self.forget(key, promise.futureResult) }
                    promise.succeed(bc)
                case let .failure(e):
                    self.forget(key, promise.futureResult)
                    if case .bootstrap = key { self.lock.withLock { self.bootstrapCursor += 1 } }
                    promise.fail(e)
                }
            }
        return future
    }

    /// A new connection of its own to broker `id` (not shared, not cached; the caller closes it).
    /// For requests that may wait long on the broker (JoinGroup) without holding up others.
    public func dedicatedConnection(toBroker id: Int32) -> EventLoopFuture<BrokerConnection> {
        guard let node = lock.withLock({ _metadata.brokers[id] }) else {
            return loop.makeFailedFuture(KafkaClientError.invalidArgument("broker \(id) is not in the cluster metadata"))
        }
        let cfg = config
        return KafkaConnection.connect(host: node.host, port: node.port, group: loop, clientId: cfg.clientId,
                                       connectTimeoutMs: cfg.connectTimeoutMs, maxFrameSize: cfg.maxFrameSize)
            .flatMap { conn in
                Self.negotiate(conn, timeoutMs: min(cfg.requestTimeoutMs, 10_000)).map { table in
                    BrokerConnection(connection: conn, versions: table, brokerId: id, address: node.address)
                }.flatMapErrorThrowing { error in
                    conn.close()
                    throw error
                }
            }
    }

    private func forget(_ key: ConnectionKey, _ f: EventLoopFuture<BrokerConnection>) {
        lock.withLock {
            if connections[key] === f {
                connections[key] = nil
                established[key] = nil
            }
        }
    }

    /// ApiVersions v3, falling back to v0 for brokers that do not know v3 (KIP-511).
    static func negotiate(_ conn: KafkaConnection, timeoutMs: Int64) -> EventLoopFuture<ApiVersionTable> {
        var req = ApiVersionsRequest()
        req.clientSoftwareName = "fjord"
        req.clientSoftwareVersion = "0.1"
        return conn.sendRaw(req, version: 3, timeoutMs: timeoutMs).flatMapThrowing { body -> ApiVersionTable? in
            var b = body
            if let r = try? ApiVersionsResponse(from: &b, version: 3), r.errorCode == 0 {
                return ApiVersionTable(r)
            }
            return nil
        }.flatMap { table in
            if let t = table { return conn.channel.eventLoop.makeSucceededFuture(t) }
            return conn.send(ApiVersionsRequest(), version: 0, expecting: ApiVersionsResponse.self, timeoutMs: timeoutMs)
                .flatMapThrowing { r in
                    if let e = KafkaClientError.check(r.errorCode, context: "ApiVersions") { throw e }
                    return ApiVersionTable(r)
                }
        }
    }

    // MARK: requests

    /// Sends `build(version)` to `target` at the version negotiated with that broker. Requests
    /// to `.any` move on to another broker when a connection fails (up to `attempts` times).
    public func send<R: KafkaRequest, S: KafkaResponse>(to target: RequestTarget, expecting: S.Type, timeoutMs: Int64? = nil,
                                                        attempts: Int = 3,
                                                        _ build: @escaping @Sendable (Int16) throws -> R) -> EventLoopFuture<S> {
        let t = timeoutMs ?? config.requestTimeoutMs
        let conn: EventLoopFuture<BrokerConnection>
        switch target {
        case .any: conn = anyConnection()
        case let .broker(id): conn = connection(toBroker: id)
        }
        return conn.flatMap { c in
            c.send(expecting: S.self, timeoutMs: t, build)
        }.flatMapError { error in
            if target == .any, attempts > 1, error is KafkaConnectionError {
                return self.send(to: target, expecting: S.self, timeoutMs: timeoutMs, attempts: attempts - 1, build)
            }
            return self.loop.makeFailedFuture(error)
        }
    }

    // MARK: metadata

    /// Asks any broker for the metadata of `topics` (nil: all topics) and merges it into the cache.
    public func refreshMetadata(topics: [String]? = nil, allowAutoTopicCreation: Bool = false) -> EventLoopFuture<ClusterMetadata> {
        send(to: .any, expecting: MetadataResponse.self) { _ in
            var r = MetadataRequest()
            if let topics {
                r.topics = topics.map { n in
                    var t = MetadataRequest.MetadataRequestTopic()
                    t.name = n
                    return t
                }
            } else {
                r.topics = nil
            }
            r.allowAutoTopicCreation = allowAutoTopicCreation
            return r
        }.map { resp in
            let fresh = ClusterMetadata(resp)
            return self.lock.withLock {
                self._metadata.merge(fresh, allTopics: topics == nil)
                return self._metadata
            }
        }
    }

    /// Refreshes until `ready` holds for the metadata (or `timeoutMs` passes); returns the last snapshot.
    public func awaitMetadata(topics: [String]?, timeoutMs: Int64, allowAutoTopicCreation: Bool = false,
                              until ready: @escaping @Sendable (ClusterMetadata) -> Bool) -> EventLoopFuture<ClusterMetadata> {
        let deadline = NIODeadline.now() + .milliseconds(timeoutMs)
        return attemptMetadata(topics: topics, deadline: deadline, allowAutoTopicCreation: allowAutoTopicCreation, until: ready)
    }

    private func attemptMetadata(topics: [String]?, deadline: NIODeadline, allowAutoTopicCreation: Bool,
                                 until ready: @escaping @Sendable (ClusterMetadata) -> Bool) -> EventLoopFuture<ClusterMetadata> {
        refreshMetadata(topics: topics, allowAutoTopicCreation: allowAutoTopicCreation).flatMap { md in
            if ready(md) || NIODeadline.now() >= deadline { return self.loop.makeSucceededFuture(md) }
            return self.loop.flatScheduleTask(in: .milliseconds(100)) {
                self.attemptMetadata(topics: topics, deadline: deadline, allowAutoTopicCreation: allowAutoTopicCreation, until: ready)
            }.futureResult
        }.flatMapError { error in
            if NIODeadline.now() >= deadline { return self.loop.makeFailedFuture(error) }
            return self.loop.flatScheduleTask(in: .milliseconds(200)) {
                self.attemptMetadata(topics: topics, deadline: deadline, allowAutoTopicCreation: allowAutoTopicCreation, until: ready)
            }.futureResult
        }
    }
}
