import FjordProtocol
import FjordWire
import NIOCore

extension GroupCoordinator {
    // MARK: JoinGroup

    public func joinGroup(_ r: JoinGroupRequest, version: Int16, clientId: String, clientHost: String) -> EventLoopFuture<JoinGroupResponse> {
        let promise = loop.makePromise(of: JoinGroupResponse.self)
        loop.execute { self.join(r, version: version, clientId: clientId, clientHost: clientHost) { promise.succeed($0) } }
        return promise.futureResult
    }

    private func join(_ r: JoinGroupRequest, version: Int16, clientId: String, clientHost: String, respond: @escaping (JoinGroupResponse) -> Void) {
        let now = clock()
        if let e = check(r.groupId) { return respond(joinError(e, memberId: r.memberId)) }
        if r.sessionTimeoutMs < config.minSessionTimeoutMs || r.sessionTimeoutMs > config.maxSessionTimeoutMs {
            return respond(joinError(.invalidSessionTimeout, memberId: r.memberId))
        }
        if r.protocolType.isEmpty || r.protocols.isEmpty { return respond(joinError(.inconsistentGroupProtocol, memberId: r.memberId)) }
        var group = groups[r.groupId]
        if group == nil {
            guard r.memberId.isEmpty else { return respond(joinError(.unknownMemberId, memberId: r.memberId)) }
            group = ConsumerGroup(groupId: r.groupId)
            groups[r.groupId] = group
        }
        guard let g = group else { return }
        if g.phase == .dead { return respond(joinError(.coordinatorNotAvailable, memberId: r.memberId)) }
        if !g.supports(protocolType: r.protocolType, protocols: r.protocols.map(\.name)) {
            return respond(joinError(.inconsistentGroupProtocol, memberId: r.memberId))
        }
        let rebalanceTimeout = version >= 1 ? r.rebalanceTimeoutMs : r.sessionTimeoutMs
        let protocols = r.protocols.map { (name: $0.name, metadata: $0.metadata) }
        var memberId = r.memberId
        if memberId.isEmpty {
            let fresh = "\(clientId)-\(KafkaUUID.random().description)"
            if let instance = r.groupInstanceId, let old = g.staticMembers[instance], let oldMember = g.members[old] {
                // A static member restarting: it replaces its old incarnation (KIP-345).
                oldMember.awaitingJoin?(joinError(.fencedInstanceId, memberId: old))
                oldMember.awaitingSync?(syncError(.fencedInstanceId))
                g.members[old] = nil
                if g.leaderId == old { g.leaderId = fresh }
            } else if r.groupInstanceId == nil, version >= 4 {
                // KIP-394: hand out the member id first; the member joins with it.
                g.pendingMembers.insert(fresh)
                return respond(joinError(.memberIdRequired, memberId: fresh))
            }
            memberId = fresh
        } else if g.pendingMembers.contains(memberId) {
            g.pendingMembers.remove(memberId)
        } else if g.members[memberId] == nil {
            return respond(joinError(.unknownMemberId, memberId: memberId))
        }
        if g.members[memberId] == nil, Int32(g.members.count) >= config.maxSize {
            return respond(joinError(.groupMaxSizeReached, memberId: memberId))
        }
        let m: GroupMember
        if let existing = g.members[memberId] {
            m = existing
            m.protocols = protocols
            m.sessionTimeoutMs = r.sessionTimeoutMs
            m.rebalanceTimeoutMs = rebalanceTimeout
            m.lastHeartbeatMs = now
            // A stable group whose member rejoins with the same subscription and is not
            // the leader: answer with the current generation (no rebalance).
            if g.phase == .stable, g.leaderId != memberId, let proto = g.protocolName,
               m.awaitingJoin == nil, existing.metadata(for: proto) == protocols.first(where: { $0.name == proto })?.metadata {
                respond(joinResponse(g, for: m, version: version))
                return
            }
        } else {
            m = GroupMember(memberId: memberId, groupInstanceId: r.groupInstanceId, clientId: clientId, clientHost: clientHost,
                            sessionTimeoutMs: r.sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeout, protocolType: r.protocolType,
                            protocols: protocols, nowMs: now)
            g.members[memberId] = m
            if let instance = r.groupInstanceId { g.staticMembers[instance] = memberId }
            if g.protocolType == nil { g.protocolType = r.protocolType }
        }
        if let previous = m.awaitingJoin { previous(joinError(.unknownMemberId, memberId: memberId)) }
        m.awaitingJoin = respond
        m.joinVersion = version
        if g.phase != .preparingRebalance { prepareRebalance(g, nowMs: now, reason: "member \(memberId) joined or rejoined") }
        maybeCompleteJoin(g, nowMs: now)
    }

