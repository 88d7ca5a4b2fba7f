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
            if let instance = r.groupInstanceId, let old = g.staticMembers[instance], g.members[old] != nil {
                // A static member restarting: it takes over its old incarnation (KIP-345).
                return replaceStaticMember(g, instance: instance, oldId: old, newId: fresh, protocols: protocols,
                                           sessionTimeoutMs: r.sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeout,
                                           version: version, nowMs: now, respond: respond)
            } else if r.groupInstanceId == nil, version >= 4 {
                // KIP-394: hand out the member id first; the member joins with it within its
                // session timeout or the id is dropped.
                g.pendingMembers[fresh] = now + Int64(r.sessionTimeoutMs)
                return respond(joinError(.memberIdRequired, memberId: fresh))
            }
            memberId = fresh
        } else if g.isStaticMemberFenced(r.groupInstanceId, memberId) {
            return respond(joinError(.fencedInstanceId, memberId: memberId))
        } else if g.pendingMembers[memberId] != nil {
            g.pendingMembers[memberId] = nil
        } else if g.members[memberId] == nil {
            return respond(joinError(.unknownMemberId, memberId: memberId))
        }
        if g.members[memberId] == nil, Int32(g.members.count) >= config.maxSize {
            return respond(joinError(.groupMaxSizeReached, memberId: memberId))
        }
        let m: GroupMember
        if let existing = g.members[memberId] {
            m = existing
            let unchanged = existing.matches(protocols)
            m.protocols = protocols
            m.sessionTimeoutMs = r.sessionTimeoutMs
            m.rebalanceTimeoutMs = rebalanceTimeout
            m.lastHeartbeatMs = now
            // A member that rejoins with the same protocols after the join phase (it may
            // have missed the JoinGroup answer) gets the current generation, no rebalance;
            // in a stable group only a follower (the leader's rejoin asks for a new
            // assignment, as Kafka's does).
            if unchanged, m.awaitingJoin == nil,
               g.phase == .completingRebalance || (g.phase == .stable && g.leaderId != memberId) {
                respond(joinResponse(g, for: m, version: version))
                return
            }
        } else {
            m = GroupMember(memberId: memberId, groupInstanceId: r.groupInstanceId, clientId: clientId, clientHost: clientHost,
                            sessionTimeoutMs: r.sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeout, protocolType: r.protocolType,
                            protocols: protocols, nowMs: now)
            g.members[memberId] = m
            if let instance = r.groupInstanceId { g.staticMembers[instance] = memberId }
            if g.protocolType == nil || g.phase == .empty { g.protocolType = r.protocolType }
            // A new member during the initial delay restarts it (up to the rebalance timeout).
            if g.phase == .preparingRebalance, now < g.initialDelayUntilMs {
                g.initialDelayUntilMs = min(now + config.initialRebalanceDelayMs, g.initialDelayCapMs)
            }
        }
        if let previous = m.awaitingJoin { previous(joinError(.unknownMemberId, memberId: memberId)) }
        m.awaitingJoin = respond
        m.joinVersion = version
        if g.phase != .preparingRebalance { prepareRebalance(g, nowMs: now, reason: "member \(memberId) joined or rejoined") }
        maybeCompleteJoin(g, nowMs: now)
    }

    /// A static member rejoined with a new member id (KIP-345): the old id is fenced and the
    /// new one takes its place and assignment. A stable group whose protocol stays the same
    /// does not rebalance: the group record is rewritten with the new id and the member gets
    /// the current generation (the leader, from JoinGroup v9, with `skipAssignment`).
    private func replaceStaticMember(_ g: ConsumerGroup, instance: String, oldId: String, newId: String,
                                     protocols: [(name: String, metadata: ByteBuffer)], sessionTimeoutMs: Int32,
                                     rebalanceTimeoutMs: Int32, version: Int16, nowMs: Int64,
                                     respond: @escaping (JoinGroupResponse) -> Void) {
        guard let old = g.members[oldId] else { return }
        old.awaitingJoin?(joinError(.fencedInstanceId, memberId: oldId))
        old.awaitingJoin = nil
        old.awaitingSync?(syncError(.fencedInstanceId))
        old.awaitingSync = nil
        let m = GroupMember(memberId: newId, groupInstanceId: instance, clientId: old.clientId, clientHost: old.clientHost,
                            sessionTimeoutMs: sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeoutMs, protocolType: old.protocolType,
                            protocols: protocols, nowMs: nowMs)
        m.assignment = old.assignment
        m.joinVersion = version
        let wasLeader = g.leaderId == oldId
        func install(_ x: GroupMember, replacing y: String) {
            g.members[y] = nil
            g.members[x.memberId] = x
            g.staticMembers[instance] = x.memberId
            if g.leaderId == y { g.leaderId = x.memberId }
        }
        install(m, replacing: oldId)
        g.subscribedTopics = Self.subscribedTopics(g)
        logger.info("static member rejoined with a new member id", metadata: [
            "group": "\(g.groupId)", "groupInstanceId": "\(instance)", "oldMemberId": "\(oldId)", "memberId": "\(newId)"])
        switch g.phase {
        case .stable where g.selectProtocol() == g.protocolName:
            let generation = g.generationId
            let record: (key: ByteBuffer, value: ByteBuffer?)
            do {
                record = try Self.groupRecord(g, nowMs: nowMs)
            } catch {
                install(old, replacing: newId)
                return respond(joinError(.unknownServerError, memberId: newId))
            }
            append(g.groupId, [record]).whenSuccess { code in
                guard g.members[newId] === m else { return respond(self.joinError(.fencedInstanceId, memberId: newId)) }
                if code != .noError {
                    // Not stored: the old incarnation stays the member of record.
                    install(old, replacing: newId)
                    g.subscribedTopics = Self.subscribedTopics(g)
                    return respond(self.joinError(code, memberId: newId))
                }
                var r = self.joinResponse(g, for: m, version: version)
                r.generationId = generation
                if wasLeader, version >= 9 { r.skipAssignment = true }
                respond(r)
            }
        case .stable, .completingRebalance:
            m.awaitingJoin = respond
            prepareRebalance(g, nowMs: nowMs, reason: "static member \(instance) rejoined as \(newId)")
            maybeCompleteJoin(g, nowMs: nowMs)
        case .preparingRebalance, .empty, .dead:
            m.awaitingJoin = respond
            if g.phase != .preparingRebalance { prepareRebalance(g, nowMs: nowMs, reason: "static member \(instance) rejoined as \(newId)") }
            maybeCompleteJoin(g, nowMs: nowMs)
        }
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
        g.initialDelayCapMs = nowMs + max(g.rebalanceTimeoutMs, 1)
        g.initialDelayUntilMs = wasEmpty ? min(nowMs + config.initialRebalanceDelayMs, g.initialDelayCapMs) : 0
    }

    func maybeCompleteJoin(_ g: ConsumerGroup, nowMs: Int64) {
        guard g.phase == .preparingRebalance else { return }
        let ready = g.allMembersJoined && nowMs >= g.initialDelayUntilMs
        guard ready || nowMs >= g.joinDeadlineMs else { return }
        // Dynamic members that did not rejoin in time leave the group; static ones stay
        // until their session expires (KIP-345), and get no JoinGroup answer.
        for (id, m) in g.members where m.awaitingJoin == nil && m.groupInstanceId == nil {
            g.members[id] = nil
        }
        g.pendingMembers = [:]
        if !g.members.isEmpty, !g.members.values.contains(where: { $0.awaitingJoin != nil }) {
            // Only static members that have not rejoined: wait another rebalance timeout for
            // them (their sessions still expire), as Kafka does.
            g.joinDeadlineMs = nowMs + max(g.rebalanceTimeoutMs, 1)
            return
        }
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
        g.subscribedTopics = Self.subscribedTopics(g)
        // The leader stays if it rejoined; else the first member that did (one that gets
        // this generation's JoinGroup answer, so it can compute the assignment).
        if g.leaderId == nil || g.members[g.leaderId!]?.awaitingJoin == nil {
            g.leaderId = g.members.values.filter { $0.awaitingJoin != nil }.map(\.memberId).sorted().first
                ?? g.members.keys.sorted().first
        }
        g.phase = .completingRebalance
        logger.info("stabilized group", metadata: ["group": "\(g.groupId)", "generation": "\(g.generationId)",
                                                    "members": "\(g.members.count)", "protocol": "\(g.protocolName ?? "")"])
        for m in g.members.values {
            let respond = m.awaitingJoin
            m.awaitingJoin = nil
            m.lastHeartbeatMs = nowMs
            m.previousPartitions = g.isConsumerGroup ? Self.partitions(ofAssignment: m.assignment) : []
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
        guard let g = groups[r.groupId] else { return respond(syncError(.unknownMemberId)) }
        if g.isStaticMemberFenced(r.groupInstanceId, r.memberId) { return respond(syncError(.fencedInstanceId)) }
        guard let m = g.members[r.memberId] else { return respond(syncError(.unknownMemberId)) }
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
            if let g = self.groups[r.groupId], g.isStaticMemberFenced(r.groupInstanceId, r.memberId) {
                resp.errorCode = ErrorCode.fencedInstanceId.rawValue
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
                // An administrative removal names only the group.instance.id.
                if id.isEmpty, let i = instance, let known = g.staticMembers[i] { id = known }
                var mr = LeaveGroupResponse.MemberResponse()
                mr.memberId = memberId
                mr.groupInstanceId = instance
                if !memberId.isEmpty, g.pendingMembers[memberId] != nil {
                    g.pendingMembers[memberId] = nil
                    self.maybeCompleteJoin(g, nowMs: self.clock())
                } else if !memberId.isEmpty, g.isStaticMemberFenced(instance, memberId) {
                    mr.errorCode = ErrorCode.fencedInstanceId.rawValue
                    if version < 3 { resp.errorCode = mr.errorCode }
                } else if !memberId.isEmpty, let i = instance, g.staticMembers[i] == nil {
                    mr.errorCode = ErrorCode.unknownMemberId.rawValue
                    if version < 3 { resp.errorCode = mr.errorCode }
                } else if let m = g.members[id] {
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
        // Cut off from the controllers, this broker answers NOT_COORDINATOR (see check):
        // members cannot heartbeat here, so their sessions do not run out here either; they
        // start afresh when the broker's session is back.
        guard rm.sessionIsCurrent() else {
            sessionLapsed = true
            return
        }
        if sessionLapsed {
            sessionLapsed = false
            for g in groups.values { for m in g.members.values { m.lastHeartbeatMs = now } }
        }
        for g in groups.values {
            var expired = false
            for (pending, deadline) in g.pendingMembers where deadline <= now {
                // A member id handed out with MEMBER_ID_REQUIRED that never joined: the
                // join phase no longer waits for it (no rebalance of its own).
                g.pendingMembers[pending] = nil
            }
            for (id, m) in g.members where m.awaitingJoin == nil && now - m.lastHeartbeatMs > Int64(m.sessionTimeoutMs) {
                // Dynamic members that do not rejoin are dropped by the join deadline.
                if g.phase == .preparingRebalance && m.groupInstanceId == nil { continue }
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
