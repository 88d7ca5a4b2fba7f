import FjordClient
import FjordController
import FjordMetadata
import FjordProtocol
import FjordRaft
import FjordRaftRuntime
import Logging
import NIOCore

/// The thin shell around the sans-I/O `QuorumController`. It runs on the Raft runtime's
/// loop (one serial executor for controller state), becomes active once this node leads
/// the quorum and the committed image includes everything before its epoch, appends the
/// records each operation generates, and answers when they are committed. Losing the
/// leadership drops the in-memory controller; the next activation starts from the
/// committed image again.
public final class ControllerShell: @unchecked Sendable {
    let raft: RaftRuntime
    let publisher: MetadataPublisher
    let config: ControllerConfig
    let logger: Logger
    let bootstrapMetadataVersion: Int16
    private var active: (controller: QuorumController, epoch: Int32)?
    private var tickTask: RepeatedTask?
    private var seed: UInt64

    init(raft: RaftRuntime, publisher: MetadataPublisher, config: ControllerConfig, bootstrapMetadataVersion: Int16,
         seed: UInt64, logger: Logger) {
        self.raft = raft
        self.publisher = publisher
        self.config = config
        self.bootstrapMetadataVersion = bootstrapMetadataVersion
        self.seed = seed
        self.logger = logger
    }

    var loop: EventLoop { raft.loop }

    func start() {
        loop.execute {
            self.tickTask = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
                self.tick()
            }
        }
    }

    func stop() {
        loop.execute {
            self.tickTask?.cancel()
            self.active = nil
        }
    }

    /// Whether this node is the active controller (on the loop).
    var isActive: Bool { active != nil }

    /// Called on the loop when the high watermark moved or the leadership changed.
    func maybeActivate() {
        loop.preconditionInEventLoop()
        raft.snapshot().whenSuccess { s in
            guard s.role == .leader else {
                if self.active != nil {
                    self.logger.info("no longer the active controller", metadata: ["epoch": "\(s.epoch)", "leader": "\(s.leaderId)"])
                    self.active = nil
                }
                return
            }
            if let a = self.active, a.epoch == s.epoch { return }
            // Everything before this epoch must be committed and replayed first, and nothing
            // of ours may be in flight (an earlier instance's records would be missed).
            guard s.epochStartOffset >= 0, s.highWatermark > s.epochStartOffset, self.publisher.nextOffset >= s.highWatermark,
                  s.logEndOffset == s.highWatermark else { return }
            let image = self.publisher.image
            self.seed = self.seed &* 6364136223846793005 &+ 1442695040888963407
            let c = QuorumController(config: self.config, image: image, nextWriteOffset: s.logEndOffset, seed: self.seed, nowMs: s.nowMs)
            self.active = (c, s.epoch)
            self.logger.info("became the active controller", metadata: ["epoch": "\(s.epoch)", "metadataOffset": "\(image.offset)"])
            if image.features["metadata.version"] == nil {
                self.append(c.bootstrapRecords(metadataVersion: self.bootstrapMetadataVersion), epoch: s.epoch)
            }
            for id in self.knownDeadVoters().sorted() { self.brokerUnreachable(id) }
        }
    }

    /// Broker `id`'s process is gone (see `QuorumController.brokerUnreachable`).
    func brokerUnreachable(_ id: Int32) {
        loop.execute {
            guard let a = self.active else { return }
            let records = a.controller.brokerUnreachable(id, nowMs: RaftRuntime.wallClockMs())
            if !records.isEmpty {
                self.logger.info("fencing a broker whose process is gone", metadata: ["broker": "\(id)"])
                self.append(records, epoch: a.epoch)
            }
        }
    }

    /// A broker's heartbeat connection closed: probe its listener; a refused connection means
    /// its process is gone (fence now), otherwise it has one heartbeat interval to come back.
    func heartbeatConnectionClosed(_ id: Int32, group: EventLoopGroup) {
        loop.execute {
            guard let a = self.active, let b = a.controller.image.brokers[id], !b.fenced,
                  let e = b.endpoints.first else { return }
            a.controller.brokerConnectionLost(id, nowMs: RaftRuntime.wallClockMs())
            KafkaConnection.connect(host: e.host, port: Int(e.port), group: group, clientId: "fjord-liveness-probe", connectTimeoutMs: 1000)
                .whenComplete { result in
                    switch result {
                    case let .success(conn): conn.close()
                    case let .failure(error):
                        if NetworkRaftTransport.isRefused(error) { self.brokerUnreachable(id) }
                    }
                }
        }
    }

    /// Voters known to be down when this node becomes active (their brokers are fenced at once).
    var knownDeadVoters: @Sendable () -> Set<Int32> = { [] }

    private func tick() {
        guard let a = active else { return }
        let records = a.controller.tick(nowMs: RaftRuntime.wallClockMs())
        if !records.isEmpty { append(records, epoch: a.epoch) }
    }

    @discardableResult
    private func append(_ records: [MetadataRecord], epoch: Int32) -> EventLoopFuture<Int64> {
        let values: [ByteBuffer]
        do {
            values = try records.map { try $0.encode() }
        } catch {
            logger.error("cannot encode metadata records", metadata: ["error": "\(error)"])
            deactivate()
            return loop.makeFailedFuture(error)
        }
        let f = raft.propose(values, epoch: epoch)
        f.whenFailure { error in
            self.logger.warning("metadata records not committed; the controller restarts from the committed image", metadata: ["error": "\(error)"])
            self.deactivate()
        }
        return f
    }

    private func deactivate() {
        loop.execute { self.active = nil }
    }

    /// Runs a controller operation; its records are appended and the response is returned
    /// once they are committed. NOT_CONTROLLER when this node is not the active controller.
    func perform<R: KafkaResponse>(_ request: any KafkaRequest,
                                   _ op: @escaping (QuorumController, Int64) -> ControllerResult<R>) -> EventLoopFuture<any KafkaResponse> {
        loop.flatSubmit {
            guard let a = self.active else {
                return self.loop.makeSucceededFuture(ErrorResponses.make(for: request, .notController, "This node is not the active controller.") ?? R())
            }
            let result = op(a.controller, RaftRuntime.wallClockMs())
            if result.records.isEmpty { return self.loop.makeSucceededFuture(result.response) }
            if !(request is BrokerHeartbeatRequest) {
                self.logger.info("controller operation", metadata: ["api": "\(type(of: request).messageName)", "records": "\(result.records.count)",
                                                                    "first": "\(result.records.first.map { "\($0)" } ?? "")"])
            }
            return self.append(result.records, epoch: a.epoch).map { _ in result.response as any KafkaResponse }.flatMapErrorThrowing { _ in
                ErrorResponses.make(for: request, .notController, "The controller lost its leadership before the change was committed.") ?? R()
            }
        }
    }
}
