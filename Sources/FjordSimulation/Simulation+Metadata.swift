import FjordController
import FjordMetadata
import FjordProtocol
import FjordRaft
import FjordRecords
import FjordWire
import NIOCore

/// A request of the metadata layer, carried by the simulated network.
enum SimRequest {
    case register(BrokerRegistrationRequest)
    case heartbeat(BrokerHeartbeatRequest)
    case alterPartition(AlterPartitionRequest)
    case createTopics(CreateTopicsRequest)
    case electLeaders(ElectLeadersRequest)
}

/// Its answer (sent once the controller's records for it are committed).
enum SimReply {
    case register(BrokerRegistrationResponse)
    case heartbeat(BrokerHeartbeatResponse)
    case done
    case notController
}

/// The metadata layer of the simulation (`Options.controllers`): voters run the real
/// `QuorumController` while they lead (activated as the server's shell activates it: once
/// everything before their epoch is committed and replayed), observers are brokers that
/// register, heartbeat with their metadata offset and, when they lead a partition, ask
/// for ISR changes; an admin creates topics and asks for preferred elections. Every node
/// replays the committed records into its `MetadataImage`, and after every batch the
/// metadata invariants are checked on it:
///
/// - LeaderInIsr: a partition's leader is in its ISR (or there is none);
/// - IsrWithinReplicas, IsrNotEmpty;
/// - LeaderIsUnfenced: a leader is a registered, unfenced broker;
/// - PartitionEpochsGrow: a partition's leader and partition epochs never go back on a node;
/// - OneLeaderPerEpoch: no two brokers lead one partition in the same leader epoch, in any
///   node's image (brokers act on their own images).
///
/// Liveness after healing: every broker registered and unfenced, every partition led.
extension Simulation {
    static let clusterId = "sim-cluster-000000000A"
    static let heartbeatIntervalMs: Int64 = 500
    static let sessionTimeoutMs: Int64 = 3_000
    static let rpcTimeoutMs: Int64 = 2_000

    var brokerIds: [Int32] { nodes.keys.filter { !voterIds.contains($0) }.sorted() }

    func scheduleMetadataLayer() {
        for id in voterIds { schedule(.controllerTick(id), at: 50 + Int64(rng.next() % 100)) }
        for id in brokerIds { schedule(.brokerTick(id), at: 50 + Int64(rng.next() % 100)) }
        schedule(.admin, at: 1_500)
    }

    func controllerConfig(_ id: Int32) -> ControllerConfig {
        var c = ControllerConfig(nodeId: id, clusterId: Self.clusterId)
        c.brokerSessionTimeoutMs = Self.sessionTimeoutMs
        c.brokerHeartbeatIntervalMs = Self.heartbeatIntervalMs
        c.defaultReplicationFactor = Int16(min(3, max(1, brokerIds.count)))
        c.defaultNumPartitions = 3
        c.leaderImbalanceCheckIntervalMs = 4_000
        return c
    }

    // MARK: the records of a batch

    /// The metadata records of a batch by offset (control records have none).
    func metadataRecords(_ batchBytes: ByteBuffer) throws -> [Int64: MetadataRecord] {
        var out: [Int64: MetadataRecord] = [:]
        for item in RecordBatchReader(batchBytes) {
            guard case let .batch(batch, _) = item, !batch.isControl else { continue }
            try batch.forEachRecord { r in
                guard let v = r.value else { return }
                do {
                    out[r.offset] = try MetadataRecord.decode(v)
                } catch {
                    throw Violation(invariant: "RecordsDecode", detail: "offset \(r.offset): \(error)", timeMs: now)
                }
            }
        }
        return out
    }

    // MARK: controllers

