import FjordMetadata
import FjordProtocol
import FjordStorage
import NIOCore

extension GroupCoordinator {
    // MARK: FindCoordinator

    /// The coordinator of each key: the leader of its `__consumer_offsets` partition, at its
    /// endpoint on `listener`. Creates the topic on first use (through the controller).
    public func findCoordinator(_ r: FindCoordinatorRequest, version: Int16, listener: String) -> EventLoopFuture<FindCoordinatorResponse> {
        let keys = version >= 4 ? r.coordinatorKeys : [r.key]
        let image = rm.currentImage
        var results: [(key: String, node: Int32, host: String, port: Int32, error: ErrorCode, message: String?)] = []
        var needTopic = false
        for key in keys {
            if r.keyType != 0 {
                results.append((key, -1, "", -1, .invalidRequest, "Transaction coordinators are not supported yet"))
                continue
            }
            guard let topic = image.topics[Self.topic] else {
                needTopic = true
                results.append((key, -1, "", -1, .coordinatorNotAvailable, "The coordinator is not available."))
                continue
            }
            let pid = partition(for: key)
            guard let p = topic.partitions[pid], p.leader >= 0, let b = image.brokers[p.leader], !b.fenced,
                  let e = b.endpoints.first(where: { $0.name == listener }) ?? b.endpoints.first else {
                results.append((key, -1, "", -1, .coordinatorNotAvailable, "The coordinator is not available."))
                continue
            }
            results.append((key, p.leader, e.host, Int32(e.port), .noError, nil))
        }
        if needTopic { createOffsetsTopic(image) }
        var resp = FindCoordinatorResponse()
        if version >= 4 {
            resp.coordinators = results.map { x in
                var c = FindCoordinatorResponse.Coordinator()
                c.key = x.key
                c.nodeId = x.node
                c.host = x.host
                c.port = x.port
                c.errorCode = x.error.rawValue
                c.errorMessage = x.message
                return c
            }
        } else if let x = results.first {
            resp.nodeId = x.node
            resp.host = x.host
            resp.port = x.port
            resp.errorCode = x.error.rawValue
            resp.errorMessage = version >= 1 ? x.message : nil
        }
        return loop.makeSucceededFuture(resp)
    }

    private func createOffsetsTopic(_ image: MetadataImage) {
        let live = Int16(clamping: image.brokers.values.filter { !$0.fenced }.count)
        guard live > 0 else { return }
        var t = CreateTopicsRequest.CreatableTopic()
        t.name = Self.topic
        t.numPartitions = config.offsetsTopicPartitions
        t.replicationFactor = min(config.offsetsTopicReplicationFactor, live)
        t.configs = [("cleanup.policy", "compact"), ("compression.type", "producer"), ("segment.bytes", "\(config.offsetsTopicSegmentBytes)")].map { k, v in
            var c = CreateTopicsRequest.CreatableTopicConfig()
            c.name = k
            c.value = v
            return c
        }
        var req = CreateTopicsRequest()
        req.topics = [t]
        req.timeoutMs = 30_000
        logger.info("creating the offsets topic", metadata: ["partitions": "\(t.numPartitions)", "replicationFactor": "\(t.replicationFactor)"])
        _ = rm.transport.sendToController(req, version: 7)
    }

    // MARK: OffsetCommit / OffsetFetch

