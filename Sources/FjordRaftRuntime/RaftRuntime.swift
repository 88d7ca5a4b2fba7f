#if canImport(Glibc)
import Glibc
#endif
import FjordRaft
import FjordStorage
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// How runtimes reach each other. The SwiftNIO transport (KRaft RPCs over the controller
/// listener) implements it in the server; tests and benchmarks use `LocalRaftTransport`.
public protocol RaftTransport: AnyObject, Sendable {
    /// Sends `envelope` to `envelope.to`. If it cannot be delivered (no connection), the
    /// transport calls `deliveryFailed` on the sender.
    func send(_ envelope: RaftEnvelope, from sender: RaftRuntime)
}

/// The thin shell around a `RaftNode`: one event loop owns the node; time is the real
/// clock; the quorum state and the log are persisted (fsync) before the messages of a
/// `RaftReady` leave. Proposals linger for `controller.quorum.append.linger.ms` and are
/// appended (and fsynced) together: group commit.
public final class RaftRuntime: @unchecked Sendable {
    public let loop: EventLoop
    public let nodeId: Int32
    public let log: StorageRaftLog
    let node: RaftNode
    let stateFile: QuorumStateFile
    let transport: RaftTransport
    let clock: @Sendable () -> Int64
    let logger: Logger
    private var tickTask: RepeatedTask?
    private var pending: [(value: ByteBuffer, promise: EventLoopPromise<Int64>?)] = []
    private var lingerScheduled = false
    private var waiting: [(offset: Int64, promise: EventLoopPromise<Int64>)] = []
    private var failed: Error?
    /// The state machines following the committed log, in registration order.
    private var listeners: [ListenerState] = []
    /// Requests received from the network that the core has not answered yet, per sender
    /// and kind, oldest first. The core answers Vote and Begin/EndQuorumEpoch at once and
    /// keeps at most one Fetch per replica parked.
    private var replies: [ReplyKey: [EventLoopPromise<RaftMessage>]] = [:]

    struct ReplyKey: Hashable {
        var peer: Int32
        var kind: Int
    }

    static func kind(_ m: RaftMessage) -> Int {
        switch m {
        case .vote, .voteResponse: return 0
        case .beginQuorumEpoch, .beginQuorumEpochResponse: return 1
        case .endQuorumEpoch, .endQuorumEpochResponse: return 2
        case .fetch, .fetchResponse: return 3
        case .fetchSnapshot, .fetchSnapshotResponse: return 4
        }
    }

    /// Opens the metadata log and quorum state under `dataDir` and restores the node.
    public init(config: RaftConfig, dataDir: String, loop: EventLoop, transport: RaftTransport, seed: UInt64,
                logConfig: LogConfig = LogConfig(), clock: @escaping @Sendable () -> Int64 = RaftRuntime.wallClockMs,
                logger: Logger = Logger(label: "fjord.raft")) throws {
        self.loop = loop
        self.nodeId = config.nodeId
        self.transport = transport
        self.clock = clock
        self.logger = logger
        let dir = dataDir + "/__cluster_metadata-0"
        try FileSystem.createDirectory(dir)
        // The metadata log is trimmed only behind snapshots (applyRetention), never by the
        // topic retention settings.
        var metadataLogConfig = logConfig
        metadataLogConfig.retentionMs = -1
        metadataLogConfig.retentionBytes = -1
        let partition = try PartitionLog(dir: dir, topicPartition: TopicPartition("__cluster_metadata", 0), config: metadataLogConfig,
                                         nowMs: clock(), logger: logger)
        self.log = try StorageRaftLog(partition: partition, clock: clock)
        self.stateFile = QuorumStateFile(dir: dir)
        let state = try stateFile.read() ?? .initial
        self.node = RaftNode(config: config, log: log, state: state, seed: seed, nowMs: clock())
    }

