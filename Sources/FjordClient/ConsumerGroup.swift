import FjordProtocol
import FjordWire
import NIOCore

/// Membership in a consumer group with the classic protocol (KIP-62 era, as the Java consumer
/// and librdkafka speak it): FindCoordinator, JoinGroup (with the MEMBER_ID_REQUIRED retry),
/// SyncGroup with the range assignment computed by the leader, Heartbeat, OffsetFetch,
/// OffsetCommit and LeaveGroup.
///
/// Blocking: call from the thread that polls the consumer. ``join()`` returns this member's
/// partitions with their committed offsets; ``poll(positions:)`` heartbeats and auto-commits
/// when due and tells when the group rebalances (then commit and ``join()`` again).
public final class ConsumerGroup: @unchecked Sendable {
    public let client: KafkaClient
    public let groupId: String
    public let topics: [String]
    public var sessionTimeoutMs: Int32 = 45_000
    public var rebalanceTimeoutMs: Int32 = 60_000
    public var heartbeatIntervalMs: Int64 = 3_000
    public var autoCommitIntervalMs: Int64? = 5_000

    public private(set) var memberId = ""
    public private(set) var generationId: Int32 = -1
    public private(set) var isLeader = false
    public private(set) var assignment: [TopicPartition] = []
    private var coordinator: BrokerConnection?
    private var lastHeartbeatNs: UInt64 = 0
    private var lastCommitNs: UInt64 = 0

    /// The assignment strategy this member offers.
    public static let protocolName = "range"

    public init(client: KafkaClient, groupId: String, topics: [String]) {
        self.client = client
        self.groupId = groupId
        self.topics = topics.sorted()
    }

    deinit { coordinator?.connection.close() }

    // MARK: coordinator

    private func findCoordinator(deadlineNs: UInt64) throws -> BrokerConnection {
        if let c = coordinator, c.isActive { return c }
        coordinator = nil
        var lastError: Error = KafkaClientError.timedOut("FindCoordinator for group \(groupId)")
        while Clock.monotonicNs() < deadlineNs {
            do {
                let group = groupId
                let r = try client.send(to: .any, expecting: FindCoordinatorResponse.self) { v in
                    var r = FindCoordinatorRequest()
                    r.keyType = 0
                    if v >= 4 { r.coordinatorKeys = [group] } else { r.key = group }
                    return r
                }.wait()
                var code = r.errorCode, message = r.errorMessage, node = r.nodeId
                if let c = r.coordinators.first {
                    code = c.errorCode
                    message = c.errorMessage
                    node = c.nodeId
                }
                if let e = KafkaClientError.check(code, message, context: "FindCoordinator for group \(groupId)") { throw e }
                if client.metadata.brokers[node] == nil { _ = try client.refreshMetadata(topics: []).wait() }
                let conn = try client.dedicatedConnection(toBroker: node).wait()
                coordinator = conn
                return conn
            } catch {
                lastError = error
                guard Self.retriable(error) else { throw error }
                sleepMs(200)
            }
        }
        throw lastError
    }

    static func retriable(_ error: Error) -> Bool {
        if let e = error as? KafkaClientError {
            if let c = e.errorCode {
                return c.isRetriable || c == .coordinatorNotAvailable || c == .notCoordinator || c == .coordinatorLoadInProgress
            }
            return e.isRetriable
        }
        return error is KafkaConnectionError
    }

    private func sleepMs(_ ms: Int) {
        let c = Condition()
        c.withLock { _ = c.wait(untilNs: Clock.monotonicNs() + UInt64(ms) * 1_000_000) }
    }

    private func coordinatorFailed(_ error: Error) {
        if let e = error as? KafkaClientError, let c = e.errorCode, c == .notCoordinator || c == .coordinatorNotAvailable {
            coordinator?.connection.close()
            coordinator = nil
        } else if error is KafkaConnectionError {
            coordinator?.connection.close()
            coordinator = nil
        }
    }

    // MARK: join

