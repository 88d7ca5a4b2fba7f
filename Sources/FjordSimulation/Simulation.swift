#if canImport(Glibc)
import Glibc
#endif
import FjordController
import FjordMetadata
import FjordRaft
import FjordRecords
import FjordWire
import NIOCore

/// Deterministic whole-cluster simulation of the KRaft core: N voters and M observers in one
/// thread, a simulated clock, network (delay, drop, duplicate, reorder, partitions, one-way
/// links) and disk (unflushed writes lost on crash, a torn tail), crashes and restarts. All
/// randomness comes from one seed; fault probabilities are drawn from it (swarm testing).
/// Named invariants are checked after every event; the first violation stops the run.
public final class Simulation {
    public struct Options: Sendable {
        public var voters = 3
        public var observers = 1
        /// Simulated milliseconds of the fault phase, then of the healthy liveness phase.
        public var faultPhaseMs: Int64 = 20_000
        public var livenessPhaseMs: Int64 = 15_000
        /// Deliberately broken shell for tests: a granted vote is not persisted.
        public var brokenSkipVotePersist = false
        /// No faults at all (scenario tests, failover timing).
        public var faultFree = false
        /// Overrides the seed's chance of crashing right after persisting election state.
        public var crashAfterPersist: Double? = nil
        /// Overrides whether nodes snapshot their state machine and trim their logs (KIP-630);
        /// by default half of the seeds do.
        public var snapshots: Bool? = nil
        /// Deliberately broken state machine for tests: a snapshot claims one record more
        /// than it applied.
        public var brokenSnapshotOffByOne = false
        /// The metadata layer on top: the voters run the real `QuorumController` when they
        /// lead, the observers are brokers (register, heartbeat, change ISRs), an admin
        /// creates topics; the metadata invariants are checked on every node's image.
        public var controllers = false
        /// Deliberately broken controller for tests: fencing a broker leaves its leaderships.
        public var brokenFenceKeepsLeaders = false
        public init() {}
    }

    public struct Violation: Error, CustomStringConvertible, Sendable {
        public var invariant: String
        public var detail: String
        public var timeMs: Int64
        public var description: String { "\(invariant) violated at \(timeMs) ms: \(detail)" }
    }

    /// Fault probabilities drawn from the seed.
    struct Faults {
        var drop: Double
        var duplicate: Double
        var minDelay: Int64
        var maxDelay: Int64
        var crashPerSecond: Double
        var partitionPerSecond: Double
        var tornTail: Bool
        /// Chance of crashing right after a Ready that persisted election state was executed
        /// (exercises persist-before-send, as FoundationDB's "buggify" does).
        var crashAfterPersist: Double
        /// Mean interval between a node's snapshots (0: no snapshots), and the chance the log
        /// behind a new snapshot is deleted.
        var snapshotEveryMs: Int64 = 0
        var trimChance: Double = 0
    }

    final class Node {
        let id: Int32
        let log = MemoryRaftLog()
        var state = ElectionState.initial
        var core: RaftNode?
        var incarnation = 0
        var lastHW: Int64 = 0
        /// The state machine: every committed offset below `applied` folded into `digest`.
        var applied: Int64 = 0
        var digest: UInt64 = 0
        var appliedEpoch: Int32 = -1
        // The metadata layer (`Options.controllers`).
        var image = MetadataImage()
        var partitionEpochs: [TopicIdPartition: (leader: Int32, partition: Int32)] = [:]
        var controller: (controller: QuorumController, epoch: Int32)?
        var pendingReplies: [(offset: Int64, to: Int32, incarnation: Int, reply: SimReply)] = []
        var brokerEpoch: Int64 = -1
        var rpcInFlightSince: Int64? = nil
        var lastHeartbeatMs: Int64 = 0
        init(id: Int32) { self.id = id }
    }

    enum Event {
        case deliver(RaftEnvelope)
        /// The sender learns its request could not be delivered (the peer's port is closed).
        case failed(RaftEnvelope)
        /// `peer` sees its connection to `from` reset.
        case disconnected(peer: Int32, from: Int32)
        case tick(Int32)
        case crash(Int32)
        case restart(Int32)
        case propose
        case partition
        case heal
        case snapshot(Int32)
        case controllerTick(Int32)
        case brokerTick(Int32)
        case rpc(from: Int32, fromIncarnation: Int, to: Int32, SimRequest)
        case rpcReply(to: Int32, incarnation: Int, SimReply)
        case admin
    }