    public static let wallClockMs: @Sendable () -> Int64 = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    public func start(tickEvery ms: Int64 = 5) {
        loop.execute {
            self.tickTask = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(ms), delay: .milliseconds(ms)) { _ in
                self.apply(self.node.tick(nowMs: self.clock()))
            }
        }
    }

    /// Stops ticking and fails pending proposals (the process is going away).
    public func stop() -> EventLoopFuture<Void> {
        loop.submit {
            self.tickTask?.cancel()
            self.tickTask = nil
            self.fail(RaftRuntimeError.stopped)
            try? self.log.partition.close()
        }
    }

    public func deliver(_ env: RaftEnvelope) {
        loop.execute {
            guard self.failed == nil, self.tickTask != nil else { return }
            self.apply(self.node.receive(env, nowMs: self.clock()))
        }
    }

    /// A request from the network: `reply` completes with the core's answer. A newer Fetch
    /// from the same replica replaces a parked one, which is answered with REQUEST_TIMED_OUT
    /// (the fetcher has given up on it already).
    public func deliverRequest(_ env: RaftEnvelope, reply: EventLoopPromise<RaftMessage>) {
        loop.execute {
            guard self.failed == nil, self.tickTask != nil else {
                return reply.fail(RaftRuntimeError.stopped)
            }
            let key = ReplyKey(peer: env.from, kind: Self.kind(env.message))
            if case let .fetch(f) = env.message, let old = self.replies[key], !old.isEmpty {
                for p in old {
                    p.succeed(.fetchResponse(FetchResponseData(errorCode: 7, leaderId: self.node.leaderId, leaderEpoch: self.node.epoch,
                                                               highWatermark: self.node.highWatermark, logStartOffset: self.log.startOffset,
                                                               fetchOffset: f.fetchOffset)))
                }
                self.replies[key] = nil
            }
            self.replies[key, default: []].append(reply)
            self.apply(self.node.receive(env, nowMs: self.clock()))
        }
    }

    public func deliveryFailed(_ env: RaftEnvelope) {
        loop.execute {
            guard self.failed == nil, self.tickTask != nil else { return }
            self.apply(self.node.requestFailed(env, nowMs: self.clock()))
        }
    }

    public func peerDisconnected(_ peer: Int32) {
        loop.execute {
            guard self.failed == nil, self.tickTask != nil else { return }
            self.apply(self.node.peerDisconnected(peer, nowMs: self.clock()))
        }
    }

    /// Appends `value` to the metadata log; the future completes with its offset once it is
    /// committed (below the high watermark), or fails if this node is not the leader.
    public func propose(_ value: ByteBuffer) -> EventLoopFuture<Int64> {
        propose([value])
    }

    /// Appends `values` to the metadata log in one batch (atomically); the future holds the
    /// offset of the last once all are committed. With `epoch`, fails unless the node still
    /// leads that epoch (a controller never writes into a later term than the one it read).
    public func propose(_ values: [ByteBuffer], epoch: Int32? = nil) -> EventLoopFuture<Int64> {
        let promise = loop.makePromise(of: Int64.self)
        guard !values.isEmpty else {
            promise.fail(RaftRuntimeError.emptyProposal)
            return promise.futureResult
        }
        loop.execute {
            if let f = self.failed { return promise.fail(f) }
            guard self.node.isLeader, epoch == nil || epoch == self.node.epoch else {
                return promise.fail(NotLeaderError(epoch: self.node.epoch, leaderId: self.node.leaderId))
            }
            // Only the last value carries the promise; the rest share its batch.
            for v in values.dropLast() { self.pending.append((v, nil)) }
            self.pending.append((values[values.count - 1], promise))
            if !self.lingerScheduled {
                self.lingerScheduled = true
                self.loop.scheduleTask(in: .milliseconds(self.node.config.appendLingerMs)) { self.appendPending() }
            }
        }
        return promise.futureResult
    }

    /// What the node knows: role, epoch, leader, high watermark.
    public func status() -> EventLoopFuture<(role: RaftRole, epoch: Int32, leaderId: Int32, highWatermark: Int64, logEndOffset: Int64)> {
        loop.submit { (self.node.role, self.node.epoch, self.node.leaderId, self.node.highWatermark, self.log.endOffset) }
    }

    /// Role, epoch, leader, offsets and (on the leader) every replica's progress.
    public func snapshot() -> EventLoopFuture<QuorumSnapshot> {
        loop.submit {
            let q = self.node.quorumInfo()
            return QuorumSnapshot(nodeId: self.nodeId, role: self.node.role, epoch: self.node.epoch, leaderId: self.node.leaderId,
                                  highWatermark: self.node.highWatermark, logEndOffset: self.log.endOffset,
                                  epochStartOffset: self.node.epochStartOffset, voters: self.node.config.voters,
                                  voterProgress: q.voters, observerProgress: q.observers, nowMs: self.clock())
        }
    }

    /// Registers a state machine: it first loads the node's newest snapshot (if any), then
    /// receives every committed batch after it, and every later leader change, on the loop.
    /// The future fails if the snapshot cannot be read: the log before it may be gone, so
    /// the node must not go on without it.
    public func register(_ listener: RaftListener) -> EventLoopFuture<Void> {
        loop.submit {
            let state = ListenerState(listener, nextOffset: self.log.startOffset)
            if let id = self.log.latestSnapshotId {
                let values = try self.log.readSnapshotValues(id)
                state.nextOffset = id.endOffset
                state.loadedSnapshot = id
                listener.handleLoadSnapshot(SnapshotReader(id: id, values: values))
            }
            self.listeners.append(state)
            if self.node.leaderId >= 0 { listener.handleLeaderChange(epoch: self.node.epoch, leaderId: self.node.leaderId) }
            self.deliverCommits(state)
        }
    }

    /// Hands `state`'s listener what was committed since its last batch: the newest
    /// snapshot first if the log it needs was trimmed behind one.
    private func deliverCommits(_ state: ListenerState) {
        let hw = node.highWatermark
        if state.nextOffset < log.startOffset, let id = log.latestSnapshotId, state.loadedSnapshot != id {
            loadSnapshot(id, into: state)
        }
        do {
            while state.nextOffset < hw {
                let bytes = try log.read(from: state.nextOffset, maxBytes: 1 << 20)
                let batches = try CommittedBatch.decode(bytes, from: state.nextOffset, below: hw)
                guard let last = batches.last else { break }
                state.nextOffset = last.lastOffset + 1
                state.listener.handleCommit(batches)
            }
        } catch {
            // A committed batch this node cannot read: the listener stops there rather than
            // build a wrong state; the node keeps running so an operator sees the line.
            logger.critical("cannot read a committed metadata batch", metadata: ["offset": "\(state.nextOffset)", "error": "\(error)"])
        }
    }

    private func loadSnapshot(_ id: SnapshotId, into state: ListenerState) {
        do {
            let values = try log.readSnapshotValues(id)
            state.nextOffset = id.endOffset
            state.loadedSnapshot = id
            state.listener.handleLoadSnapshot(SnapshotReader(id: id, values: values))
        } catch {
            logger.critical("cannot read a metadata snapshot", metadata: ["snapshot": "\(id)", "error": "\(error)"])
        }
    }

    /// Registers snapshot `id` (already written durably by `SnapshotFile.write`) and applies
    /// KRaft's retention to the log behind it. On the loop.
    public func snapshotWritten(_ id: SnapshotId, retentionBytes: Int64, retentionMs: Int64) {
        loop.preconditionInEventLoop()
        log.snapshotCreated(id)
        do {
            if let start = try log.applyRetention(maxBytes: retentionBytes, maxAgeMs: retentionMs, committed: node.highWatermark, nowMs: clock()) {
                logger.info("deleted the metadata log before the latest snapshot", metadata: ["snapshot": "\(id)", "logStartOffset": "\(start)"])
            }
        } catch {
            logger.error("cannot delete the metadata log before a snapshot", metadata: ["snapshot": "\(id)", "error": "\(error)"])
        }
    }

    public var highWatermarkOnLoop: Int64 {
        loop.preconditionInEventLoop()
        return node.highWatermark
    }

    private func appendPending() {
        lingerScheduled = false
        let batch = pending
        pending = []
        guard !batch.isEmpty else { return }
        do {
            let (offsets, ready) = try node.propose(batch.map(\.value), nowMs: clock())
            for (i, p) in batch.enumerated() {
                if let promise = p.promise { waiting.append((offsets.lowerBound + Int64(i), promise)) }
            }
            apply(ready)
        } catch {
            for p in batch { p.promise?.fail(error) }
        }
    }

    /// Executes a RaftReady: persist the election state, flush the log, and only then send.
    private func apply(_ ready: RaftReady) {
        var r = ready
        do {
            while true {
                if let s = r.persistState { try stateFile.write(s) }
                if r.flushLog { try log.flush() }
                if let id = r.snapshotInstalled {
                    logger.info("installed a metadata snapshot from the leader", metadata: ["node": "\(nodeId)", "snapshot": "\(id)"])
                    for l in listeners { loadSnapshot(id, into: l) }
                }
                if let hw = r.newHighWatermark { committed(hw) }
                if let lc = r.leaderChanged {
                    logger.info("leader changed", metadata: ["node": "\(nodeId)", "epoch": "\(lc.epoch)", "leader": "\(lc.leaderId)"])
                    if lc.leaderId != nodeId { abandonProposals(NotLeaderError(epoch: lc.epoch, leaderId: lc.leaderId)) }
                    for l in listeners { l.listener.handleLeaderChange(epoch: lc.epoch, leaderId: lc.leaderId) }
                }
                for env in r.sendAfterPersist { route(env) }
                guard r.needsPersist else { break }
                r = node.persisted(nowMs: clock())
                if r.isEmpty { break }
            }
        } catch {
            // Nothing that depended on the failed write was sent. A node that cannot persist
            // must stop taking part rather than vote or acknowledge from memory.
            logger.critical("cannot persist raft state; stopping this node", metadata: ["node": "\(nodeId)", "error": "\(error)"])
            fail(error)
            tickTask?.cancel()
            tickTask = nil
        }
    }

    /// Responses to network requests go back on the request's connection; everything else
    /// through the transport.
    private func route(_ env: RaftEnvelope) {
        if env.message.isResponse {
            let key = ReplyKey(peer: env.to, kind: Self.kind(env.message))
            if var q = replies[key], !q.isEmpty {
                let p = q.removeFirst()
                replies[key] = q.isEmpty ? nil : q
                p.succeed(env.message)
                return
            }
        }
        transport.send(env, from: self)
    }

    private func committed(_ hw: Int64) {
        log.partition.highWatermark = hw
        var keep: [(Int64, EventLoopPromise<Int64>)] = []
        for w in waiting {
            if w.offset < hw { w.promise.succeed(w.offset) } else { keep.append(w) }
        }
        waiting = keep
        for l in listeners { deliverCommits(l) }
    }

    /// This node no longer leads: proposals not yet known committed are failed. (One may
    /// still be committed by the next leader; the caller learns of it by replaying the log,
    /// as Kafka's controller does.) Without this, a later high watermark could "commit" an
    /// offset that now holds another leader's record.
    private func abandonProposals(_ error: Error) {
        for w in waiting { w.promise.fail(error) }
        for p in pending { p.promise?.fail(error) }
        waiting = []
        pending = []
    }

    private func fail(_ error: Error) {
        failed = failed ?? error
        for w in waiting { w.promise.fail(error) }
        for p in pending { p.promise?.fail(error) }
        waiting = []
        pending = []
        for (_, q) in replies { for p in q { p.fail(error) } }
        replies = [:]
    }
}