    /// Activates the node's controller when it leads and has replayed its whole log; drops it
    /// when the node no longer leads that epoch. Then runs its periodic work.
    func controllerTick(_ n: Node) throws {
        guard let core = n.core else { return }
        if let c = n.controller, !core.isLeader || core.epoch != c.epoch {
            n.controller = nil
            n.pendingReplies = []
        }
        if n.controller == nil, core.isLeader, core.epochStartOffset >= 0, core.highWatermark > core.epochStartOffset,
           n.applied >= core.highWatermark, n.log.endOffset == core.highWatermark {
            let c = QuorumController(config: controllerConfig(n.id), image: n.image, nextWriteOffset: n.log.endOffset,
                                     seed: seed &+ UInt64(now), nowMs: now)
            n.controller = (c, core.epoch)
            if n.image.metadataVersion == nil { _ = try propose(n, c.bootstrapRecords()) }
        }
        guard let c = n.controller?.controller else { return }
        var records = c.tick(nowMs: now)
        if options.brokenFenceKeepsLeaders && records.contains(where: Self.fencesABroker) {
            // Broken on purpose: the fencing is written without its leadership changes.
            records.removeAll { if case .partitionChange = $0 { return true }; return false }
        }
        if !records.isEmpty { _ = try propose(n, records) }
    }

    static func fencesABroker(_ r: MetadataRecord) -> Bool {
        switch r {
        case .fenceBroker: return true
        case let .brokerRegistrationChange(c): return c.fenced == 1
        default: return false
        }
    }

    /// Appends `records` as one batch through the node's Raft core; the offset of the last,
    /// or nil if the node cannot (it then drops its controller, as the shell does).
    func propose(_ n: Node, _ records: [MetadataRecord]) throws -> Int64? {
        guard let core = n.core, !records.isEmpty else { return nil }
        let values = try records.map { try $0.encode() }
        guard let (offsets, ready) = try? core.propose(values, nowMs: now) else {
            n.controller = nil
            n.pendingReplies = []
            return nil
        }
        try apply(n.id, ready)
        return offsets.upperBound
    }

    func handleRPC(from: Int32, fromIncarnation: Int, to n: Node, _ request: SimRequest) throws {
        guard n.core != nil, let c = n.controller?.controller else {
            if n.core != nil { sendReply(.notController, to: from, incarnation: fromIncarnation, from: n.id) }
            return
        }
        let records: [MetadataRecord]
        let reply: SimReply
        switch request {
        case let .register(r):
            let res = c.registerBroker(r, nowMs: now)
            (records, reply) = (res.records, .register(res.response))
        case let .heartbeat(r):
            let res = c.heartbeat(r, nowMs: now)
            (records, reply) = (res.records, .heartbeat(res.response))
        case let .alterPartition(r):
            let res = c.alterPartition(r, version: 3)
            (records, reply) = (res.records, .done)
        case let .createTopics(r):
            let res = c.createTopics(r, version: 7)
            (records, reply) = (res.records, .done)
        case let .electLeaders(r):
            let res = c.electLeaders(r)
            (records, reply) = (res.records, .done)
        }
        if records.isEmpty {
            sendReply(reply, to: from, incarnation: fromIncarnation, from: n.id)
        } else if let last = try propose(n, records) {
            n.pendingReplies.append((last, from, fromIncarnation, reply))
            deliverCommittedReplies(n, below: n.core?.highWatermark ?? 0)
        }
    }

    func deliverCommittedReplies(_ n: Node, below hw: Int64) {
        guard !n.pendingReplies.isEmpty else { return }
        let due = n.pendingReplies.filter { $0.offset < hw }
        n.pendingReplies.removeAll { $0.offset < hw }
        for d in due { sendReply(d.reply, to: d.to, incarnation: d.incarnation, from: n.id) }
    }

    func sendReply(_ reply: SimReply, to: Int32, incarnation: Int, from: Int32) {
        guard to > 0 else { return }  // the admin client does not wait
        if faultsOn && (blocked[from]?.contains(to) == true || unit() < faults.drop) { return }
        schedule(.rpcReply(to: to, incarnation: incarnation, reply), at: now + faults.minDelay + Int64(rng.next() % UInt64(max(1, faults.maxDelay))))
    }

    func sendRequest(_ request: SimRequest, from: Int32, to: Int32) {
        let inc = nodes[from]?.incarnation ?? 0
        if faultsOn && (blocked[from]?.contains(to) == true || unit() < faults.drop) { return }
        schedule(.rpc(from: from, fromIncarnation: inc, to: to, request), at: now + faults.minDelay + Int64(rng.next() % UInt64(max(1, faults.maxDelay))))
    }