    func prepareRebalance(_ g: ConsumerGroup, nowMs: Int64, reason: String) {
        logger.info("preparing to rebalance group", metadata: ["group": "\(g.groupId)", "state": "\(g.phase)",
                                                               "oldGeneration": "\(g.generationId)", "reason": "\(reason)"])
        if g.phase == .completingRebalance {
            for m in g.members.values {
                m.awaitingSync?(syncError(.rebalanceInProgress))
                m.awaitingSync = nil
            }
        }
        let wasEmpty = g.phase == .empty
        g.phase = .preparingRebalance
        g.joinDeadlineMs = nowMs + max(g.rebalanceTimeoutMs, 1)
        g.initialDelayUntilMs = wasEmpty ? nowMs + min(config.initialRebalanceDelayMs, max(g.rebalanceTimeoutMs, 1)) : 0
    }

    func maybeCompleteJoin(_ g: ConsumerGroup, nowMs: Int64) {
        guard g.phase == .preparingRebalance else { return }
        let ready = g.allMembersJoined && nowMs >= g.initialDelayUntilMs
        guard ready || nowMs >= g.joinDeadlineMs else { return }
        // Members that did not rejoin in time leave the group.
        for (id, m) in g.members where m.awaitingJoin == nil {
            g.members[id] = nil
            if let i = m.groupInstanceId { g.staticMembers[i] = nil }
        }
        g.pendingMembers = []
        g.generationId += 1
        g.stateTimestampMs = nowMs
        if g.members.isEmpty {
            g.phase = .empty
            g.protocolName = nil
            g.leaderId = nil
            persistGroup(g, nowMs: nowMs)
            return
        }
        g.protocolName = g.selectProtocol()
        if g.leaderId == nil || g.members[g.leaderId!] == nil {
            g.leaderId = g.members.keys.sorted().first
        }
        g.phase = .completingRebalance
        logger.info("stabilized group", metadata: ["group": "\(g.groupId)", "generation": "\(g.generationId)",
                                                    "members": "\(g.members.count)", "protocol": "\(g.protocolName ?? "")"])
        for m in g.members.values {
            let respond = m.awaitingJoin
            m.awaitingJoin = nil
            m.lastHeartbeatMs = nowMs
            m.assignment = ByteBuffer()
            respond?(joinResponse(g, for: m, version: m.joinVersion))
        }
    }

    func joinResponse(_ g: ConsumerGroup, for m: GroupMember, version: Int16) -> JoinGroupResponse {
        var r = JoinGroupResponse()
        r.generationId = g.generationId
        r.protocolType = version >= 7 ? g.protocolType : nil
        r.protocolName = g.protocolName
        r.leader = g.leaderId ?? ""
        r.memberId = m.memberId
        if m.memberId == g.leaderId, let proto = g.protocolName {
            r.members = g.members.values.sorted { $0.memberId < $1.memberId }.map { x in
                var jm = JoinGroupResponse.JoinGroupResponseMember()
                jm.memberId = x.memberId
                jm.groupInstanceId = version >= 5 ? x.groupInstanceId : nil
                jm.metadata = x.metadata(for: proto)
                return jm
            }
        }
        return r
    }

    // MARK: SyncGroup

    public func syncGroup(_ r: SyncGroupRequest, version: Int16) -> EventLoopFuture<SyncGroupResponse> {
        let promise = loop.makePromise(of: SyncGroupResponse.self)
        loop.execute { self.sync(r, version: version) { promise.succeed($0) } }
        return promise.futureResult
    }

    private func sync(_ r: SyncGroupRequest, version: Int16, respond: @escaping (SyncGroupResponse) -> Void) {
        if let e = check(r.groupId) { return respond(syncError(e)) }
        guard let g = groups[r.groupId], let m = g.members[r.memberId] else { return respond(syncError(.unknownMemberId)) }
        if r.generationId != g.generationId { return respond(syncError(.illegalGeneration)) }
        if let pt = r.protocolType, pt != g.protocolType { return respond(syncError(.inconsistentGroupProtocol)) }
        if let pn = r.protocolName, pn != g.protocolName { return respond(syncError(.inconsistentGroupProtocol)) }
        func answer(_ a: ByteBuffer) -> SyncGroupResponse {
            var s = SyncGroupResponse()
            s.assignment = a
            if version >= 5 {
                s.protocolType = g.protocolType
                s.protocolName = g.protocolName
            }
            return s
        }
        switch g.phase {
        case .preparingRebalance, .empty, .dead:
            respond(syncError(.rebalanceInProgress))
        case .stable:
            respond(answer(m.assignment))
        case .completingRebalance:
            m.awaitingSync = { respond($0) }
            m.lastHeartbeatMs = clock()
            guard r.memberId == g.leaderId else { return }
            var assignments: [String: ByteBuffer] = [:]
            for a in r.assignments { assignments[a.memberId] = a.assignment }
            let generation = g.generationId
            for x in g.members.values { x.assignment = assignments[x.memberId] ?? ByteBuffer() }
            let now = clock()
            let record: (key: ByteBuffer, value: ByteBuffer?)
            do {
                record = try Self.groupRecord(g, nowMs: now)
            } catch {
                return respond(syncError(.unknownServerError))
            }
            append(g.groupId, [record]).whenSuccess { code in
                guard g.phase == .completingRebalance, g.generationId == generation else { return }
                if code == .noError {
                    g.phase = .stable
                    self.logger.info("assignment received from the leader and stored", metadata: [
                        "group": "\(g.groupId)", "generation": "\(generation)", "members": "\(g.members.count)"])
                    for x in g.members.values {
                        let cb = x.awaitingSync
                        x.awaitingSync = nil
                        cb?(answer(x.assignment))
                    }
                } else {
                    for x in g.members.values {
                        x.awaitingSync?(self.syncError(code))
                        x.awaitingSync = nil
                        x.assignment = ByteBuffer()
                    }
                    self.prepareRebalance(g, nowMs: self.clock(), reason: "storing the assignment failed with \(code)")
                }
            }
        }
    }