    struct Scheduled: Comparable {
        var time: Int64
        var seq: Int
        var event: Event
        static func < (a: Scheduled, b: Scheduled) -> Bool { (a.time, a.seq) < (b.time, b.seq) }
        static func == (a: Scheduled, b: Scheduled) -> Bool { a.time == b.time && a.seq == b.seq }
    }

    public let seed: UInt64
    public let options: Options
    var rng: SplitMix64
    var faults: Faults
    var nodes: [Int32: Node] = [:]
    var voterIds: [Int32]
    var queue = Heap()
    var seq = 0
    public private(set) var now: Int64 = 0
    /// blocked[a] contains b: messages from a to b are dropped (one-way links possible).
    var blocked: [Int32: Set<Int32>] = [:]
    var faultsOn = true

    // Invariant bookkeeping.
    var leaders: [Int32: Int32] = [:]               // epoch → leader
    var grantedVotes: [String: Int32] = [:]         // "voter/epoch" → candidate
    var committed: [Int64: Int32] = [:]             // offset → epoch of its batch
    var committedEnd: Int64 = 0
    var completenessChecked: [Int32: String] = [:]
    /// The epoch in which each committed offset was first known committed: leaders of that
    /// or a later epoch must hold it (a stale leader of an earlier epoch need not).
    var committedAt: [Int64: Int32] = [:]
    /// The state machine's digest after applying everything below each offset, as the first
    /// node to get there computed it: every node (and every snapshot) must agree.
    var stateDigests: [Int64: UInt64] = [:]
    /// "topicId/partition/leaderEpoch" → the leader any node's image named for it.
    var leadersByEpoch: [String: Int32] = [:]
    /// Committed metadata records by type (the metadata layer's activity, for `summary`).
    public private(set) var metadataRecordCounts: [String: Int] = [:]
    public private(set) var snapshotsTaken = 0
    public private(set) var snapshotsInstalled = 0
    public private(set) var proposals = 0
    /// One line of what happened, for `--verbose`.
    public var summary: String {
        "events \(events), proposals \(proposals), committed \(committedEnd), snapshots \(snapshotsTaken) taken \(snapshotsInstalled) installed, \(metadataRecordCounts.isEmpty ? "" : "records \(metadataRecordCounts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")), ")leaders by epoch \(leaders.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")), roles " +
            nodes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.core.map { "\($0.role)@\($0.epoch)" } ?? "down")" }.joined(separator: " ")
    }
    public private(set) var events = 0

    public init(seed: UInt64, options: Options = Options()) {
        self.seed = seed
        self.options = options
        rng = SplitMix64(seed: seed)
        var r = SplitMix64(seed: seed &* 0x5851_F42D_4C95_7F2D)
        func unit() -> Double { Double(r.next() % 1_000_000) / 1_000_000 }
        faults = Faults(drop: unit() * 0.2, duplicate: unit() * 0.05, minDelay: 1 + Int64(r.next() % 5),
                        maxDelay: r.next() % 4 == 0 ? 100 + Int64(r.next() % 500) : 5 + Int64(r.next() % 60), crashPerSecond: unit() * 0.3,
                        partitionPerSecond: unit() * 0.3, tornTail: r.next() % 2 == 0,
                        crashAfterPersist: r.next() % 3 == 0 ? unit() * 0.3 : 0)
        if let p = options.crashAfterPersist { faults.crashAfterPersist = p }
        if options.snapshots ?? (r.next() % 2 == 0) {
            faults.snapshotEveryMs = 200 + Int64(r.next() % 2000)
            faults.trimChance = 0.3 + unit() * 0.7
        }
        if options.faultFree {
            let (every, trim) = (faults.snapshotEveryMs, faults.trimChance)
            faults = Faults(drop: 0, duplicate: 0, minDelay: 1, maxDelay: 5, crashPerSecond: 0, partitionPerSecond: 0,
                            tornTail: false, crashAfterPersist: 0, snapshotEveryMs: every, trimChance: trim)
        }
        voterIds = (1...Int32(options.voters)).map { $0 }
        for id in 1...Int32(options.voters + options.observers) { nodes[id] = Node(id: id) }
    }

