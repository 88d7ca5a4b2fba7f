#if canImport(Glibc)
import Glibc
#endif
import FjordBroker
import FjordController
import FjordMetadata
import FjordProtocol
import FjordRaft
import FjordRaftRuntime
import FjordRecords
import FjordStorage
import FjordWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One `fjord` process: the Raft runtime over `__cluster_metadata-0` (a voter on
/// controllers, an observer on brokers), the metadata publisher, the controller shell
/// (controller role), broker registration and heartbeats (broker role), and the
/// listeners.
public final class FjordNode: @unchecked Sendable {
    public let config: ServerConfig
    public let clusterId: String
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let raftGroup: MultiThreadedEventLoopGroup
    /// Applies metadata images to the broker's partitions (log creation and deletion).
    let metadataGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let raft: RaftRuntime
    let transport: NetworkRaftTransport
    let publisher: MetadataPublisher
    let controllerChannel: ControllerChannel
    private(set) var controller: ControllerShell?
    private(set) var lifecycle: BrokerLifecycle?
    private(set) var replicaManager: ReplicaManager?
    private(set) var producerIds: ProducerIdManager?
    private(set) var groupCoordinator: GroupCoordinator?
    private var brokerNetwork: BrokerNetwork?
    private var logManager: LogManager?
    private var server: KafkaServer?
    private var dispatcher: NodeDispatcher?
    private let locks: [DirectoryLock]
    private let leader = NIOLockedValueBox<Int32>(-1)
    /// A dynamic quorum's voters' metadata directory ids (DescribeQuorum reports them).
    private(set) var voterDirectoryIds: [Int32: KafkaUUID] = [:]
    /// On a broker, the newest image its partitions have applied (set after
    /// `ReplicaManager.applyImage` returns).
    private let appliedImage = NIOLockedValueBox<MetadataImage?>(nil)

    /// The image client-facing answers (Metadata, DescribeCluster, DescribeConfigs, …) come
    /// from. On a broker it trails the published image until the replica manager has applied
    /// it, so a client never learns of a partition leader before that leader has the
    /// partition: otherwise an `acks=0` produce sent on such an answer would be dropped.
    var clientImage: MetadataImage {
        appliedImage.withLockedValue { $0 } ?? publisher.image
    }

    /// Checks the directories (formatted, one cluster, this node), locks them and opens the
    /// metadata log. Throws with Kafka's message when a directory is not usable.
    public init(config: ServerConfig, logger: Logger) throws {
        var config = config
        var snapshotControl: [(ControlRecordType, ByteBuffer)] = []
        if config.voters.isEmpty {
            // controller.quorum.bootstrap.servers only: the voters come from the storage or
            // from the bootstrap controllers, and every snapshot this node writes keeps them.
            config = config.withVoters(try QuorumBootstrap.resolve(config, logger: logger))
            let stored = try QuorumBootstrap.readVoters(metadataDir: config.metadataLogDir)
            let voters = stored ?? config.voters.map {
                QuorumBootstrap.Voter(id: $0.id, directoryId: .zero, host: $0.host, port: $0.port, listenerName: config.controllerListenerNames.first ?? "CONTROLLER")
            }
            snapshotControl = try QuorumBootstrap.controlRecords(voters)
            voterDirectoryIds = Dictionary(voters.map { ($0.id, $0.directoryId) }, uniquingKeysWith: { a, _ in a }).filter { $0.value != .zero }
        }
        self.config = config
        self.logger = logger
        self.clusterId = try StorageTool.verifyFormatted(config: config)
        var dirs = config.logDirs
        if !dirs.contains(config.metadataLogDir) { dirs.append(config.metadataLogDir) }
        // A broker's LogManager locks the log directories itself; the node locks the rest.
        var locks: [DirectoryLock] = []
        for d in dirs where !(config.isBroker && config.logDirs.contains(d)) { locks.append(try DirectoryLock(dir: d)) }
        self.locks = locks
        if config.isBroker {
            var defaults: [String: String] = [:]
            for c in ConfigDescriber.topicConfigs {
                if let v = ConfigDescriber.staticValue(for: c.brokerSynonym, config: config) { defaults[c.name] = v }
            }
            let logConfig: LogConfig
            do {
                logConfig = try LogConfig(overrides: defaults)
            } catch {
                throw ConfigError(key: nil, "invalid log configuration: \(error)")
            }
            logManager = try LogManager(logDirs: config.logDirs, defaultConfig: logConfig, nowMs: RaftRuntime.wallClockMs(), logger: logger)
        }
        // num.network.threads event loops serve the connections and the requests on them
        // (Fjord handles a request on its connection's loop; num.io.threads has no pool to size).
        let threads = max(1, config.properties["num.network.threads"].flatMap(Int.init) ?? 3)
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        transport = NetworkRaftTransport(group: group, voters: config.voters, clusterId: clusterId,
                                         requestTimeoutMs: config.raft.requestTimeoutMs, logger: logger)
        var seed = UInt64(UInt32(bitPattern: config.nodeId))
        seed = seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(RaftRuntime.wallClockMs())
        // The Raft core gets a thread of its own: votes, fetches and fsyncs never wait behind
        // request handling or log creation.
        raftGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var metadataLogConfig = LogConfig()
        if let v = config.properties["metadata.log.segment.bytes"].flatMap(Int.init) { metadataLogConfig.segmentBytes = v }
        if let v = config.properties["metadata.log.segment.ms"].flatMap(Int64.init) { metadataLogConfig.segmentMs = v }
        raft = try RaftRuntime(config: config.raft, dataDir: config.metadataLogDir, loop: raftGroup.next(), transport: transport,
                               seed: seed, logConfig: metadataLogConfig, logger: logger)
        var policy = SnapshotPolicy()
        if let v = config.properties["metadata.log.max.record.bytes.between.snapshots"].flatMap(Int64.init) { policy.maxBytesBetweenSnapshots = v }
        if let v = config.properties["metadata.log.max.snapshot.interval.ms"].flatMap(Int64.init) { policy.maxIntervalMs = v }
        if let v = config.properties["metadata.max.retention.bytes"].flatMap(Int64.init) { policy.retentionBytes = v }
        if let v = config.properties["metadata.max.retention.ms"].flatMap(Int64.init) { policy.retentionMs = v }
        publisher = MetadataPublisher(raft: raft, policy: policy, snapshotLoop: metadataGroup.next(), control: snapshotControl, logger: logger)
        // The publisher follows the committed log from the newest snapshot; a snapshot that
        // cannot be read stops the node (the log before it may be gone).
        try raft.register(publisher).wait()
        controllerChannel = ControllerChannel(raft: raft, group: group, voters: config.voters, nodeId: config.nodeId, logger: logger)
        if config.isController {
            var cc = ControllerConfig(nodeId: config.nodeId, clusterId: clusterId)
            cc.brokerSessionTimeoutMs = config.brokerSessionTimeoutMs
            cc.brokerHeartbeatIntervalMs = config.brokerHeartbeatIntervalMs
            cc.defaultNumPartitions = config.numPartitions
            cc.defaultReplicationFactor = config.defaultReplicationFactor
            cc.minInsyncReplicas = config.minInsyncReplicas
            cc.uncleanLeaderElectionEnable = config.uncleanLeaderElectionEnable
            cc.autoLeaderRebalanceEnable = config.autoLeaderRebalanceEnable
            cc.leaderImbalanceCheckIntervalMs = config.leaderImbalanceCheckIntervalSeconds * 1000
            cc.leaderImbalancePerBrokerPercentage = config.leaderImbalancePerBrokerPercentage
            cc.isDynamicBrokerConfig = { ServerConfig.isDynamicBrokerConfig($0) }
            let mv = (try? StorageTool.readBootstrapMetadataVersion(dir: config.metadataLogDir)) ?? nil
            controller = ControllerShell(raft: raft, publisher: publisher, config: cc,
                                         bootstrapMetadataVersion: mv ?? MetadataVersion.latest.level, seed: seed, logger: logger)
        }
    }

    /// The leader of the metadata quorum as last reported by the Raft runtime.
    var knownLeaderId: Int32 { leader.withLockedValue { $0 } }

    public func start() throws {
        let raft = self.raft
        let controller = self.controller
        let watcher = NodeRaftListener(leader: leader, controller: controller)
        watcher.node = self
        _ = raft.register(watcher)
        if let controller {
            // In combined mode a voter's id is its broker's id: a controller port that
            // refuses connections means that node's broker is gone too.
            let transport = self.transport
            transport.onPeerRefused = { id in controller.brokerUnreachable(id) }
            controller.knownDeadVoters = { transport.refusedPeers }
        }
        raft.start()
        controller?.start()
        let dispatcher = NodeDispatcher(node: self)
        self.dispatcher = dispatcher
        let server = KafkaServer(group: group, maxFrameSize: config.socketRequestMaxBytes,
                                 maxQueuedRequests: config.properties["queued.max.requests"].flatMap(Int.init) ?? 500, logger: logger)
        if config.isController, let l = config.controllerListener {
            try server.bind(l, controllerListener: true, dispatcher: dispatcher)
            registerController(listener: l)
        }
        self.server = server
        if config.isBroker, let logManager {
            let network = BrokerNetwork(channel: controllerChannel, publisher: publisher, group: group,
                                        listenerName: config.interBrokerListenerName, nodeId: config.nodeId)
            brokerNetwork = network
            var bc = BrokerConfig(nodeId: config.nodeId)
            bc.minInsyncReplicas = config.minInsyncReplicas
            bc.messageMaxBytes = config.messageMaxBytes
            bc.autoCreateTopicsEnable = config.autoCreateTopicsEnable
            if let v = config.properties["replica.lag.time.max.ms"].flatMap(Int64.init) { bc.replicaLagTimeMaxMs = v }
            if let v = config.properties["replica.fetch.max.bytes"].flatMap(Int32.init) { bc.replicaFetchMaxBytes = v }
            if let v = config.properties["replica.fetch.wait.max.ms"].flatMap(Int32.init) { bc.replicaFetchWaitMaxMs = v }
            let rm = ReplicaManager(config: bc, logManager: logManager, transport: network, group: group,
                                    clock: RaftRuntime.wallClockMs, logger: logger)
            replicaManager = rm
            var gc = GroupCoordinatorConfig()
            if let v = config.properties["offsets.topic.num.partitions"].flatMap(Int32.init) { gc.offsetsTopicPartitions = v }
            if let v = config.properties["offsets.topic.replication.factor"].flatMap(Int16.init) { gc.offsetsTopicReplicationFactor = v }
            if let v = config.properties["group.initial.rebalance.delay.ms"].flatMap(Int64.init) { gc.initialRebalanceDelayMs = v }
            if let v = config.properties["group.min.session.timeout.ms"].flatMap(Int32.init) { gc.minSessionTimeoutMs = v }
            if let v = config.properties["group.max.session.timeout.ms"].flatMap(Int32.init) { gc.maxSessionTimeoutMs = v }
            if let v = config.properties["group.max.size"].flatMap(Int32.init) { gc.maxSize = v }
            if let v = config.properties["offsets.retention.minutes"].flatMap(Int64.init) { gc.offsetsRetentionMs = v * 60_000 }
            if let v = config.properties["offsets.retention.check.interval.ms"].flatMap(Int64.init) { gc.offsetsRetentionCheckIntervalMs = v }
            // Not a Kafka key: retention below a minute, for tests and development clusters.
            if let v = config.properties["fjord.offsets.retention.ms"].flatMap(Int64.init) { gc.offsetsRetentionMs = v }
            let coordinator = GroupCoordinator(config: gc, replicaManager: rm, loop: group.next(), clock: RaftRuntime.wallClockMs, logger: logger)
            groupCoordinator = coordinator
            // Applying an image creates and deletes logs (file I/O): it runs on its own serial
            // loop, never on the Raft loop, whose fetches and votes must not wait for it.
            // Images are applied in order; a burst collapses to the latest.
            let metadataLoop = metadataGroup.next()
            let latest = NIOLockedValueBox<MetadataImage?>(nil)
            let applied = appliedImage
            publisher.subscribe { image in
                let first = latest.withLockedValue { pending -> Bool in
                    defer { pending = image }
                    return pending == nil
                }
                guard first else { return }
                metadataLoop.execute {
                    while let next = latest.withLockedValue({ p -> MetadataImage? in defer { p = nil }; return p }) {
                        rm.applyImage(next)
                        applied.withLockedValue { $0 = next }
                        coordinator.onLeadershipChange()
                    }
                }
            }
            rm.start()
            coordinator.start()
        }
        if config.isBroker {
            var dirIds: [KafkaUUID] = []
            for d in config.logDirs {
                if let id = (try? MetaProperties.read(dir: d))??.directoryId { dirIds.append(id) }
            }
            let lc = BrokerLifecycle(config: config, clusterId: clusterId, channel: controllerChannel, publisher: publisher,
                                     logDirIds: dirIds, loop: group.next(), logger: logger)
            lifecycle = lc
            replicaManager?.brokerEpoch = { lc.currentBrokerEpoch }
            if let health = replicaManager?.logDirHealth {
                lc.storageFailing = { health.probe() }
            }
            replicaManager?.sessionIsCurrent = { lc.sessionIsCurrent(nowMs: RaftRuntime.wallClockMs()) }
            if let network = brokerNetwork {
                producerIds = ProducerIdManager(transport: network, brokerId: config.nodeId, brokerEpoch: { lc.currentBrokerEpoch })
            }
            lc.start()
            // Clients are served once the broker has caught up with the metadata log and the
            // controller has unfenced it (Kafka opens its broker listeners at the same point).
            logger.info("waiting for the controller to unfence this broker before opening the broker listeners")
            let listeners = config.brokerListeners
            let logger = self.logger
            lc.unfenced.futureResult.whenSuccess {
                for l in listeners {
                    server.bindAsync(l, controllerListener: false, dispatcher: dispatcher).whenFailure { error in
                        logger.critical("cannot open the broker listener \(l); exiting", metadata: ["error": "\(error)"])
                        exit(1)
                    }
                }
            }
        }
        logger.info("Fjord node started", metadata: ["node.id": "\(config.nodeId)", "process.roles": "\(config.processRoles.map(\.rawValue).sorted().joined(separator: ","))",
                                                     "cluster.id": "\(clusterId)"])
    }

    /// Graceful stop: controlled shutdown for a broker, then listeners, Raft and the loops.
    public func shutdown() {
        logger.info("shutting down")
        if let lc = lifecycle {
            _ = try? lc.controlledShutdown(timeoutMs: 5000).wait()
            lc.stop()
        }
        server?.close()
        groupCoordinator?.stop()
        replicaManager?.shutdown()
        brokerNetwork?.close()
        controller?.stop()
        _ = try? raft.stop().wait()
        transport.closeAll()
        controllerChannel.close()
        try? group.syncShutdownGracefully()
        try? raftGroup.syncShutdownGracefully()
        try? metadataGroup.syncShutdownGracefully()
        logger.info("shut down")
    }

    // MARK: views for the dispatcher

    /// Unfenced brokers with their endpoint on `listener` (the listener the client used).
    func liveBrokers(_ image: MetadataImage, listener: String) -> [(Int32, (host: String, port: Int), String?)] {
        image.brokers.keys.sorted().compactMap { id in
            guard let b = image.brokers[id], !b.fenced else { return nil }
            let ep = b.endpoints.first { $0.name == listener } ?? b.endpoints.first
            guard let e = ep else { return nil }
            return (id, (e.host, Int(e.port)), b.rack)
        }
    }

    /// The controller id that Metadata and DescribeCluster report to clients: the active
    /// controller if it is also a live broker (clients cannot reach a controller-only node),
    /// otherwise a live broker, as Kafka's KRaft brokers do.
    func metadataControllerId(_ image: MetadataImage) -> Int32 {
        let l = knownLeaderId
        if let b = image.brokers[l], !b.fenced { return l }
        return image.brokers.keys.sorted().first { image.brokers[$0]?.fenced == false } ?? -1
    }

    /// The quorum as DescribeQuorum answers it at `version`: fields a version cannot carry
    /// (v1 timestamps, v2 directory ids and controller endpoints) are left at their defaults,
    /// so an older client gets an answer instead of a closed connection.
    func describeQuorumResponse(_ s: QuorumSnapshot, version: Int16 = 2) -> DescribeQuorumResponse {
        func state(_ id: Int32, _ p: ReplicaProgress?) -> DescribeQuorumResponse.ReplicaState {
            var r = DescribeQuorumResponse.ReplicaState()
            r.replicaId = id
            if version >= 2, let d = voterDirectoryIds[id] { r.replicaDirectoryId = d }
            if id == s.nodeId {
                r.logEndOffset = s.logEndOffset
                r.lastFetchTimestamp = s.nowMs
                r.lastCaughtUpTimestamp = s.nowMs
            } else {
                r.logEndOffset = p?.endOffset ?? -1
                r.lastFetchTimestamp = p?.lastFetchMs ?? -1
                r.lastCaughtUpTimestamp = p?.lastCaughtUpMs ?? -1
            }
            if version < 1 {
                r.lastFetchTimestamp = -1
                r.lastCaughtUpTimestamp = -1
            }
            return r
        }
        var p = DescribeQuorumResponse.PartitionData()
        p.partitionIndex = 0
        p.leaderId = s.leaderId
        p.leaderEpoch = s.epoch
        p.highWatermark = s.highWatermark
        p.currentVoters = s.voters.map { state($0, s.voterProgress[$0]) }
        p.observers = s.observerProgress.keys.sorted().map { state($0, s.observerProgress[$0]) }
        var t = DescribeQuorumResponse.TopicData()
        t.topicName = RaftWire.topicName
        t.partitions = [p]
        var resp = DescribeQuorumResponse()
        resp.topics = [t]
        guard version >= 2 else { return resp }
        resp.nodes = config.voters.map { v in
            var n = DescribeQuorumResponse.Node()
            n.nodeId = v.id
            var l = DescribeQuorumResponse.Listener()
            l.name = config.controllerListenerNames.first ?? "CONTROLLER"
            l.host = v.host
            l.port = UInt16(clamping: v.port)
            n.listeners = [l]
            return n
        }
        return resp
    }

    /// ControllerRegistration (KIP-919): a controller records its listener and supported
    /// features in the metadata log through the active controller, once per process (a new
    /// incarnation id each start), retrying every second until its registration is in the
    /// committed image.
    private func registerController(listener: ListenerEndpoint) {
        let incarnation = KafkaUUID.random()
        let loop = group.next()
        var r = ControllerRegistrationRequest()
        r.controllerId = config.nodeId
        r.incarnationId = incarnation
        var l = ControllerRegistrationRequest.Listener()
        l.name = listener.listenerName
        l.host = listener.host.isEmpty || listener.host == "0.0.0.0" ? "localhost" : listener.host
        l.port = UInt16(clamping: listener.port)
        l.securityProtocol = 0
        r.listeners = [l]
        var f = ControllerRegistrationRequest.Feature()
        f.name = "metadata.version"
        f.minSupportedVersion = MetadataVersion(name: "3.3-IV3")?.level ?? 7
        f.maxSupportedVersion = MetadataVersion.latest.level
        r.features = [f]
        let request = r
        let publisher = self.publisher
        let channel = self.controllerChannel
        let logger = self.logger
        let nodeId = config.nodeId
        let inFlight = NIOLockedValueBox(false)
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: .seconds(1)) { task in
            let image = publisher.image
            if image.controllers[nodeId]?.incarnationId == incarnation {
                logger.info("controller registered", metadata: ["incarnationId": "\(incarnation)"])
                task.cancel()
                return
            }
            guard image.metadataVersion != nil, !inFlight.withLockedValue({ $0 }) else { return }
            inFlight.withLockedValue { $0 = true }
            channel.send(request, version: 0, timeoutMs: 5000).whenComplete { result in
                inFlight.withLockedValue { $0 = false }
                if case let .success(resp as ControllerRegistrationResponse) = result, resp.errorCode != 0 {
                    logger.debug("controller registration refused", metadata: ["error": "\(resp.errorCode)"])
                }
            }
        }
    }
}

/// Kafka's topic name rules.
enum Topics {
    static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 249, name != ".", name != ".." else { return false }
        return name.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-"
        }
    }

}

/// Follows the metadata log on the node's behalf, registered after the publisher so it runs
/// once each commit is in the image: the controller activates when its image has caught up
/// with its epoch, and the broker's lifecycle hears of a new quorum leader.
final class NodeRaftListener: RaftListener, @unchecked Sendable {
    let leader: NIOLockedValueBox<Int32>
    let controller: ControllerShell?
    weak var node: FjordNode?

    init(leader: NIOLockedValueBox<Int32>, controller: ControllerShell?) {
        self.leader = leader
        self.controller = controller
    }

    func handleCommit(_ batches: [CommittedBatch]) { controller?.maybeActivate() }
    func handleLoadSnapshot(_ snapshot: SnapshotReader) { controller?.maybeActivate() }
    func handleLeaderChange(epoch: Int32, leaderId: Int32) {
        leader.withLockedValue { $0 = leaderId }
        controller?.maybeActivate()
        node?.lifecycle?.controllerChanged()
    }
}