    // MARK: Heartbeat, LeaveGroup

    public func heartbeat(_ r: HeartbeatRequest) -> EventLoopFuture<HeartbeatResponse> {
        loop.submit {
            var resp = HeartbeatResponse()
            if let e = self.check(r.groupId) {
                resp.errorCode = e.rawValue
                return resp
            }
            guard let g = self.groups[r.groupId], let m = g.members[r.memberId] else {
                resp.errorCode = ErrorCode.unknownMemberId.rawValue
                return resp
            }
            if r.generationId != g.generationId {
                resp.errorCode = ErrorCode.illegalGeneration.rawValue
                return resp
            }
            m.lastHeartbeatMs = self.clock()
            if g.phase == .preparingRebalance { resp.errorCode = ErrorCode.rebalanceInProgress.rawValue }
            return resp
        }
    }

    public func leaveGroup(_ r: LeaveGroupRequest, version: Int16) -> EventLoopFuture<LeaveGroupResponse> {
        loop.submit {
            var resp = LeaveGroupResponse()
            if let e = self.check(r.groupId) {
                resp.errorCode = e.rawValue
                return resp
            }
            let identities: [(String, String?)] = version >= 3 ? r.members.map { ($0.memberId, $0.groupInstanceId) } : [(r.memberId, nil)]
            guard let g = self.groups[r.groupId] else {
                resp.errorCode = ErrorCode.unknownMemberId.rawValue
                return resp
            }
            var removed = false
            for (memberId, instance) in identities {
                var id = memberId
                if id.isEmpty, let i = instance, let known = g.staticMembers[i] { id = known }
                var mr = LeaveGroupResponse.MemberResponse()
                mr.memberId = memberId
                mr.groupInstanceId = instance
                if let m = g.members[id] {
                    m.awaitingJoin?(self.joinError(.unknownMemberId, memberId: id))
                    m.awaitingSync?(self.syncError(.unknownMemberId))
                    g.members[id] = nil
                    if let i = m.groupInstanceId { g.staticMembers[i] = nil }
                    removed = true
                } else {
                    mr.errorCode = ErrorCode.unknownMemberId.rawValue
                    if version < 3 { resp.errorCode = ErrorCode.unknownMemberId.rawValue }
                }
                if version >= 3 { resp.members.append(mr) }
            }
            if removed { self.membersChanged(g) }
            return resp
        }
    }

    /// Membership changed outside a join: rebalance (or become Empty).
    func membersChanged(_ g: ConsumerGroup) {
        let now = clock()
        switch g.phase {
        case .stable, .completingRebalance:
            prepareRebalance(g, nowMs: now, reason: "membership changed")
            maybeCompleteJoin(g, nowMs: now)
        case .preparingRebalance:
            maybeCompleteJoin(g, nowMs: now)
        case .empty, .dead:
            break
        }
    }

    /// Session expiry and join deadlines.
    func tick() {
        let now = clock()
        for g in groups.values {
            var expired = false
            for (id, m) in g.members where m.awaitingJoin == nil && now - m.lastHeartbeatMs > Int64(m.sessionTimeoutMs) {
                if g.phase == .preparingRebalance { continue }  // handled by the join deadline
                m.awaitingSync?(syncError(.unknownMemberId))
                g.members[id] = nil
                if let i = m.groupInstanceId { g.staticMembers[i] = nil }
                expired = true
                logger.info("consumer group member session expired", metadata: ["group": "\(g.groupId)", "member": "\(id)"])
            }
            if expired { membersChanged(g) }
            if g.phase == .preparingRebalance { maybeCompleteJoin(g, nowMs: now) }
        }
        if now >= nextExpiryCheckMs {
            nextExpiryCheckMs = now + config.offsetsRetentionCheckIntervalMs
            expireOffsets(nowMs: now)
        }
    }

    func persistGroup(_ g: ConsumerGroup, nowMs: Int64) {
        guard let rec = try? Self.groupRecord(g, nowMs: nowMs) else { return }
        _ = append(g.groupId, [rec])
    }
}