    /// Joins (or rejoins) the group; returns this member's partitions and their committed
    /// offsets (nil: nothing committed). Blocks during the rebalance.
    public func join(timeoutMs: Int64 = 120_000) throws -> [TopicPartition: Int64?] {
        let deadline = Clock.monotonicNs() + UInt64(timeoutMs) * 1_000_000
        var lastError: Error = KafkaClientError.timedOut("joining group \(groupId)")
        while Clock.monotonicNs() < deadline {
            do {
                let conn = try findCoordinator(deadlineNs: deadline)
                let joined = try joinOnce(conn)
                guard let joined else { continue }  // MEMBER_ID_REQUIRED: again with the id
                let assigned = try sync(conn, joined)
                assignment = assigned.sorted()
                lastHeartbeatNs = Clock.monotonicNs()
                lastCommitNs = lastHeartbeatNs
                return try committedOffsets(assignment)
            } catch let e as KafkaClientError where e.errorCode == .unknownMemberId {
                memberId = ""
                lastError = e
            } catch let e as KafkaClientError where e.errorCode == .illegalGeneration || e.errorCode == .rebalanceInProgress {
                lastError = e
            } catch {
                lastError = error
                guard Self.retriable(error) else { throw error }
                coordinatorFailed(error)
                sleepMs(200)
            }
        }
        throw lastError
    }

    private func subscription() throws -> ByteBuffer {
        var s = ConsumerProtocolSubscription()
        s.topics = topics
        s.userData = nil
        var buf = ByteBuffer()
        buf.writeInteger(Int16(1))
        try s.encode(to: &buf, version: 1)
        return buf
    }

    /// One JoinGroup; nil when the coordinator asked to rejoin with an assigned member id.
    private func joinOnce(_ conn: BrokerConnection) throws -> JoinGroupResponse? {
        let meta = try subscription()
        let (group, member, session, rebalance) = (groupId, memberId, sessionTimeoutMs, rebalanceTimeoutMs)
        let r = try conn.send(expecting: JoinGroupResponse.self, timeoutMs: Int64(rebalanceTimeoutMs) + 10_000) { _ in
            var r = JoinGroupRequest()
            r.groupId = group
            r.sessionTimeoutMs = session
            r.rebalanceTimeoutMs = rebalance
            r.memberId = member
            r.protocolType = "consumer"
            var p = JoinGroupRequest.JoinGroupRequestProtocol()
            p.name = ConsumerGroup.protocolName
            p.metadata = meta
            r.protocols = [p]
            return r
        }.wait()
        if r.errorCode == ErrorCode.memberIdRequired.rawValue {
            memberId = r.memberId
            return nil
        }
        if let e = KafkaClientError.check(r.errorCode, nil, context: "JoinGroup \(groupId)") { throw e }
        memberId = r.memberId
        generationId = r.generationId
        isLeader = r.leader == r.memberId
        return r
    }

    private func sync(_ conn: BrokerConnection, _ joined: JoinGroupResponse) throws -> [TopicPartition] {
        var assignments: [SyncGroupRequest.SyncGroupRequestAssignment] = []
        if isLeader {
            var subs: [String: [String]] = [:]
            for m in joined.members {
                var b = m.metadata
                subs[m.memberId] = (try? Self.decodeSubscription(&b).topics) ?? []
            }
            let all = Array(Set(subs.values.flatMap { $0 })).sorted()
            let md = try client.awaitMetadata(topics: all, timeoutMs: 10_000) { md in all.allSatisfy { md.topics[$0] != nil } }.wait()
            var counts: [String: Int] = [:]
            for t in all { counts[t] = md.topics[t]?.partitions.count ?? 0 }
            let plan = Self.rangeAssign(subscriptions: subs, partitionCounts: counts)
            for (member, parts) in plan {
                var byTopic: [String: [Int32]] = [:]
                for tp in parts { byTopic[tp.topic, default: []].append(tp.partition) }
                var a = ConsumerProtocolAssignment()
                a.assignedPartitions = byTopic.keys.sorted().map { t in
                    var x = ConsumerProtocolAssignment.TopicPartition()
                    x.topic = t
                    x.partitions = byTopic[t]!.sorted()
                    return x
                }
                var buf = ByteBuffer()
                buf.writeInteger(Int16(1))
                try a.encode(to: &buf, version: 1)
                var s = SyncGroupRequest.SyncGroupRequestAssignment()
                s.memberId = member
                s.assignment = buf
                assignments.append(s)
            }
        }
        let (group, member, gen, list) = (groupId, memberId, generationId, assignments)
        let r = try conn.send(expecting: SyncGroupResponse.self, timeoutMs: Int64(rebalanceTimeoutMs) + 10_000) { _ in
            var r = SyncGroupRequest()
            r.groupId = group
            r.generationId = gen
            r.memberId = member
            r.protocolType = "consumer"
            r.protocolName = ConsumerGroup.protocolName
            r.assignments = list
            return r
        }.wait()
        if let e = KafkaClientError.check(r.errorCode, nil, context: "SyncGroup \(groupId)") { throw e }
        var b = r.assignment
        guard b.readableBytes >= 2 else { return [] }
        let a = try Self.decodeAssignment(&b)
        return a.assignedPartitions.flatMap { t in t.partitions.map { TopicPartition(t.topic, $0) } }
    }