    public func offsetCommit(_ r: OffsetCommitRequest, version: Int16) -> EventLoopFuture<OffsetCommitResponse> {
        loop.flatSubmit {
            var resp = OffsetCommitResponse()
            func all(_ e: ErrorCode) -> OffsetCommitResponse {
                var x = OffsetCommitResponse()
                x.topics = r.topics.map { t in
                    var rt = OffsetCommitResponse.OffsetCommitResponseTopic()
                    rt.name = t.name
                    rt.partitions = t.partitions.map { p in
                        var rp = OffsetCommitResponse.OffsetCommitResponsePartition()
                        rp.partitionIndex = p.partitionIndex
                        rp.errorCode = e.rawValue
                        return rp
                    }
                    return rt
                }
                return x
            }
            if let e = self.check(r.groupId, allowEmpty: true) { return self.loop.makeSucceededFuture(all(e)) }
            var g = self.groups[r.groupId]
            let generation = version >= 1 ? r.generationIdOrMemberEpoch : -1
            let instance = version >= 7 ? r.groupInstanceId : nil
            // Kafka's checks, in Kafka's order: the member and its generation first; then a
            // valid member of the generation being formed is told to finish the rebalance
            // (REBALANCE_IN_PROGRESS between JoinGroup and SyncGroup). Commits with the
            // current generation are fine while others (re)join (PreparingRebalance), as
            // cooperative rebalancing needs.
            if let gg = g {
                if gg.phase == .dead { return self.loop.makeSucceededFuture(all(.coordinatorNotAvailable)) }
                if generation >= 0 || !r.memberId.isEmpty || instance != nil {
                    if gg.isStaticMemberFenced(instance, r.memberId) { return self.loop.makeSucceededFuture(all(.fencedInstanceId)) }
                    guard let m = gg.members[r.memberId] else { return self.loop.makeSucceededFuture(all(.unknownMemberId)) }
                    // While the next generation's assignment is being computed nobody has it
                    // yet: every partition still belongs to its previous owner, who keeps
                    // consuming it (cooperative rebalancing) and may have sent this commit
                    // just behind its JoinGroup, with the old generation or the new one.
                    // Kafka refuses it (ILLEGAL_GENERATION / REBALANCE_IN_PROGRESS) and the
                    // client's commit fails; Fjord takes it when every partition in it was the
                    // member's in the previous generation, which is exactly as safe as the
                    // same commit a moment earlier, in PreparingRebalance.
                    let ownPrevious = gg.phase == .completingRebalance && (generation == gg.generationId || generation == gg.generationId - 1)
                        && !m.previousPartitions.isEmpty
                        && r.topics.allSatisfy { t in t.partitions.allSatisfy { m.previousPartitions.contains(TopicPartitionKey(topic: t.name, partition: $0.partitionIndex)) } }
                    if !ownPrevious {
                        if generation != gg.generationId { return self.loop.makeSucceededFuture(all(.illegalGeneration)) }
                        if gg.phase == .completingRebalance { return self.loop.makeSucceededFuture(all(.rebalanceInProgress)) }
                    }
                    m.lastHeartbeatMs = self.clock()
                } else if gg.phase != .empty {
                    // Without a member id only a group with no members takes commits
                    // (assign()-based consumers, tools).
                    return self.loop.makeSucceededFuture(all(.unknownMemberId))
                }
            } else if generation >= 0 {
                // No such group here, yet a generation: a commit from an older generation.
                return self.loop.makeSucceededFuture(all(.illegalGeneration))
            }
            if g == nil {
                g = ConsumerGroup(groupId: r.groupId)
                self.groups[r.groupId] = g
            }
            guard let group = g else { return self.loop.makeSucceededFuture(all(.unknownServerError)) }
            let now = self.clock()
            // OffsetCommit v2-v4 may carry a retention of their own (-1: the broker's
            // offsets.retention.minutes); such an offset expires at commit time + retention.
            let expireAt: Int64 = (2...4).contains(version) && r.retentionTimeMs >= 0 ? now + r.retentionTimeMs : -1
            var records: [(key: ByteBuffer, value: ByteBuffer?)] = []
            var pending: [(TopicPartitionKey, CommittedOffset)] = []
            resp.topics = r.topics.map { t in
                var rt = OffsetCommitResponse.OffsetCommitResponseTopic()
                rt.name = t.name
                rt.partitions = t.partitions.map { p in
                    var rp = OffsetCommitResponse.OffsetCommitResponsePartition()
                    rp.partitionIndex = p.partitionIndex
                    let meta = p.committedMetadata ?? ""
                    if meta.utf8.count > self.config.offsetMetadataMaxBytes {
                        rp.errorCode = ErrorCode.offsetMetadataTooLarge.rawValue
                        return rp
                    }
                    let tp = TopicPartitionKey(topic: t.name, partition: p.partitionIndex)
                    let o = CommittedOffset(offset: p.committedOffset, leaderEpoch: version >= 6 ? p.committedLeaderEpoch : -1,
                                            metadata: meta, commitTimestamp: now, expireTimestamp: expireAt)
                    if let rec = try? Self.offsetRecord(group: r.groupId, tp: tp, value: o) {
                        records.append(rec)
                        pending.append((tp, o))
                    } else {
                        rp.errorCode = ErrorCode.unknownServerError.rawValue
                    }
                    return rp
                }
                return rt
            }
            if records.isEmpty { return self.loop.makeSucceededFuture(resp) }
            return self.append(r.groupId, records).map { code in
                if code == .noError {
                    for (tp, o) in pending { group.offsets[tp] = o }
                    return resp
                }
                var failed = resp
                for ti in failed.topics.indices {
                    for pi in failed.topics[ti].partitions.indices where failed.topics[ti].partitions[pi].errorCode == 0 {
                        failed.topics[ti].partitions[pi].errorCode = code.rawValue
                    }
                }
                return failed
            }
        }
    }