    // MARK: brokers

    /// A broker's lifecycle: register, then heartbeat every interval with its metadata
    /// offset; as a partition leader, now and then ask for an ISR change.
    func brokerTick(_ n: Node) throws {
        guard let core = n.core else { return }
        if let since = n.rpcInFlightSince {
            if now - since < Self.rpcTimeoutMs { return }
            n.rpcInFlightSince = nil
        }
        let leader = core.leaderId
        guard leader >= 0, voterIds.contains(leader) else { return }
        if n.brokerEpoch < 0 {
            var r = BrokerRegistrationRequest()
            r.brokerId = n.id
            r.clusterId = Self.clusterId
            r.incarnationId = KafkaUUID(high: UInt64(UInt32(bitPattern: n.id)), low: UInt64(n.incarnation) &+ 1000)
            var f = BrokerRegistrationRequest.Feature()
            f.name = MetadataImage.metadataVersionFeature
            f.minSupportedVersion = 7
            f.maxSupportedVersion = 21
            r.features = [f]
            r.logDirs = [KafkaUUID(high: 0xD1D1, low: UInt64(UInt32(bitPattern: n.id)))]
            n.rpcInFlightSince = now
            sendRequest(.register(r), from: n.id, to: leader)
        } else if now - n.lastHeartbeatMs >= Self.heartbeatIntervalMs {
            var r = BrokerHeartbeatRequest()
            r.brokerId = n.id
            r.brokerEpoch = n.brokerEpoch
            r.currentMetadataOffset = n.applied - 1
            n.lastHeartbeatMs = now
            n.rpcInFlightSince = now
            sendRequest(.heartbeat(r), from: n.id, to: leader)
        } else if unit() < 0.3, let me = n.image.brokers[n.id], me.epoch == n.brokerEpoch, !me.fenced {
            // As a leader: shrink the ISR by one follower, or add back a live replica.
            let led = n.image.partitionsLed(by: n.id)
            guard !led.isEmpty else { return }
            let pick = led[Int(rng.next() % UInt64(led.count))]
            let (topicId, pid) = (pick.topicId, pick.partition)
            guard let name = n.image.topicNamesById[topicId], let p = n.image.topics[name]?.partitions[pid] else { return }
            var isr = p.isr
            let outside = p.replicas.filter { !isr.contains($0) && n.image.brokers[$0]?.fenced == false }
            if let add = outside.first, rng.next() % 2 == 0 {
                isr.append(add)
            } else if let drop = isr.filter({ $0 != n.id }).first {
                isr.removeAll { $0 == drop }
            } else {
                return
            }
            var pd = AlterPartitionRequest.PartitionData()
            pd.partitionIndex = pid
            pd.leaderEpoch = p.leaderEpoch
            pd.partitionEpoch = p.partitionEpoch
            var states: [AlterPartitionRequest.BrokerState] = []
            for id in isr {
                var st = AlterPartitionRequest.BrokerState()
                st.brokerId = id
                let epoch: Int64 = n.image.brokers[id]?.epoch ?? -1
                st.brokerEpoch = epoch
                states.append(st)
            }
            pd.newIsrWithEpochs = states
            var t = AlterPartitionRequest.TopicData()
            t.topicId = topicId
            t.partitions = [pd]
            var r = AlterPartitionRequest()
            r.brokerId = n.id
            r.brokerEpoch = n.brokerEpoch
            r.topics = [t]
            n.rpcInFlightSince = now
            sendRequest(.alterPartition(r), from: n.id, to: leader)
        }
    }

    func handleReply(_ n: Node, _ reply: SimReply) {
        n.rpcInFlightSince = nil
        switch reply {
        case let .register(r):
            if r.errorCode == 0 {
                n.brokerEpoch = r.brokerEpoch
                n.lastHeartbeatMs = 0
            }
        case let .heartbeat(r):
            if r.errorCode == ErrorCode.staleBrokerEpoch.rawValue { n.brokerEpoch = -1 }
        case .done, .notController:
            break
        }
    }

    // MARK: admin

