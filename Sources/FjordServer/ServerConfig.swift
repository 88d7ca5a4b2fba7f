import FjordMetadata
import FjordRaft
import FjordStorage

/// A host:port endpoint of a listener.
public struct ListenerEndpoint: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var listenerName: String
    public var host: String
    public var port: Int

    public init(listenerName: String, host: String, port: Int) {
        self.listenerName = listenerName
        self.host = host
        self.port = port
    }

    public var description: String { "\(listenerName)://\(host):\(port)" }
}

/// A voter from `controller.quorum.voters` (`id@host:port`).
public struct QuorumVoter: Sendable, Equatable {
    public var id: Int32
    public var host: String
    public var port: Int
}

public enum ProcessRole: String, Sendable, Hashable, CaseIterable {
    case broker, controller
}

/// A server configuration error: names the key and the problem, as Kafka's ConfigException.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var key: String?
    public var message: String

    public init(key: String?, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String {
        if let key { return "Invalid value for configuration \(key): \(message)" }
        return message
    }
}

/// The server's configuration: Kafka's keys and defaults (KRaft mode only).
public struct ServerConfig: Sendable {
    public var properties: JavaProperties
    public var processRoles: Set<ProcessRole>
    public var nodeId: Int32
    public var voters: [QuorumVoter]
    public var bootstrapServers: [(host: String, port: Int)]
    public var listeners: [ListenerEndpoint]
    public var advertisedListeners: [ListenerEndpoint]
    public var securityProtocolMap: [String: String]
    public var controllerListenerNames: [String]
    public var interBrokerListenerName: String
    public var logDirs: [String]
    public var metadataLogDir: String
    public var numPartitions: Int32
    public var defaultReplicationFactor: Int16
    public var minInsyncReplicas: Int32
    public var autoCreateTopicsEnable: Bool
    public var brokerHeartbeatIntervalMs: Int64
    public var brokerSessionTimeoutMs: Int64
    public var uncleanLeaderElectionEnable: Bool
    public var autoLeaderRebalanceEnable: Bool
    public var leaderImbalanceCheckIntervalSeconds: Int64
    public var leaderImbalancePerBrokerPercentage: Int32
    public var socketRequestMaxBytes: Int
    public var messageMaxBytes: Int32
    public var raft: RaftConfig
    public var clusterId: String?

    public var isBroker: Bool { processRoles.contains(.broker) }
    public var isController: Bool { processRoles.contains(.controller) }

    /// Every key this build reads, with its default (for `DescribeConfigs` and the
    /// unknown-key warning). Kafka keys Fjord accepts but does not act on yet are listed
    /// in `acceptedKeys`.
    /// Broker keys Kafka can change at runtime (its DynamicBrokerConfig): the broker
    /// synonyms of topic configs (`log.retention.ms`, `message.max.bytes`, ...), thread pools,
    /// the log cleaner, connection quotas, listeners and replication throttles.
    public static let dynamicBrokerKeys: Set<String> = Set(TopicConfigs.definitions.values.compactMap(\.brokerSynonym)).union([
        "num.io.threads", "num.network.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir",
        "background.threads",
        "log.cleaner.threads", "log.cleaner.dedupe.buffer.size", "log.cleaner.io.buffer.size",
        "log.cleaner.io.buffer.load.factor", "log.cleaner.io.max.bytes.per.second", "log.cleaner.backoff.ms",
        "max.connections", "max.connections.per.ip", "max.connections.per.ip.overrides", "max.connection.creation.rate",
        "listeners", "advertised.listeners", "listener.security.protocol.map",
        "leader.replication.throttled.rate", "follower.replication.throttled.rate",
        "replica.alter.log.dirs.io.max.bytes.per.second",
        "metric.reporters", "producer.id.expiration.ms", "transaction.partition.verification.enable",
    ])

    /// Whether `key` may be changed at runtime: Kafka's dynamic broker keys, per-listener and
    /// security keys, and keys that are not Kafka broker configs at all (custom configs are
    /// stored, as Kafka does). A known static key (`log.dirs`, `node.id`, ...) may not.
    public static func isDynamicBrokerConfig(_ key: String) -> Bool {
        if dynamicBrokerKeys.contains(key) { return true }
        if key.hasPrefix("listener.name.") || key.hasPrefix("ssl.") || key.hasPrefix("sasl.") { return true }
        return defaults[key] == nil && !acceptedKeys.contains(key)
    }