    func raftConfig(_ id: Int32) -> RaftConfig {
        RaftConfig(nodeId: id, voters: voterIds)
    }

    func schedule(_ e: Event, at t: Int64) {
        seq += 1
        queue.push(Scheduled(time: t, seq: seq, event: e))
    }

    func unit() -> Double { Double(rng.next() % 1_000_000) / 1_000_000 }

    /// Runs the fault phase then the liveness phase. Throws the first invariant violation.
    public func run() throws {
        for id in nodes.keys.sorted() { start(id) }
        for id in nodes.keys.sorted() { schedule(.tick(id), at: Int64(rng.next() % 10)) }
        if options.controllers {
            scheduleMetadataLayer()
        } else {
            schedule(.propose, at: 100)
        }
        if !options.faultFree { schedule(.partition, at: 500 + Int64(rng.next() % 2000)) }
        for id in nodes.keys.sorted() where faults.crashPerSecond > 0 {
            schedule(.crash(id), at: nextFault(rate: faults.crashPerSecond))
        }
        for id in nodes.keys.sorted() where faults.snapshotEveryMs > 0 {
            schedule(.snapshot(id), at: Int64(rng.next() % UInt64(faults.snapshotEveryMs * 2)))
        }
        try runUntil(options.faultPhaseMs)
        // Liveness: heal everything, restart the dead, stop faults; a leader must be elected
        // and a new proposal committed within the phase.
        faultsOn = false
        blocked = [:]
        for (id, n) in nodes.sorted(by: { $0.key < $1.key }) where n.core == nil { start(id) }
        let target = committedEnd
        let deadline = now + options.livenessPhaseMs
        if options.controllers {
            try runUntil(deadline) { [unowned self] in self.clusterHealthy() }
            if !clusterHealthy() {
                throw Violation(invariant: "Liveness", detail: "\(options.livenessPhaseMs) ms after healing the cluster is not healthy: \(clusterHealthReport())", timeMs: now)
            }
            return
        }
        try runUntil(deadline) { [unowned self] in
            self.committedEnd > target + 1 && self.nodes.values.contains { $0.core?.isLeader == true }
        }
        if !(committedEnd > target + 1) {
            throw Violation(invariant: "Liveness", detail: "no new commit within \(options.livenessPhaseMs) ms of healing (committed end \(committedEnd))", timeMs: now)
        }
    }

    /// Failover timing: a healthy cluster elects a leader and commits; then the leader is
    /// killed and the time until a new leader commits in its epoch is returned (ms).
    public func measureFailover() throws -> Int64? {
        faultsOn = false
        for id in nodes.keys.sorted() { start(id) }
        for id in nodes.keys.sorted() { schedule(.tick(id), at: Int64(rng.next() % 10)) }
        schedule(.propose, at: 100)
        try runUntil(30_000) { [unowned self] in self.committedEnd > 5 && self.currentLeader() != nil }
        guard let old = currentLeader() else { return nil }
        let oldEpoch = nodes[old]!.core!.epoch
        kill(old, keepUnflushed: 0)
        let killedAt = now
        var newLeaderCommitted: Int64? = nil
        try runUntil(killedAt + 30_000) { [unowned self] in
            guard let l = self.currentLeader(), let core = self.nodes[l]?.core, core.epoch > oldEpoch,
                  core.highWatermark > core.epochStartOffset else { return false }
            newLeaderCommitted = self.now
            return true
        }
        return newLeaderCommitted.map { $0 - killedAt }
    }

    func currentLeader() -> Int32? {
        nodes.values.filter { $0.core?.isLeader == true }.max { $0.core!.epoch < $1.core!.epoch }?.id
    }

    func nextFault(rate: Double) -> Int64 {
        guard rate > 0 else { return Int64.max / 2 }
        let meanMs = 1000 / rate
        return now + 1 + Int64(unit() * meanMs * 2)
    }

    func runUntil(_ end: Int64, stop: (() -> Bool)? = nil) throws {
        while let next = queue.peek(), next.time <= end {
            _ = queue.pop()
            now = next.time
            events += 1
            try handle(next.event)
            try checkInvariants()
            if let stop, stop() { return }
        }
        now = end
    }

