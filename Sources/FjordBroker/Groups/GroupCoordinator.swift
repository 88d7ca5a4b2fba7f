import FjordMetadata
import FjordProtocol
import FjordRecords
import FjordStorage
import FjordWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Group coordinator settings: Kafka's keys and defaults.
public struct GroupCoordinatorConfig: Sendable {
    /// `offsets.topic.num.partitions` (50).
    public var offsetsTopicPartitions: Int32 = 50
    /// `offsets.topic.replication.factor` (3), capped by the live brokers.
    public var offsetsTopicReplicationFactor: Int16 = 3
    /// `offsets.topic.segment.bytes` (100 MiB).
    public var offsetsTopicSegmentBytes: Int = 104_857_600
    /// `group.initial.rebalance.delay.ms` (3000).
    public var initialRebalanceDelayMs: Int64 = 3000
    /// `group.min.session.timeout.ms` (6000) / `group.max.session.timeout.ms` (1800000).
    public var minSessionTimeoutMs: Int32 = 6000
    public var maxSessionTimeoutMs: Int32 = 1_800_000
    /// `group.max.size` (Int32.max).
    public var maxSize: Int32 = Int32.max
    /// `offset.metadata.max.bytes` (4096).
    public var offsetMetadataMaxBytes: Int = 4096
    /// `offsets.commit.timeout.ms` (5000).
    public var commitTimeoutMs: Int32 = 5000
    /// `offsets.retention.minutes` (7 days) in ms: committed offsets of a group that has been
    /// empty this long (or of a standalone commit this old) are deleted.
    public var offsetsRetentionMs: Int64 = 10_080 * 60_000
    /// `offsets.retention.check.interval.ms` (10 minutes).
    public var offsetsRetentionCheckIntervalMs: Int64 = 600_000

    public init() {}
}

/// The classic group coordinator (Kafka's GroupCoordinator + GroupMetadataManager): a
/// group's coordinator is the leader of `__consumer_offsets` partition
/// `abs(groupId.hashCode) % offsets.topic.num.partitions`. Group metadata and committed
/// offsets are records in that partition (written with acks=all, so a new leader has them);
/// a broker loads a partition's groups when it becomes its leader and drops them when it
/// stops leading it. All group state lives on one event loop.
public final class GroupCoordinator: @unchecked Sendable {
    public static let topic = "__consumer_offsets"
    public let config: GroupCoordinatorConfig
    let rm: ReplicaManager
    let loop: EventLoop
    let logger: Logger
    let clock: @Sendable () -> Int64
    var groups: [String: ConsumerGroup] = [:]
    /// `__consumer_offsets` partitions whose groups are loaded here, with the leader epoch.
    var owned: [Int32: Int32] = [:]
    private var tickTask: RepeatedTask?
    /// When the next offset-expiry pass is due.
    var nextExpiryCheckMs: Int64 = 0
    /// The broker's controller session lapsed (see `tick`).
    var sessionLapsed = false
    private var creatingTopic = false

    public init(config: GroupCoordinatorConfig, replicaManager: ReplicaManager, loop: EventLoop, clock: @escaping @Sendable () -> Int64, logger: Logger) {
        self.config = config
        self.rm = replicaManager
        self.loop = loop
        self.clock = clock
        self.logger = logger
    }