    static func decodeSubscription(_ b: inout ByteBuffer) throws -> ConsumerProtocolSubscription {
        guard let v: Int16 = b.readInteger() else { throw KafkaClientError.invalidArgument("empty subscription") }
        return try ConsumerProtocolSubscription(from: &b, version: min(max(v, 0), 3))
    }

    static func decodeAssignment(_ b: inout ByteBuffer) throws -> ConsumerProtocolAssignment {
        guard let v: Int16 = b.readInteger() else { throw KafkaClientError.invalidArgument("empty assignment") }
        return try ConsumerProtocolAssignment(from: &b, version: min(max(v, 0), 3))
    }

    /// Kafka's range assignor: per topic, the sorted partitions in consecutive ranges over the
    /// subscribed members sorted by id, the first `count % members` getting one more.
    public static func rangeAssign(subscriptions: [String: [String]], partitionCounts: [String: Int]) -> [String: [TopicPartition]] {
        var out: [String: [TopicPartition]] = [:]
        for m in subscriptions.keys { out[m] = [] }
        for topic in partitionCounts.keys.sorted() {
            let members = subscriptions.filter { $0.value.contains(topic) }.map(\.key).sorted()
            guard !members.isEmpty, let n = partitionCounts[topic], n > 0 else { continue }
            let per = n / members.count, extra = n % members.count
            var next = 0
            for (i, m) in members.enumerated() {
                let count = per + (i < extra ? 1 : 0)
                for p in next..<(next + count) { out[m]!.append(TopicPartition(topic, Int32(p))) }
                next += count
            }
        }
        return out
    }

    // MARK: offsets

