import FjordMetadata
import FjordProtocol
import FjordRaftRuntime
import FjordWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The broker side of KRaft membership: registers with the active controller
/// (BrokerRegistration, a new incarnation id per process), then heartbeats every
/// `broker.heartbeat.interval.ms` with the metadata offset it has applied; the controller
/// unfences it once it has caught up. A stale epoch or a new controller means registering
/// again.
final class BrokerLifecycle: @unchecked Sendable {
    let config: ServerConfig
    let clusterId: String
    let channel: ControllerChannel
    let publisher: MetadataPublisher
    let loop: EventLoop
    let logger: Logger
    let incarnationId = KafkaUUID.random()
    let logDirIds: [KafkaUUID]
    private var brokerEpoch: Int64 = -1
    private let epochBox = NIOLockedValueBox<Int64>(-1)
    /// The broker epoch the controller assigned (-1 before registration); any thread.
    var currentBrokerEpoch: Int64 { epochBox.withLockedValue { $0 } }
    private var inFlight = false
    private var task: RepeatedTask?
    private(set) var isFenced = true
    private var wantShutDown = false
    /// Whether the log directories cannot be written (checked, and probed, before each
    /// heartbeat): the broker then asks to be fenced until they can.
    var storageFailing: @Sendable () -> Bool = { false }
    private var askedToFence = false
    /// When the last heartbeat that the controller answered "unfenced" was sent (wall clock
    /// ms), or -1: the broker's session runs `broker.session.timeout.ms` from there. The
    /// controller fences a broker that long after the last heartbeat it received, which is
    /// no earlier, so the broker's session ends first.
    private let sessionStartMs = NIOLockedValueBox<Int64>(-1)

    /// Whether the broker's session with the controller is current (see `sessionStartMs`).
    func sessionIsCurrent(nowMs: Int64) -> Bool {
        let start = sessionStartMs.withLockedValue { $0 }
        return start >= 0 && nowMs - start < config.brokerSessionTimeoutMs
    }
    private var shutdownPromise: EventLoopPromise<Void>?
    /// Completes the first time the controller unfences this broker (the node then opens
    /// its broker listeners, as Kafka does once the broker has caught up).
    let unfenced: EventLoopPromise<Void>

    init(config: ServerConfig, clusterId: String, channel: ControllerChannel, publisher: MetadataPublisher, logDirIds: [KafkaUUID],
         loop: EventLoop, logger: Logger) {
        self.config = config
        self.clusterId = clusterId
        self.channel = channel
        self.publisher = publisher
        self.logDirIds = logDirIds
        self.loop = loop
        self.logger = logger
        self.unfenced = loop.makePromise(of: Void.self)
    }