    public func offsetFetch(_ r: OffsetFetchRequest, version: Int16) -> EventLoopFuture<OffsetFetchResponse> {
        loop.submit {
            var resp = OffsetFetchResponse()
            func fetch(_ groupId: String, _ topics: [(String, [Int32])]?) -> (ErrorCode, [(String, [(Int32, CommittedOffset?)])]) {
                if let e = self.check(groupId, allowEmpty: true) {
                    // As Kafka: v0/v1 have no top-level error, so the requested partitions come
                    // back each carrying it (an empty answer reads as "nothing committed");
                    // from v2 the top-level error alone.
                    guard version < 2 else { return (e, []) }
                    return (e, (topics ?? []).map { name, parts in (name, parts.map { ($0, nil) }) })
                }
                let g = self.groups[groupId]
                if let topics {
                    return (.noError, topics.map { name, parts in (name, parts.map { ($0, g?.offsets[TopicPartitionKey(topic: name, partition: $0)]) }) })
                }
                var byTopic: [String: [(Int32, CommittedOffset?)]] = [:]
                for (tp, o) in (g?.offsets ?? [:]).sorted(by: { $0.key < $1.key }) { byTopic[tp.topic, default: []].append((tp.partition, o)) }
                return (.noError, byTopic.keys.sorted().map { ($0, byTopic[$0]!) })
            }
            if version >= 8 {
                resp.groups = r.groups.map { rg in
                    let (e, topics) = fetch(rg.groupId, rg.topics.map { $0.map { ($0.name, $0.partitionIndexes) } })
                    var og = OffsetFetchResponse.OffsetFetchResponseGroup()
                    og.groupId = rg.groupId
                    og.errorCode = e.rawValue
                    og.topics = topics.map { name, parts in
                        var t = OffsetFetchResponse.OffsetFetchResponseTopics()
                        t.name = name
                        t.partitions = parts.map { pid, o in
                            var p = OffsetFetchResponse.OffsetFetchResponsePartitions()
                            p.partitionIndex = pid
                            p.committedOffset = o?.offset ?? -1
                            p.committedLeaderEpoch = o?.leaderEpoch ?? -1
                            p.metadata = o?.metadata ?? ""
                            return p
                        }
                        return t
                    }
                    return og
                }
            } else {
                let (e, topics) = fetch(r.groupId, r.topics.map { $0.map { ($0.name, $0.partitionIndexes) } })
                if version >= 2 { resp.errorCode = e.rawValue }
                resp.topics = topics.map { name, parts in
                    var t = OffsetFetchResponse.OffsetFetchResponseTopic()
                    t.name = name
                    t.partitions = parts.map { pid, o in
                        var p = OffsetFetchResponse.OffsetFetchResponsePartition()
                        p.partitionIndex = pid
                        p.committedOffset = o?.offset ?? -1
                        p.committedLeaderEpoch = version >= 5 ? (o?.leaderEpoch ?? -1) : -1
                        p.metadata = o?.metadata ?? ""
                        if version < 2, e != .noError { p.errorCode = e.rawValue }
                        return p
                    }
                    return t
                }
            }
            return resp
        }
    }

    // MARK: admin

    public func listGroups(_ r: ListGroupsRequest, version: Int16) -> EventLoopFuture<ListGroupsResponse> {
        loop.submit {
            var resp = ListGroupsResponse()
            let filter = Set(r.statesFilter.map { $0.lowercased() })
            resp.groups = self.groups.values.filter { g in
                self.owned[self.partition(for: g.groupId)] != nil && (g.protocolType != nil || !g.offsets.isEmpty)
                    && (filter.isEmpty || filter.contains(g.phase.rawValue.lowercased()))
            }.sorted { $0.groupId < $1.groupId }.map { g in
                var x = ListGroupsResponse.ListedGroup()
                x.groupId = g.groupId
                x.protocolType = g.protocolType ?? ""
                if version >= 4 { x.groupState = g.phase.rawValue }
                if version >= 5 { x.groupType = "classic" }
                return x
            }
            return resp
        }
    }