public enum RaftRuntimeError: Error, Sendable {
    case stopped
    case emptyProposal
}

/// What DescribeQuorum reports, read on the runtime's loop.
public struct QuorumSnapshot: Sendable {
    public var nodeId: Int32
    public var role: RaftRole
    public var epoch: Int32
    public var leaderId: Int32
    public var highWatermark: Int64
    public var logEndOffset: Int64
    public var epochStartOffset: Int64
    public var voters: [Int32]
    public var voterProgress: [Int32: ReplicaProgress]
    public var observerProgress: [Int32: ReplicaProgress]
    public var nowMs: Int64
}

/// Delivers messages between runtimes of one process (tests, benchmarks).
public final class LocalRaftTransport: RaftTransport, @unchecked Sendable {
    private let lock = NIOLock()
    private var runtimes: [Int32: RaftRuntime] = [:]

    public init() {}

    public func register(_ r: RaftRuntime) { lock.withLock { runtimes[r.nodeId] = r } }
    public func unregister(_ id: Int32) {
        let others = lock.withLock { () -> [RaftRuntime] in
            runtimes[id] = nil
            return Array(runtimes.values)
        }
        for o in others { o.peerDisconnected(id) }
    }

    public func send(_ envelope: RaftEnvelope, from sender: RaftRuntime) {
        if let target = lock.withLock({ runtimes[envelope.to] }) {
            target.deliver(envelope)
        } else if !envelope.message.isResponse {
            sender.deliveryFailed(envelope)
        }
    }
}