    /// Kills a node's process: unflushed writes may be lost, and its TCP connections are
    /// reset, which its peers notice (unless a partition hides it).
    func kill(_ id: Int32, keepUnflushed: Int) {
        nodes[id]!.core = nil
        nodes[id]!.log.crash(keepUnflushed: keepUnflushed)
        for (peer, n) in nodes.sorted(by: { $0.key < $1.key }) where peer != id && n.core != nil {
            if blocked[id]?.contains(peer) == true { continue }
            schedule(.disconnected(peer: peer, from: id), at: now + faults.minDelay)
        }
    }

    func start(_ id: Int32) {
        let n = nodes[id]!
        n.incarnation += 1
        n.lastHW = 0
        // The state machine restarts from the newest snapshot (or from nothing).
        if let snap = n.log.latestSnapshotId, let bytes = n.log.snapshots[snap], let st = Self.decodeSnapshot(bytes) {
            (n.applied, n.digest, n.appliedEpoch) = (st.applied, st.digest, snap.epoch)
            n.image = MetadataImage(snapshotRecords: st.records, endOffset: st.applied)
        } else {
            (n.applied, n.digest, n.appliedEpoch) = (0, 0, -1)
            n.image = MetadataImage()
        }
        n.partitionEpochs = [:]
        n.controller = nil
        n.pendingReplies = []
        n.brokerEpoch = -1
        n.rpcInFlightSince = nil
        n.lastHeartbeatMs = 0
        n.core = RaftNode(config: raftConfig(id), log: n.log, state: n.state, seed: seed &+ UInt64(n.incarnation) &* 7919, nowMs: now)
    }

    func handle(_ e: Event) throws {
        switch e {
        case let .tick(id):
            if let core = nodes[id]!.core { try apply(id, core.tick(nowMs: now)) }
            schedule(.tick(id), at: now + 5)
        case let .deliver(env):
            if env.to == Simulation.traceNode || env.from == Simulation.traceNode {
                if case .fetch = env.message {} else { print("t=\(now) \(env.from)->\(env.to) \(env.message)".prefix(300)) }
            }
            guard let core = nodes[env.to]?.core else {
                // A dead process: its connections are refused at once.
                if !env.message.isResponse { schedule(.failed(env), at: now + faults.minDelay) }
                return
            }
            try apply(env.to, core.receive(env, nowMs: now))
        case let .disconnected(peer, from):
            guard let core = nodes[peer]?.core else { return }
            try apply(peer, core.peerDisconnected(from, nowMs: now))
        case let .failed(env):
            guard let core = nodes[env.from]?.core else { return }
            try apply(env.from, core.requestFailed(env, nowMs: now))
        case let .crash(id):
            guard faultsOn else { return }
            let n = nodes[id]!
            if n.core != nil {
                kill(id, keepUnflushed: faults.tornTail ? Int(rng.next() % 2) : 0)
                schedule(.restart(id), at: now + 50 + Int64(rng.next() % 3000))
            }
            schedule(.crash(id), at: nextFault(rate: faults.crashPerSecond))
        case let .restart(id):
            if nodes[id]!.core == nil { start(id) }
        case .propose:
            for (_, n) in nodes.sorted(by: { $0.key < $1.key }) {
                guard let core = n.core, core.isLeader else { continue }
                proposals += 1
                let value = ByteBuffer(string: "p\(proposals)")
                if let (_, ready) = try? core.propose([value], nowMs: now) { try apply(n.id, ready) }
            }
            schedule(.propose, at: now + 20 + Int64(rng.next() % 80))
        case .partition:
            guard faultsOn else { return }
            blocked = [:]
            let ids = nodes.keys.sorted()
            switch rng.next() % 4 {
            case 0: break  // healed
            case 1:  // isolate one node
                let x = ids[Int(rng.next() % UInt64(ids.count))]
                for o in ids where o != x { blocked[x, default: []].insert(o); blocked[o, default: []].insert(x) }
            case 2:  // random split
                let side = Set(ids.filter { _ in rng.next() % 2 == 0 })
                for a in ids { for b in ids where side.contains(a) != side.contains(b) { blocked[a, default: []].insert(b) } }
            default:  // one-way links
                for a in ids { for b in ids where a != b && rng.next() % 4 == 0 { blocked[a, default: []].insert(b) } }
            }
            schedule(.partition, at: nextFault(rate: max(faults.partitionPerSecond, 0.05)))
        case .heal:
            blocked = [:]
        case let .snapshot(id):
            let n = nodes[id]!
            if n.core != nil, n.applied > (n.log.latestSnapshotId?.endOffset ?? 0), n.appliedEpoch >= 0 {
                // The state machine snapshots what it applied (committed state only).
                let claimed = options.brokenSnapshotOffByOne ? n.applied + 1 : n.applied
                n.log.createSnapshot(SnapshotId(endOffset: claimed, epoch: n.appliedEpoch),
                                     bytes: Self.encodeSnapshot(applied: claimed, digest: n.digest, records: options.controllers ? n.image.snapshotRecords() : []))
                snapshotsTaken += 1
                if unit() < faults.trimChance { n.log.deleteBeforeLatestSnapshot() }
            }
            if faults.snapshotEveryMs > 0 { schedule(.snapshot(id), at: now + 1 + Int64(rng.next() % UInt64(faults.snapshotEveryMs * 2))) }
        case let .controllerTick(id):
            try controllerTick(nodes[id]!)
            schedule(.controllerTick(id), at: now + 100)
        case let .brokerTick(id):
            try brokerTick(nodes[id]!)
            schedule(.brokerTick(id), at: now + 100)
        case let .rpc(from, fromIncarnation, to, request):
            try handleRPC(from: from, fromIncarnation: fromIncarnation, to: nodes[to]!, request)
        case let .rpcReply(to, incarnation, reply):
            let n = nodes[to]!
            if n.core != nil && n.incarnation == incarnation { handleReply(n, reply) }
        case .admin:
            try admin()
        }
    }