    public static let defaults: [String: String] = [
        "process.roles": "",
        "node.id": "-1",
        "controller.quorum.voters": "",
        "controller.quorum.bootstrap.servers": "",
        "listeners": "PLAINTEXT://:9092",
        "advertised.listeners": "",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        "controller.listener.names": "",
        "inter.broker.listener.name": "",
        "log.dirs": "",
        "log.dir": "/tmp/kafka-logs",
        "metadata.log.dir": "",
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "true",
        "broker.heartbeat.interval.ms": "2000",
        "broker.session.timeout.ms": "9000",
        "unclean.leader.election.enable": "false",
        "auto.leader.rebalance.enable": "true",
        "leader.imbalance.check.interval.seconds": "300",
        "leader.imbalance.per.broker.percentage": "10",
        "socket.request.max.bytes": "104857600",
        "message.max.bytes": "1048588",
        "controller.quorum.election.timeout.ms": "1000",
        "controller.quorum.fetch.timeout.ms": "2000",
        "controller.quorum.election.backoff.max.ms": "1000",
        "controller.quorum.request.timeout.ms": "2000",
        "controller.quorum.retry.backoff.ms": "20",
        "controller.quorum.append.linger.ms": "25",
        "log.segment.bytes": "1073741824",
        "log.roll.hours": "168",
        "log.retention.hours": "168",
        "log.retention.bytes": "-1",
        "log.retention.check.interval.ms": "300000",
        "log.index.interval.bytes": "4096",
        "log.index.size.max.bytes": "10485760",
        "log.flush.interval.messages": "9223372036854775807",
        "log.cleanup.policy": "delete",
        "log.message.timestamp.type": "CreateTime",
        "offsets.topic.num.partitions": "50",
        "offsets.topic.replication.factor": "3",
        "offsets.retention.minutes": "10080",
        "offsets.retention.check.interval.ms": "600000",
        "fjord.offsets.retention.ms": "",
        "transaction.state.log.num.partitions": "50",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "group.initial.rebalance.delay.ms": "3000",
        "group.min.session.timeout.ms": "6000",
        "group.max.session.timeout.ms": "1800000",
        "group.max.size": "2147483647",
        "replica.lag.time.max.ms": "30000",
        "replica.fetch.max.bytes": "1048576",
        "num.network.threads": "3",
        "num.io.threads": "8",
        "queued.max.requests": "500",
        "num.recovery.threads.per.data.dir": "2",
        "socket.send.buffer.bytes": "102400",
        "socket.receive.buffer.bytes": "102400",
        "metadata.log.max.record.bytes.between.snapshots": "20971520",
        "metadata.log.max.snapshot.interval.ms": "3600000",
        "metadata.max.retention.bytes": "104857600",
        "metadata.max.retention.ms": "604800000",
        "metadata.log.segment.bytes": "1073741824",
        "metadata.log.segment.ms": "604800000",
        "metadata.max.idle.interval.ms": "500",
        "delete.topic.enable": "true",
    ]

    /// Kafka keys that are accepted silently (no warning) even though Fjord has no use for them.
    public static let acceptedKeys: Set<String> = [
        "num.replica.fetchers", "log.retention.minutes", "log.retention.ms", "log.roll.ms", "log.flush.interval.ms",
        "log.flush.scheduler.interval.ms", "log.cleaner.enable", "log.cleaner.threads", "compression.type",
        "zookeeper.connect", "broker.rack", "group.coordinator.rebalance.protocols", "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr", "connections.max.idle.ms",
        "transaction.max.timeout.ms", "producer.id.expiration.ms",
        "log.cleaner.dedupe.buffer.size", "background.threads", "initial.broker.registration.timeout.ms",
    ]