    func admin() throws {
        if let leader = currentLeader() {
            let existing = nodes[leader]?.controller?.controller.image.topics.count ?? 0
            if existing < 8 && (existing < 3 || rng.next() % 2 == 0) {
                var t = CreateTopicsRequest.CreatableTopic()
                t.name = "topic-\(existing)"
                t.numPartitions = 3
                t.replicationFactor = Int16(min(existing < 3 ? 3 : 2, brokerIds.count))
                var r = CreateTopicsRequest()
                r.topics = [t]
                sendRequest(.createTopics(r), from: 0, to: leader)
            } else {
                var r = ElectLeadersRequest()
                r.electionType = 0  // preferred
                r.topicPartitions = nil
                sendRequest(.electLeaders(r), from: 0, to: leader)
            }
        }
        schedule(.admin, at: now + 500 + Int64(rng.next() % 1500))
    }

    // MARK: invariants

    func checkMetadataInvariants(_ n: Node) throws {
        func fail(_ name: String, _ detail: String) -> Violation {
            Violation(invariant: name, detail: "node \(n.id) at offset \(n.applied - 1): \(detail)", timeMs: now)
        }
        for (name, t) in n.image.topics.sorted(by: { $0.key < $1.key }) {
            for (pid, p) in t.partitions.sorted(by: { $0.key < $1.key }) {
                let tp = "\(name)-\(pid)"
                if p.leader >= 0 && !p.isr.contains(p.leader) { throw fail("LeaderInIsr", "\(tp) leader \(p.leader) not in ISR \(p.isr)") }
                if !p.isr.allSatisfy(p.replicas.contains) { throw fail("IsrWithinReplicas", "\(tp) ISR \(p.isr) replicas \(p.replicas)") }
                if p.isr.isEmpty { throw fail("IsrNotEmpty", "\(tp) has an empty ISR") }
                if p.leader >= 0 {
                    guard let b = n.image.brokers[p.leader], !b.fenced else {
                        throw fail("LeaderIsUnfenced", "\(tp) led by \(p.leader), which is \(n.image.brokers[p.leader] == nil ? "unregistered" : "fenced")")
                    }
                }
                let key = TopicIdPartition(topicId: t.id, partition: pid)
                if let prev = n.partitionEpochs[key], p.leaderEpoch < prev.leader || p.partitionEpoch < prev.partition {
                    throw fail("PartitionEpochsGrow", "\(tp) epochs \(prev) → (\(p.leaderEpoch), \(p.partitionEpoch))")
                }
                n.partitionEpochs[key] = (p.leaderEpoch, p.partitionEpoch)
                if p.leader >= 0 {
                    let e = "\(t.id)/\(pid)/\(p.leaderEpoch)"
                    if let other = leadersByEpoch[e], other != p.leader {
                        throw fail("OneLeaderPerEpoch", "\(tp) leader epoch \(p.leaderEpoch) led by \(other) and \(p.leader)")
                    }
                    leadersByEpoch[e] = p.leader
                }
            }
        }
    }

    /// Every broker registered and unfenced in the leader's committed image, and every
    /// partition of every topic led.
    func clusterHealthy() -> Bool {
        guard let l = currentLeader(), let n = nodes[l], n.controller != nil else { return false }
        let image = n.image
        guard image.topics.count >= 3 else { return false }
        for b in brokerIds { guard let r = image.brokers[b], !r.fenced else { return false } }
        return image.topics.values.allSatisfy { $0.partitions.values.allSatisfy { $0.leader >= 0 } }
    }

    func clusterHealthReport() -> String {
        guard let l = currentLeader(), let n = nodes[l] else { return "no leader" }
        let image = n.image
        let brokers = brokerIds.map { b in "\(b):\(image.brokers[b].map { $0.fenced ? "fenced" : "up" } ?? "unregistered")" }
        let leaderless = image.topics.values.flatMap { t in t.partitions.filter { $0.value.leader < 0 }.map { "\(t.name)-\($0.key)" } }
        return "leader \(l) controller \(n.controller != nil ? "active" : "inactive"), topics \(image.topics.count), brokers \(brokers), leaderless \(leaderless.sorted())"
    }
}