    public func start() {
        loop.execute {
            self.tickTask = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in self.tick() }
        }
    }

    public func stop() {
        loop.execute { self.tickTask?.cancel() }
    }

    /// Kafka's `Utils.abs(groupId.hashCode()) % partitions`: Java's String.hashCode over
    /// UTF-16 code units, and Utils.abs (Math.abs, with Integer.MIN_VALUE taken as 0).
    public func partition(for groupId: String) -> Int32 {
        Self.partition(for: groupId, partitions: config.offsetsTopicPartitions)
    }

    public static func partition(for groupId: String, partitions: Int32) -> Int32 {
        var h: Int32 = 0
        for u in groupId.utf16 { h = h &* 31 &+ Int32(u) }
        let abs = h == Int32.min ? 0 : (h < 0 ? -h : h)
        return abs % max(1, partitions)
    }

    // MARK: leadership of __consumer_offsets

    /// Called after each metadata image: loads partitions this broker now leads, unloads
    /// the ones it no longer leads.
    public func onLeadershipChange() {
        loop.execute { self.syncOwnership() }
    }

    private func syncOwnership() {
        var leading: [Int32: Int32] = [:]
        for pid in 0..<config.offsetsTopicPartitions {
            if let p = rm.partition(TopicPartition(Self.topic, pid)) {
                let st = p.state
                if st.isLeader { leading[pid] = st.leaderEpoch }
            }
        }
        for (pid, epoch) in owned where leading[pid] != epoch {
            unload(pid)
        }
        for (pid, epoch) in leading.sorted(by: { $0.key < $1.key }) where owned[pid] != epoch {
            load(pid, epoch: epoch)
        }
    }

    private func unload(_ pid: Int32) {
        owned[pid] = nil
        for (id, g) in groups where partition(for: id) == pid {
            for m in g.members.values {
                m.awaitingJoin?(joinError(.notCoordinator, memberId: m.memberId))
                m.awaitingJoin = nil
                m.awaitingSync?(syncError(.notCoordinator))
                m.awaitingSync = nil
            }
            groups[id] = nil
        }
        logger.info("unloaded consumer groups", metadata: ["partition": "\(Self.topic)-\(pid)"])
    }

    /// Replays the partition's records (group metadata, offsets, tombstones) into memory.
    private func load(_ pid: Int32, epoch: Int32) {
        guard let p = rm.partition(TopicPartition(Self.topic, pid)) else { return }
        for (id, _) in groups where partition(for: id) == pid { groups[id] = nil }
        let log = p.log
        var offset = log.logStartOffset
        let end = log.logEndOffset
        var loadedGroups = 0
        do {
            while offset < end {
                let bytes = try log.readBytes(from: offset, maxBytes: 1 << 20)
                if bytes.readableBytes == 0 { break }
                var progressed = false
                for item in RecordBatchReader(bytes) {
                    guard case let .batch(batch, _) = item else { break }
                    if batch.lastOffset < offset { continue }
                    if !batch.isControl {
                        try batch.forEachRecord { r in
                            if replayRecord(key: r.key, value: r.value) { loadedGroups += 1 }
                        }
                    }
                    offset = batch.lastOffset + 1
                    progressed = true
                }
                if !progressed { break }
            }
        } catch {
            logger.error("cannot load consumer groups", metadata: ["partition": "\(Self.topic)-\(pid)", "error": "\(error)"])
        }
        owned[pid] = epoch
        logger.info("loaded consumer groups", metadata: ["partition": "\(Self.topic)-\(pid)", "groups": "\(groups.keys.filter { partition(for: $0) == pid }.count)", "leaderEpoch": "\(epoch)"])
    }

    /// Applies one `__consumer_offsets` record; returns whether it was group metadata.
    @discardableResult
    func replayRecord(key: ByteBuffer?, value: ByteBuffer?) -> Bool {
        guard var k = key, let version = k.readInteger(as: Int16.self) else { return false }
        switch version {
        case 0, 1:
            guard let ok = try? OffsetCommitKey(from: &k, version: version) else { return false }
            let tp = TopicPartitionKey(topic: ok.topic, partition: ok.partition)
            guard var v = value, let vv = v.readInteger(as: Int16.self), let ov = try? OffsetCommitValue(from: &v, version: vv) else {
                groups[ok.group]?.offsets[tp] = nil
                return false
            }
            let g = groups[ok.group] ?? ConsumerGroup(groupId: ok.group)
            groups[ok.group] = g
            g.offsets[tp] = CommittedOffset(offset: ov.offset, leaderEpoch: ov.leaderEpoch, metadata: ov.metadata,
                                            commitTimestamp: ov.commitTimestamp, expireTimestamp: ov.expireTimestamp)
            return false
        case 2:
            guard let gk = try? GroupMetadataKey(from: &k, version: version) else { return false }
            guard var v = value, let vv = v.readInteger(as: Int16.self), let gv = try? GroupMetadataValue(from: &v, version: vv) else {
                groups[gk.group] = nil
                return true
            }
            let g = groups[gk.group] ?? ConsumerGroup(groupId: gk.group)
            groups[gk.group] = g
            g.generationId = gv.generation
            g.protocolType = gv.protocolType.isEmpty ? nil : gv.protocolType
            g.protocolName = gv.protocol
            g.leaderId = gv.leader
            g.stateTimestampMs = gv.currentStateTimestamp
            // Members come back as they were at the last completed rebalance (Stable), with
            // fresh sessions: they keep consuming and committing with their generation, and
            // the ones that are gone expire after their session timeout, as in Kafka.
            let now = clock()
            g.members = [:]
            g.staticMembers = [:]
            for mm in gv.members {
                let m = GroupMember(memberId: mm.memberId, groupInstanceId: mm.groupInstanceId, clientId: mm.clientId,
                                    clientHost: mm.clientHost, sessionTimeoutMs: mm.sessionTimeout,
                                    rebalanceTimeoutMs: mm.rebalanceTimeout < 0 ? mm.sessionTimeout : mm.rebalanceTimeout,
                                    protocolType: gv.protocolType, protocols: [(name: gv.protocol ?? "", metadata: mm.subscription)], nowMs: now)
                m.assignment = mm.assignment
                g.members[mm.memberId] = m
                if let i = mm.groupInstanceId { g.staticMembers[i] = mm.memberId }
            }
            g.phase = g.members.isEmpty ? .empty : .stable
            g.subscribedTopics = Self.subscribedTopics(g)
            return true
        default:
            return false
        }
    }

    // MARK: writes

    /// Appends records to the group's `__consumer_offsets` partition with acks=all.
    func append(_ groupId: String, _ records: [(key: ByteBuffer, value: ByteBuffer?)]) -> EventLoopFuture<ErrorCode> {
        let pid = partition(for: groupId)
        var b = RecordBatchBuilder()
        let now = clock()
        for r in records { b.append(key: r.key, value: r.value, timestamp: now) }
        let batch: RecordBatch
        do {
            batch = try b.build()
        } catch {
            return loop.makeSucceededFuture(.unknownServerError)
        }
        var req = ProduceRequest()
        req.acks = -1
        req.timeoutMs = config.commitTimeoutMs
        var t = ProduceRequest.TopicProduceData()
        t.name = Self.topic
        var pd = ProduceRequest.PartitionProduceData()
        pd.index = pid
        pd.records = batch.buffer
        t.partitionData = [pd]
        req.topicData = [t]
        return rm.produce(req, version: 9, on: loop, origin: .coordinator).map { resp in
            let code = resp?.responses.first?.partitionResponses.first?.errorCode ?? ErrorCode.unknownServerError.rawValue
            switch ErrorCode(rawValue: code) ?? .unknownServerError {
            case .noError: return .noError
            // Kafka's mapping of append errors for group writes.
            case .unknownTopicOrPartition, .notEnoughReplicas, .notEnoughReplicasAfterAppend, .requestTimedOut:
                return .coordinatorNotAvailable
            case .notLeaderOrFollower, .kafkaStorageError:
                return .notCoordinator
            case .messageTooLarge, .recordListTooLarge, .invalidFetchSize:
                return .unknownServerError
            case let other: return other
            }
        }
    }

    static func offsetRecord(group: String, tp: TopicPartitionKey, value o: CommittedOffset?) throws -> (key: ByteBuffer, value: ByteBuffer?) {
        var key = ByteBuffer()
        key.writeInteger(Int16(1))
        var k = OffsetCommitKey()
        k.group = group
        k.topic = tp.topic
        k.partition = tp.partition
        try k.encode(to: &key, version: 1)
        guard let o else { return (key, nil) }
        // Value v1 is the only one with an expire timestamp (a commit with its own
        // retention, OffsetCommit v2-v4), as Kafka writes it; v3 otherwise.
        let valueVersion: Int16 = o.expireTimestamp >= 0 ? 1 : 3
        var value = ByteBuffer()
        value.writeInteger(valueVersion)
        var v = OffsetCommitValue()
        v.offset = o.offset
        v.leaderEpoch = valueVersion >= 3 ? o.leaderEpoch : -1
        v.metadata = o.metadata
        v.commitTimestamp = o.commitTimestamp
        v.expireTimestamp = o.expireTimestamp
        try v.encode(to: &value, version: valueVersion)
        return (key, value)
    }

    static func groupRecord(_ g: ConsumerGroup, nowMs: Int64, tombstone: Bool = false) throws -> (key: ByteBuffer, value: ByteBuffer?) {
        var key = ByteBuffer()
        key.writeInteger(Int16(2))
        var k = GroupMetadataKey()
        k.group = g.groupId
        try k.encode(to: &key, version: 2)
        if tombstone { return (key, nil) }
        var value = ByteBuffer()
        value.writeInteger(Int16(3))
        var v = GroupMetadataValue()
        v.protocolType = g.protocolType ?? ""
        v.generation = g.generationId
        v.protocol = g.protocolName
        v.leader = g.leaderId
        v.currentStateTimestamp = nowMs
        v.members = g.members.values.sorted { $0.memberId < $1.memberId }.map { m in
            var mm = GroupMetadataValue.MemberMetadata()
            mm.memberId = m.memberId
            mm.groupInstanceId = m.groupInstanceId
            mm.clientId = m.clientId
            mm.clientHost = m.clientHost
            mm.rebalanceTimeout = m.rebalanceTimeoutMs
            mm.sessionTimeout = m.sessionTimeoutMs
            mm.subscription = g.protocolName.map { m.metadata(for: $0) } ?? ByteBuffer()
            mm.assignment = m.assignment
            return mm
        }
        try v.encode(to: &value, version: 3)
        return (key, value)
    }

    /// The topics a consumer group's members subscribe to (their ConsumerProtocolSubscription
    /// for the chosen protocol); nil when that cannot be known.
    static func subscribedTopics(_ g: ConsumerGroup) -> Set<String>? {
        guard g.isConsumerGroup, let proto = g.protocolName else { return nil }
        var topics = Set<String>()
        for m in g.members.values {
            var b = m.metadata(for: proto)
            guard let v: Int16 = b.readInteger(),
                  let sub = try? ConsumerProtocolSubscription(from: &b, version: min(max(v, 0), 3)) else { return nil }
            topics.formUnion(sub.topics)
        }
        return topics
    }

    /// The partitions of a ConsumerProtocolAssignment (empty if it cannot be read).
    static func partitions(ofAssignment assignment: ByteBuffer) -> Set<TopicPartitionKey> {
        var b = assignment
        guard let v: Int16 = b.readInteger(), let a = try? ConsumerProtocolAssignment(from: &b, version: min(max(v, 0), 3)) else { return [] }
        var out = Set<TopicPartitionKey>()
        for t in a.assignedPartitions { for p in t.partitions { out.insert(TopicPartitionKey(topic: t.topic, partition: p)) } }
        return out
    }

    // MARK: coordinator checks

    /// NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS / INVALID_GROUP_ID, or nil when this
    /// broker serves the group. As Kafka, the offset and admin APIs (OffsetCommit,
    /// OffsetFetch, DescribeGroups, DeleteGroups) take the empty group id (`allowEmpty`);
    /// the group-membership ones refuse it.
    func check(_ groupId: String, allowEmpty: Bool = false) -> ErrorCode? {
        if groupId.isEmpty && !allowEmpty { return .invalidGroupId }
        let pid = partition(for: groupId)
        // Cut off from the controllers for a session: another broker may coordinate the
        // group by now (see ReplicaManager.sessionIsCurrent).
        if !rm.sessionIsCurrent() { return .notCoordinator }
        if owned[pid] != nil { return nil }
        if let p = rm.partition(TopicPartition(Self.topic, pid)), p.isLeader { return .coordinatorLoadInProgress }
        return .notCoordinator
    }

    func joinError(_ code: ErrorCode, memberId: String = "") -> JoinGroupResponse {
        var r = JoinGroupResponse()
        r.errorCode = code.rawValue
        r.memberId = memberId
        r.generationId = -1
        r.protocolName = ""
        return r
    }

    func syncError(_ code: ErrorCode) -> SyncGroupResponse {
        var r = SyncGroupResponse()
        r.errorCode = code.rawValue
        return r
    }
}