    public init(properties p: JavaProperties) throws {
        self.properties = p
        func value(_ key: String) -> String { p[key] ?? Self.defaults[key] ?? "" }
        func int<T: FixedWidthInteger>(_ key: String, _ type: T.Type, min: T? = nil) throws -> T {
            let raw = value(key).trimmingWhitespace
            guard let v = T(raw) else { throw ConfigError(key: key, "\"\(raw)\" is not a valid \(T.self == Int64.self ? "long" : "int")") }
            if let min, v < min { throw ConfigError(key: key, "\(v) is below the minimum \(min)") }
            return v
        }
        func bool(_ key: String) throws -> Bool {
            switch value(key).trimmingWhitespace.lowercased() {
            case "true": return true
            case "false": return false
            case let raw: throw ConfigError(key: key, "\"\(raw)\" is not a boolean (true or false)")
            }
        }
        func list(_ key: String) -> [String] {
            value(key).split(separator: ",").map { String($0).trimmingWhitespace }.filter { !$0.isEmpty }
        }

        // process.roles: KRaft only.
        let roles = list("process.roles")
        guard !roles.isEmpty else {
            throw ConfigError(key: "process.roles", "must be set to broker, controller or broker,controller (Fjord runs in KRaft mode only)")
        }
        var rs = Set<ProcessRole>()
        for r in roles {
            guard let role = ProcessRole(rawValue: r) else {
                throw ConfigError(key: "process.roles", "unknown role \"\(r)\"; expected broker and/or controller")
            }
            rs.insert(role)
        }
        processRoles = rs
        nodeId = try int("node.id", Int32.self)
        guard nodeId >= 0 else { throw ConfigError(key: "node.id", "must be set to a non-negative integer") }

        // Voters: id@host:port,...
        var vs: [QuorumVoter] = []
        for entry in list("controller.quorum.voters") {
            guard let at = entry.firstIndex(of: "@"), let id = Int32(entry[..<at]),
                  let (host, port) = Self.hostPort(String(entry[entry.index(after: at)...])) else {
                throw ConfigError(key: "controller.quorum.voters", "\"\(entry)\" is not of the form id@host:port")
            }
            if vs.contains(where: { $0.id == id }) { throw ConfigError(key: "controller.quorum.voters", "voter \(id) is listed twice") }
            vs.append(QuorumVoter(id: id, host: host, port: port))
        }
        voters = vs
        var bs: [(String, Int)] = []
        for entry in list("controller.quorum.bootstrap.servers") {
            guard let hp = Self.hostPort(entry) else {
                throw ConfigError(key: "controller.quorum.bootstrap.servers", "\"\(entry)\" is not of the form host:port")
            }
            bs.append(hp)
        }
        bootstrapServers = bs
        guard !voters.isEmpty || !bootstrapServers.isEmpty else {
            throw ConfigError(key: "controller.quorum.voters",
                              "either controller.quorum.voters or controller.quorum.bootstrap.servers must be set")
        }

        var spm: [String: String] = [:]
        for entry in list("listener.security.protocol.map") {
            let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ConfigError(key: "listener.security.protocol.map", "\"\(entry)\" is not NAME:PROTOCOL") }
            spm[parts[0]] = parts[1]
        }
        securityProtocolMap = spm
        listeners = try Self.endpoints(list("listeners"), key: "listeners")
        let adv = try Self.endpoints(list("advertised.listeners"), key: "advertised.listeners")
        let cln = list("controller.listener.names")
        controllerListenerNames = cln
        let nid = nodeId
        for l in listeners {
            guard let proto = spm[l.listenerName] else {
                throw ConfigError(key: "listener.security.protocol.map",
                                  "no security protocol for listener \(l.listenerName) (add \(l.listenerName):PLAINTEXT)")
            }
            guard proto == "PLAINTEXT" else {
                throw ConfigError(key: "listeners", "listener \(l.listenerName) uses \(proto); Fjord serves PLAINTEXT listeners only so far")
            }
        }
        let names = listeners.map(\.listenerName)
        guard Set(names).count == names.count else { throw ConfigError(key: "listeners", "each listener name must appear once") }
        if rs.contains(.controller) {
            guard let c = controllerListenerNames.first else {
                throw ConfigError(key: "controller.listener.names", "must be set on a node with the controller role")
            }
            guard names.contains(c) else {
                throw ConfigError(key: "controller.listener.names", "the controller listener \(c) is not in listeners (\(value("listeners")))")
            }
            // With controller.quorum.bootstrap.servers only, the voters come from the
            // storage (format --standalone / --initial-controllers): see QuorumBootstrap.
            guard vs.isEmpty || vs.contains(where: { $0.id == nid }) else {
                throw ConfigError(key: "controller.quorum.voters", "node.id \(nodeId) has the controller role but is not one of the voters")
            }
        } else if names.contains(where: { cln.contains($0) }) {
            throw ConfigError(key: "listeners", "a broker-only node must not define the controller listener \(cln.joined(separator: ","))")
        }
        let brokerListeners = listeners.filter { !cln.contains($0.listenerName) }
        if rs.contains(.broker), brokerListeners.isEmpty {
            throw ConfigError(key: "listeners", "a broker needs at least one listener that is not a controller listener")
        }
        // Advertised listeners default to the broker listeners; a wildcard host is advertised as the host name.
        let advertised = adv.isEmpty ? brokerListeners : adv
        advertisedListeners = advertised.map { e in
            var e = e
            if e.host.isEmpty || e.host == "0.0.0.0" { e.host = "localhost" }
            return e
        }
        let ibl = value("inter.broker.listener.name").trimmingWhitespace
        let interBroker = ibl.isEmpty ? (brokerListeners.first?.listenerName ?? "PLAINTEXT") : ibl
        interBrokerListenerName = interBroker
        if rs.contains(.broker), !brokerListeners.contains(where: { $0.listenerName == interBroker }) {
            throw ConfigError(key: "inter.broker.listener.name", "\(interBroker) is not one of the listeners")
        }