    /// The committed offsets of `partitions` (nil where nothing is committed).
    public func committedOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Int64?] {
        var out: [TopicPartition: Int64?] = [:]
        for tp in partitions { out[tp] = .some(nil) }
        guard !partitions.isEmpty else { return out }
        let conn = try findCoordinator(deadlineNs: Clock.monotonicNs() + 30_000_000_000)
        var byTopic: [String: [Int32]] = [:]
        for tp in partitions { byTopic[tp.topic, default: []].append(tp.partition) }
        let group = groupId
        let r = try conn.send(expecting: OffsetFetchResponse.self, timeoutMs: client.config.requestTimeoutMs) { v in
            var r = OffsetFetchRequest()
            r.groupId = group
            r.topics = byTopic.keys.sorted().map { t in
                var x = OffsetFetchRequest.OffsetFetchRequestTopic()
                x.name = t
                x.partitionIndexes = byTopic[t]!
                return x
            }
            r.requireStable = v >= 7
            return r
        }.wait()
        if let e = KafkaClientError.check(r.errorCode, nil, context: "OffsetFetch \(groupId)") { throw e }
        for t in r.topics {
            for p in t.partitions {
                if let e = KafkaClientError.check(p.errorCode, nil, context: "OffsetFetch \(t.name)-\(p.partitionIndex)") { throw e }
                out[TopicPartition(t.name, p.partitionIndex)] = p.committedOffset >= 0 ? .some(p.committedOffset) : .some(nil)
            }
        }
        return out
    }

    /// Commits `offsets` (the next offset to read, per partition) for this generation.
    public func commit(_ offsets: [TopicPartition: Int64]) throws {
        guard !offsets.isEmpty else { return }
        let conn = try findCoordinator(deadlineNs: Clock.monotonicNs() + 30_000_000_000)
        var byTopic: [String: [(Int32, Int64)]] = [:]
        for (tp, o) in offsets { byTopic[tp.topic, default: []].append((tp.partition, o)) }
        let (group, member, gen) = (groupId, memberId, generationId)
        let r = try conn.send(expecting: OffsetCommitResponse.self, timeoutMs: client.config.requestTimeoutMs) { _ in
            var r = OffsetCommitRequest()
            r.groupId = group
            r.generationIdOrMemberEpoch = gen
            r.memberId = member
            r.topics = byTopic.keys.sorted().map { t in
                var x = OffsetCommitRequest.OffsetCommitRequestTopic()
                x.name = t
                x.partitions = byTopic[t]!.map { p, o in
                    var y = OffsetCommitRequest.OffsetCommitRequestPartition()
                    y.partitionIndex = p
                    y.committedOffset = o
                    y.committedMetadata = ""
                    return y
                }
                return x
            }
            return r
        }.wait()
        for t in r.topics {
            for p in t.partitions {
                if let e = KafkaClientError.check(p.errorCode, nil, context: "OffsetCommit \(t.name)-\(p.partitionIndex)") { throw e }
            }
        }
        lastCommitNs = Clock.monotonicNs()
    }

    // MARK: liveness

    /// What ``poll(positions:)`` found.
    public enum Event: Sendable, Equatable {
        case none
        /// The group rebalances: commit, then ``join()`` again.
        case rebalance
    }

    /// Heartbeats and auto-commits `positions` when due. Call often (at least every few seconds).
    public func poll(positions: () -> [TopicPartition: Int64]) throws -> Event {
        let now = Clock.monotonicNs()
        if let every = autoCommitIntervalMs, now &- lastCommitNs >= UInt64(every) * 1_000_000 {
            do { try commit(positions()) } catch {
                if let e = error as? KafkaClientError, [.rebalanceInProgress, .illegalGeneration, .unknownMemberId].contains(e.errorCode) {
                    if e.errorCode == .unknownMemberId { memberId = "" }
                    return .rebalance
                }
                coordinatorFailed(error)
            }
        }
        guard now &- lastHeartbeatNs >= UInt64(heartbeatIntervalMs) * 1_000_000 else { return .none }
        lastHeartbeatNs = now
        do {
            let conn = try findCoordinator(deadlineNs: now + 10_000_000_000)
            let (group, member, gen) = (groupId, memberId, generationId)
            let r = try conn.send(expecting: HeartbeatResponse.self, timeoutMs: 10_000) { _ in
                var r = HeartbeatRequest()
                r.groupId = group
                r.generationId = gen
                r.memberId = member
                return r
            }.wait()
            switch ErrorCode(rawValue: r.errorCode) ?? .unknownServerError {
            case .noError: return .none
            case .rebalanceInProgress, .illegalGeneration: return .rebalance
            case .unknownMemberId, .fencedInstanceId:
                memberId = ""
                return .rebalance
            default:
                if let e = KafkaClientError.check(r.errorCode, nil, context: "Heartbeat \(groupId)") { coordinatorFailed(e) }
                return .none
            }
        } catch {
            coordinatorFailed(error)
            return .none
        }
    }

    /// Leaves the group (the coordinator rebalances the others at once).
    public func leave() {
        guard !memberId.isEmpty, let conn = try? findCoordinator(deadlineNs: Clock.monotonicNs() + 5_000_000_000) else { return }
        let (group, member) = (groupId, memberId)
        _ = try? conn.send(expecting: LeaveGroupResponse.self, timeoutMs: 5_000) { v in
            var r = LeaveGroupRequest()
            r.groupId = group
            if v >= 3 {
                var m = LeaveGroupRequest.MemberIdentity()
                m.memberId = member
                r.members = [m]
            } else {
                r.memberId = member
            }
            return r
        }.wait()
        memberId = ""
        coordinator?.connection.close()
        coordinator = nil
    }
}