    /// A snapshot of the simulated state machine: the applied end, the digest, and (with
    /// the metadata layer) the image as `MetadataImage.snapshotRecords()`.
    static func encodeSnapshot(applied: Int64, digest: UInt64, records: [MetadataRecord]) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(applied)
        b.writeInteger(digest)
        b.writeInteger(Int32(records.count))
        for r in records {
            var v = (try? r.encode()) ?? ByteBuffer()
            b.writeInteger(Int32(v.readableBytes))
            b.writeBuffer(&v)
        }
        return b
    }

    static func decodeSnapshot(_ bytes: ByteBuffer) -> (applied: Int64, digest: UInt64, records: [MetadataRecord])? {
        var b = bytes
        guard let a = b.readInteger(as: Int64.self), let d = b.readInteger(as: UInt64.self), let n = b.readInteger(as: Int32.self) else { return nil }
        var records: [MetadataRecord] = []
        for _ in 0..<n {
            guard let len = b.readInteger(as: Int32.self), let v = b.readSlice(length: Int(len)), let r = try? MetadataRecord.decode(v) else { return nil }
            records.append(r)
        }
        return (a, d, records)
    }

    static func fold(_ digest: UInt64, offset: Int64, epoch: Int32) -> UInt64 {
        var z = digest &+ UInt64(bitPattern: offset) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(UInt32(bitPattern: epoch))
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// StateMachineSafety: every node's state after applying the prefix below `end` is the same.
    func noteState(_ n: Node, end: Int64, digest: UInt64, source: String) throws {
        if let d = stateDigests[end], d != digest {
            throw Violation(invariant: "StateMachineSafety", detail: "node \(n.id)'s state below offset \(end) (\(source)) differs from another node's", timeMs: now)
        }
        stateDigests[end] = digest
    }

    /// Applies the node's committed records below `hw` to its state machine.
    func applyCommitted(_ n: Node, upTo hw: Int64) throws {
        guard n.applied < hw else { return }
        if n.applied < n.log.startOffset {
            throw Violation(invariant: "SnapshotCoversTrimmedLog", detail: "node \(n.id) must apply \(n.applied) but its log starts at \(n.log.startOffset)", timeMs: now)
        }
        for e in n.log.entries where e.lastOffset >= n.applied && e.baseOffset < hw {
            let records = options.controllers ? try metadataRecords(e.bytes) : [:]
            for o in max(e.baseOffset, n.applied)...min(e.lastOffset, hw - 1) {
                n.digest = Self.fold(n.digest, offset: o, epoch: e.epoch)
                n.appliedEpoch = e.epoch
                n.applied = o + 1
                if let r = records[o] {
                    n.image.replay(r, offset: o)
                    if stateDigests[o + 1] == nil { metadataRecordCounts["\(r.type)", default: 0] += 1 }
                }
                try noteState(n, end: n.applied, digest: n.digest, source: "applied")
            }
            if options.controllers { try checkMetadataInvariants(n) }
        }
        if options.controllers { deliverCommittedReplies(n, below: hw) }
    }

    /// Executes a RaftReady as the real shell does: persist, flush, then send.
    func apply(_ id: Int32, _ ready: RaftReady) throws {
        let n = nodes[id]!
        var r = ready
        defer {
            if faultsOn && ready.persistState != nil && n.core != nil && unit() < faults.crashAfterPersist {
                n.core = nil
                n.log.crash(keepUnflushed: 0)
                schedule(.restart(id), at: now + 20 + Int64(rng.next() % 500))
            }
        }
        while true {
            if let s = r.persistState {
                // EpochMonotonic: the persisted epoch never decreases.
                if s.epoch < n.state.epoch {
                    throw Violation(invariant: "EpochMonotonic", detail: "node \(n.id) persisted epoch \(s.epoch) after \(n.state.epoch)", timeMs: now)
                }
                if options.brokenSkipVotePersist && s.votedId >= 0 && s.votedId != n.id {
                    // Broken on purpose: the vote for another node is sent but never written.
                    n.state = ElectionState(epoch: s.epoch, votedId: s.epoch == n.state.epoch ? n.state.votedId : -1, leaderId: s.leaderId)
                } else {
                    n.state = s
                }
            }
            if r.flushLog { try n.log.flush() }
            if let snap = r.snapshotInstalled {
                guard let bytes = n.log.snapshots[snap], let st = Self.decodeSnapshot(bytes), st.applied == snap.endOffset else {
                    throw Violation(invariant: "SnapshotInstall", detail: "node \(n.id) installed an unreadable snapshot \(snap)", timeMs: now)
                }
                snapshotsInstalled += 1
                (n.applied, n.digest, n.appliedEpoch) = (st.applied, st.digest, snap.epoch)
                n.image = MetadataImage(snapshotRecords: st.records, endOffset: st.applied)
                n.partitionEpochs = [:]
                try noteState(n, end: st.applied, digest: st.digest, source: "snapshot \(snap) from the leader")
            }
            if let hw = r.newHighWatermark { try noteHighWatermark(n, hw) }
            for env in r.sendAfterPersist { send(env) }
            guard r.needsPersist, let core = n.core else { return }
            r = core.persisted(nowMs: now)
            if r.isEmpty { return }
        }
    }

    func send(_ env: RaftEnvelope) {
        if case let .voteResponse(v) = env.message, v.voteGranted, !v.preVote {
            // VoteDurability: one granted vote per voter and epoch, even across crashes.
            let key = "\(env.from)/\(v.requestEpoch)"
            if let prior = grantedVotes[key], prior != env.to {
                pendingViolation = Violation(invariant: "VoteDurability", detail: "node \(env.from) voted for \(prior) and \(env.to) in epoch \(v.requestEpoch)", timeMs: now)
            }
            grantedVotes[key] = env.to
        }
        if faultsOn {
            if blocked[env.from]?.contains(env.to) == true { return }
            if unit() < faults.drop { return }
        }
        let delay = faults.minDelay + Int64(rng.next() % UInt64(max(1, faults.maxDelay - faults.minDelay)))
        schedule(.deliver(env), at: now + delay)
        if faultsOn && unit() < faults.duplicate {
            schedule(.deliver(env), at: now + delay + Int64(rng.next() % 50))
        }
    }

    var pendingViolation: Violation?

    static let traceNode: Int32? = {
        if let v = getenvString("FJORD_SIM_TRACE") { return Int32(v) }
        return nil
    }()

    func noteHighWatermark(_ n: Node, _ hw: Int64) throws {
        if n.id == Simulation.traceNode {
            print("t=\(now) node \(n.id) HW \(hw) role \(n.core.map { "\($0.role)@\($0.epoch)" } ?? "-") log end \(n.log.endOffset) epochs \(n.log.entries.suffix(4).map { "\($0.baseOffset)-\($0.lastOffset)@\($0.epoch)" })")
        }
        // HighWatermarkMonotonic (per incarnation).
        if hw < n.lastHW {
            throw Violation(invariant: "HighWatermarkMonotonic", detail: "node \(n.id) HW \(n.lastHW) → \(hw)", timeMs: now)
        }
        n.lastHW = hw
        // CommittedEntriesNeverLost: the node's prefix below its HW is the committed log.
        for e in n.log.entries where e.baseOffset < hw {
            for o in e.baseOffset...e.lastOffset where o < hw {
                if let c = committed[o], c != e.epoch {
                    throw Violation(invariant: "CommittedEntriesNeverLost",
                                    detail: "offset \(o) committed in epoch \(c) but node \(n.id) commits epoch \(e.epoch)", timeMs: now)
                }
                if committed[o] == nil { committedAt[o] = n.core?.epoch ?? e.epoch }
                committed[o] = e.epoch
            }
        }
        committedEnd = max(committedEnd, hw)
        try applyCommitted(n, upTo: hw)
    }

    func checkInvariants() throws {
        if let v = pendingViolation { throw v }
        for (_, n) in nodes.sorted(by: { $0.key < $1.key }) {
            guard let core = n.core else { continue }
            if core.isLeader {
                // ElectionSafety.
                if let other = leaders[core.epoch], other != n.id {
                    throw Violation(invariant: "ElectionSafety", detail: "nodes \(other) and \(n.id) both lead epoch \(core.epoch)", timeMs: now)
                }
                leaders[core.epoch] = n.id
                // LeaderCompleteness: a leader holds every committed entry (checked when the
                // leader's log or the committed prefix changed since the last check).
                let stamp = "\(core.epoch)/\(n.log.endOffset)/\(n.log.entries.count)/\(committedEnd)"
                if completenessChecked[n.id] == stamp { continue }
                completenessChecked[n.id] = stamp
                let byOffset = Dictionary(n.log.entries.flatMap { e in (e.baseOffset...e.lastOffset).map { ($0, e.epoch) } }, uniquingKeysWith: { a, _ in a })
                // Below its log start the leader's snapshot stands for the log.
                for o in n.log.startOffset..<max(n.log.startOffset, committedEnd) {
                    // Leaders of the epoch it was committed in, or later, must hold it; a stale
                    // leader of an older epoch (cut off, not yet resigned) need not.
                    if let c = committed[o], let at = committedAt[o], at <= core.epoch, byOffset[o] != c {
                        throw Violation(invariant: "CommittedEntriesNeverLost",
                                        detail: "leader \(n.id) of epoch \(core.epoch) lacks committed offset \(o) (epoch \(c))", timeMs: now)
                    }
                }
                // HighWatermarkMajority: a majority of voters hold the leader's HW prefix.
                let hw = core.highWatermark
                let holders = voterIds.filter { v in
                    guard let log = nodes[v]?.log else { return false }
                    return log.flushedEndOffset >= hw || (nodes[v]?.core == nil && log.endOffset >= hw)
                }
                if hw > 0 && holders.count < voterIds.count / 2 + 1 {
                    throw Violation(invariant: "HighWatermarkMajority", detail: "leader \(n.id) HW \(hw) held by \(holders)", timeMs: now)
                }
            }
        }
    }
}

func getenvString(_ k: String) -> String? {
    guard let p = getenv(k) else { return nil }
    return String(cString: p)
}

/// A binary min-heap of scheduled events.
struct Heap {
    private var items: [Simulation.Scheduled] = []
    func peek() -> Simulation.Scheduled? { items.first }
    mutating func push(_ x: Simulation.Scheduled) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if items[i] < items[p] { items.swapAt(i, p); i = p } else { break }
        }
    }
    mutating func pop() -> Simulation.Scheduled? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && items[l] < items[m] { m = l }
            if r < items.count && items[r] < items[m] { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return top
    }
}