    func start() {
        loop.execute {
            // Registration is retried quickly; heartbeats follow the configured interval.
            self.task = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(min(self.config.brokerHeartbeatIntervalMs, 250))) { _ in
                self.step()
            }
        }
    }

    private var lastHeartbeatMs: Int64 = 0

    private func step() {
        guard !inFlight else { return }
        let now = RaftRuntime.wallClockMs()
        if brokerEpoch < 0 {
            register()
        } else if now - lastHeartbeatMs >= config.brokerHeartbeatIntervalMs || (isFenced && now - lastHeartbeatMs >= 250) || wantShutDown {
            lastHeartbeatMs = now
            heartbeat()
        }
    }

    private func register() {
        var r = BrokerRegistrationRequest()
        r.brokerId = config.nodeId
        r.clusterId = clusterId
        r.incarnationId = incarnationId
        r.listeners = config.advertisedListeners.map { e in
            var l = BrokerRegistrationRequest.Listener()
            l.name = e.listenerName
            l.host = e.host
            l.port = UInt16(clamping: e.port)
            l.securityProtocol = 0 // PLAINTEXT
            return l
        }
        var f = BrokerRegistrationRequest.Feature()
        f.name = "metadata.version"
        f.minSupportedVersion = MetadataVersion(name: "3.3-IV3")?.level ?? 7
        f.maxSupportedVersion = MetadataVersion.latest.level
        r.features = [f]
        r.rack = config.properties["broker.rack"]
        r.logDirs = logDirIds
        r.previousBrokerEpoch = -1
        inFlight = true
        channel.send(r, version: 3, timeoutMs: 5000).hop(to: loop).whenComplete { result in
            self.inFlight = false
            switch result {
            case let .success(resp as BrokerRegistrationResponse):
                if resp.errorCode == 0 {
                    self.brokerEpoch = resp.brokerEpoch
                    self.epochBox.withLockedValue { $0 = resp.brokerEpoch }
                    self.lastHeartbeatMs = 0
                    self.logger.info("registered with the controller", metadata: ["brokerEpoch": "\(resp.brokerEpoch)"])
                } else {
                    self.logger.debug("broker registration refused", metadata: ["error": "\(ErrorCode(rawValue: resp.errorCode).map { "\($0)" } ?? "\(resp.errorCode)")"])
                }
            case .success:
                break
            case let .failure(e):
                self.logger.debug("broker registration failed", metadata: ["error": "\(e)"])
            }
        }
    }

    private func heartbeat() {
        var r = BrokerHeartbeatRequest()
        r.brokerId = config.nodeId
        r.brokerEpoch = brokerEpoch
        r.currentMetadataOffset = publisher.nextOffset - 1
        let failing = storageFailing()
        if failing != askedToFence {
            if failing {
                logger.error("the log directories cannot be written: asking the controller to fence this broker until they can")
            } else {
                logger.info("the log directories can be written again: asking the controller to unfence this broker")
            }
            askedToFence = failing
        }
        r.wantFence = failing && !wantShutDown
        r.wantShutDown = wantShutDown
        inFlight = true
        let sentAt = RaftRuntime.wallClockMs()
        channel.send(r, version: 1, timeoutMs: 5000).hop(to: loop).whenComplete { result in
            self.inFlight = false
            switch result {
            case let .success(resp as BrokerHeartbeatResponse):
                if resp.errorCode == ErrorCode.staleBrokerEpoch.rawValue || resp.errorCode == ErrorCode.brokerIdNotRegistered.rawValue {
                    self.logger.info("controller does not know this broker epoch; registering again")
                    self.brokerEpoch = -1
                    return
                }
                guard resp.errorCode == 0 else { return }
                if self.isFenced != resp.isFenced {
                    self.logger.info(resp.isFenced ? "broker fenced by the controller" : "broker unfenced: serving", metadata: ["brokerEpoch": "\(self.brokerEpoch)"])
                }
                self.isFenced = resp.isFenced
                if !resp.isFenced { self.sessionStartMs.withLockedValue { $0 = max($0, sentAt) } }
                if !resp.isFenced { self.unfenced.succeed(()) }
                if resp.shouldShutDown, self.wantShutDown {
                    self.shutdownPromise?.succeed(())
                    self.shutdownPromise = nil
                }
            case .success:
                break
            case let .failure(e):
                self.logger.debug("heartbeat failed", metadata: ["error": "\(e)"])
            }
        }
    }

    /// Controlled shutdown: asks the controller to move this broker's leaderships away and
    /// waits (at most `timeoutMs`) until it agrees.
    func controlledShutdown(timeoutMs: Int64) -> EventLoopFuture<Void> {
        loop.flatSubmit {
            guard self.brokerEpoch >= 0 else { return self.loop.makeSucceededVoidFuture() }
            let p = self.loop.makePromise(of: Void.self)
            self.shutdownPromise = p
            self.wantShutDown = true
            self.loop.scheduleTask(in: .milliseconds(timeoutMs)) {
                self.shutdownPromise?.succeed(())
                self.shutdownPromise = nil
            }
            return p.futureResult
        }
    }

    /// A new controller leads: heartbeat to it at once, so it sees this broker alive.
    func controllerChanged() {
        loop.execute { self.lastHeartbeatMs = 0 }
    }

    func stop() {
        loop.execute {
            self.task?.cancel()
            self.unfenced.fail(RaftRuntimeError.stopped)
        }
    }
}