        var dirs = list("log.dirs")
        if dirs.isEmpty { dirs = list("log.dir") }
        guard !dirs.isEmpty else { throw ConfigError(key: "log.dirs", "at least one log directory is needed") }
        logDirs = dirs
        let mdir = value("metadata.log.dir").trimmingWhitespace
        metadataLogDir = mdir.isEmpty ? dirs[0] : mdir

        numPartitions = try int("num.partitions", Int32.self, min: 1)
        defaultReplicationFactor = try int("default.replication.factor", Int16.self, min: 1)
        minInsyncReplicas = try int("min.insync.replicas", Int32.self, min: 1)
        autoCreateTopicsEnable = try bool("auto.create.topics.enable")
        brokerHeartbeatIntervalMs = try int("broker.heartbeat.interval.ms", Int64.self, min: 1)
        brokerSessionTimeoutMs = try int("broker.session.timeout.ms", Int64.self, min: 1)
        uncleanLeaderElectionEnable = try bool("unclean.leader.election.enable")
        autoLeaderRebalanceEnable = try bool("auto.leader.rebalance.enable")
        leaderImbalanceCheckIntervalSeconds = try int("leader.imbalance.check.interval.seconds", Int64.self, min: 1)
        leaderImbalancePerBrokerPercentage = try int("leader.imbalance.per.broker.percentage", Int32.self, min: 0)
        socketRequestMaxBytes = try int("socket.request.max.bytes", Int.self, min: 1)
        messageMaxBytes = try int("message.max.bytes", Int32.self, min: 0)
        _ = try int("offsets.topic.num.partitions", Int32.self, min: 1)
        _ = try int("offsets.topic.replication.factor", Int16.self, min: 1)
        _ = try int("group.initial.rebalance.delay.ms", Int32.self, min: 0)
        _ = try int("log.segment.bytes", Int32.self, min: 14)

        var raft = RaftConfig(nodeId: nodeId, voters: voters.map(\.id))
        raft.electionTimeoutMs = try int("controller.quorum.election.timeout.ms", Int64.self, min: 1)
        raft.fetchTimeoutMs = try int("controller.quorum.fetch.timeout.ms", Int64.self, min: 1)
        raft.electionBackoffMaxMs = try int("controller.quorum.election.backoff.max.ms", Int64.self, min: 1)
        raft.requestTimeoutMs = try int("controller.quorum.request.timeout.ms", Int64.self, min: 1)
        raft.retryBackoffMs = try int("controller.quorum.retry.backoff.ms", Int64.self, min: 0)
        raft.appendLingerMs = try int("controller.quorum.append.linger.ms", Int64.self, min: 0)
        raft.fetchMaxWaitMs = Int32(min(Int64(500), raft.fetchTimeoutMs / 2))
        self.raft = raft
    }

    /// Whether the voters come from the storage and the bootstrap servers (no static
    /// `controller.quorum.voters`).
    public var isDynamicQuorum: Bool { properties["controller.quorum.voters"]?.trimmingWhitespace.isEmpty ?? true }

    /// This configuration with `voters` as the quorum (resolved for a dynamic quorum).
    public func withVoters(_ voters: [QuorumVoter]) -> ServerConfig {
        var c = self
        c.voters = voters
        c.raft.voters = voters.map(\.id).sorted()
        return c
    }

    /// Keys in the file that this build does not know (warned about at start).
    public var unknownKeys: [String] {
        properties.order.filter { Self.defaults[$0] == nil && !Self.acceptedKeys.contains($0) }
    }

    /// The controller listener's configured endpoint on this node.
    public var controllerListener: ListenerEndpoint? {
        listeners.first { controllerListenerNames.contains($0.listenerName) }
    }

    public var brokerListeners: [ListenerEndpoint] {
        listeners.filter { !controllerListenerNames.contains($0.listenerName) }
    }

    static func hostPort(_ s: String) -> (String, Int)? {
        // [v6]:port or host:port
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (0...65535).contains(port) else { return nil }
            return (host, port)
        }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        return (String(s[..<colon]), port)
    }

    static func endpoints(_ entries: [String], key: String) throws -> [ListenerEndpoint] {
        try entries.map { e in
            guard let sep = e.range(of: "://"), let (host, port) = hostPort(String(e[sep.upperBound...])) else {
                throw ConfigError(key: key, "\"\(e)\" is not of the form NAME://host:port")
            }
            return ListenerEndpoint(listenerName: String(e[..<sep.lowerBound]).uppercased(), host: host, port: port)
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