    public func describeGroups(_ r: DescribeGroupsRequest, version: Int16) -> EventLoopFuture<DescribeGroupsResponse> {
        loop.submit {
            var resp = DescribeGroupsResponse()
            resp.groups = r.groups.map { id in
                var d = DescribeGroupsResponse.DescribedGroup()
                d.groupId = id
                if let e = self.check(id, allowEmpty: true) {
                    d.errorCode = e.rawValue
                    return d
                }
                guard let g = self.groups[id] else {
                    d.groupState = GroupPhase.dead.rawValue
                    return d
                }
                d.groupState = g.phase.rawValue
                d.protocolType = g.protocolType ?? ""
                // As Kafka's group summary: the protocol, member metadata and assignments only
                // for a Stable group.
                d.protocolData = g.phase == .stable ? (g.protocolName ?? "") : ""
                d.members = g.members.values.sorted { $0.memberId < $1.memberId }.map { m in
                    var dm = DescribeGroupsResponse.DescribedGroupMember()
                    dm.memberId = m.memberId
                    dm.groupInstanceId = version >= 4 ? m.groupInstanceId : nil
                    dm.clientId = m.clientId
                    dm.clientHost = m.clientHost
                    if g.phase == .stable, let proto = g.protocolName {
                        dm.memberMetadata = m.metadata(for: proto)
                        dm.memberAssignment = m.assignment
                    }
                    return dm
                }
                return d
            }
            return resp
        }
    }

    public func deleteGroups(_ r: DeleteGroupsRequest) -> EventLoopFuture<DeleteGroupsResponse> {
        loop.flatSubmit {
            var futures: [EventLoopFuture<DeleteGroupsResponse.DeletableGroupResult>] = []
            for id in r.groupsNames {
                var res = DeleteGroupsResponse.DeletableGroupResult()
                res.groupId = id
                if let e = self.check(id, allowEmpty: true) {
                    res.errorCode = e.rawValue
                    futures.append(self.loop.makeSucceededFuture(res))
                    continue
                }
                guard let g = self.groups[id], g.phase != .dead else {
                    res.errorCode = ErrorCode.groupIdNotFound.rawValue
                    futures.append(self.loop.makeSucceededFuture(res))
                    continue
                }
                guard g.members.isEmpty else {
                    res.errorCode = ErrorCode.nonEmptyGroup.rawValue
                    futures.append(self.loop.makeSucceededFuture(res))
                    continue
                }
                var records: [(key: ByteBuffer, value: ByteBuffer?)] = []
                for tp in g.offsets.keys.sorted() {
                    if let rec = try? Self.offsetRecord(group: id, tp: tp, value: nil) { records.append(rec) }
                }
                if let rec = try? Self.groupRecord(g, nowMs: self.clock(), tombstone: true) { records.append(rec) }
                g.phase = .dead
                futures.append(self.append(id, records).map { code in
                    if code == .noError { self.groups[id] = nil } else { g.phase = .empty }
                    var x = res
                    x.errorCode = code.rawValue
                    return x
                })
            }
            return EventLoopFuture.whenAllSucceed(futures, on: self.loop).map { results in
                var resp = DeleteGroupsResponse()
                resp.results = results
                return resp
            }
        }
    }

    public func offsetDelete(_ r: OffsetDeleteRequest) -> EventLoopFuture<OffsetDeleteResponse> {
        loop.flatSubmit {
            var resp = OffsetDeleteResponse()
            if let e = self.check(r.groupId) {
                resp.errorCode = e.rawValue
                return self.loop.makeSucceededFuture(resp)
            }
            guard let g = self.groups[r.groupId] else {
                resp.errorCode = ErrorCode.groupIdNotFound.rawValue
                return self.loop.makeSucceededFuture(resp)
            }
            // A group with members: only a consumer group's offsets of topics no member
            // subscribes to may go (Kafka: GROUP_SUBSCRIBED_TO_TOPIC, else NON_EMPTY_GROUP).
            if g.phase == .dead {
                resp.errorCode = ErrorCode.groupIdNotFound.rawValue
                return self.loop.makeSucceededFuture(resp)
            }
            if g.phase != .empty && !g.isConsumerGroup {
                resp.errorCode = ErrorCode.nonEmptyGroup.rawValue
                return self.loop.makeSucceededFuture(resp)
            }
            let subscribed = Set(r.topics.map(\.name).filter { g.phase != .empty && g.isSubscribed(to: $0) })
            var records: [(key: ByteBuffer, value: ByteBuffer?)] = []
            var removed: [TopicPartitionKey] = []
            resp.topics = r.topics.map { t in
                var rt = OffsetDeleteResponse.OffsetDeleteResponseTopic()
                rt.name = t.name
                rt.partitions = t.partitions.map { p in
                    var rp = OffsetDeleteResponse.OffsetDeleteResponsePartition()
                    rp.partitionIndex = p.partitionIndex
                    if subscribed.contains(t.name) {
                        rp.errorCode = ErrorCode.groupSubscribedToTopic.rawValue
                        return rp
                    }
                    let tp = TopicPartitionKey(topic: t.name, partition: p.partitionIndex)
                    if g.offsets[tp] != nil, let rec = try? Self.offsetRecord(group: r.groupId, tp: tp, value: nil) {
                        records.append(rec)
                        removed.append(tp)
                    }
                    return rp
                }
                return rt
            }
            if records.isEmpty { return self.loop.makeSucceededFuture(resp) }
            return self.append(r.groupId, records).map { code in
                if code == .noError { for tp in removed { g.offsets[tp] = nil } } else { resp.errorCode = code.rawValue }
                return resp
            }
        }
    }

    // MARK: expiry

    /// Deletes expired committed offsets (Kafka's offset expiration, KIP-211): a group with
    /// members keeps them all; an empty group's expire `offsets.retention.minutes` after it
    /// became empty; offsets committed outside any group (no protocol type) expire that long
    /// after their commit; a commit that set its own expire timestamp (OffsetCommit v1)
    /// expires then. Tombstones go to `__consumer_offsets`; an empty group left with no
    /// offsets is deleted too (it becomes Dead).
    func expireOffsets(nowMs: Int64) {
        let retention = config.offsetsRetentionMs
        for g in groups.values.sorted(by: { $0.groupId < $1.groupId }) {
            // Which offsets may expire (Kafka's removeExpiredOffsets, KIP-496): all of an
            // empty group's; in a stable consumer group those of topics no member subscribes
            // to, counted from their commit.
            let stableConsumers = g.phase == .stable && g.isConsumerGroup && g.subscribedTopics != nil
            guard (g.isEmpty && g.phase == .empty) || stableConsumers else { continue }
            var expired: [TopicPartitionKey] = []
            for (tp, o) in g.offsets {
                if stableConsumers {
                    if g.isSubscribed(to: tp.topic) { continue }
                    let deadline = o.expireTimestamp >= 0 ? o.expireTimestamp : o.commitTimestamp + retention
                    if nowMs >= deadline { expired.append(tp) }
                    continue
                }
                let base: Int64
                if o.expireTimestamp >= 0 {
                    if nowMs >= o.expireTimestamp { expired.append(tp) }
                    continue
                } else if g.protocolType != nil && g.stateTimestampMs >= 0 {
                    base = g.stateTimestampMs
                } else {
                    base = o.commitTimestamp
                }
                if nowMs - base >= retention { expired.append(tp) }
            }
            guard !expired.isEmpty else { continue }
            var records: [(key: ByteBuffer, value: ByteBuffer?)] = []
            for tp in expired.sorted(by: { ($0.topic, $0.partition) < ($1.topic, $1.partition) }) {
                if let rec = try? Self.offsetRecord(group: g.groupId, tp: tp, value: nil) { records.append(rec) }
            }
            let deleteGroup = !stableConsumers && expired.count == g.offsets.count
            if deleteGroup, let rec = try? Self.groupRecord(g, nowMs: nowMs, tombstone: true) { records.append(rec) }
            let groupId = g.groupId
            logger.info("expiring committed offsets", metadata: ["group": "\(groupId)", "partitions": "\(expired.count)",
                                                                 "groupDeleted": "\(deleteGroup)"])
            append(groupId, records).whenSuccess { code in
                guard code == .noError, let g = self.groups[groupId] else { return }
                for tp in expired where g.isEmpty || !g.isSubscribed(to: tp.topic) { g.offsets[tp] = nil }
                if deleteGroup && g.offsets.isEmpty { self.groups[groupId] = nil }
            }
        }
    }
}
