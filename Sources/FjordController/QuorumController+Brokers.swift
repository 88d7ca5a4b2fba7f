import FjordMetadata
import FjordProtocol
import FjordWire

extension QuorumController {
    /// The broker's state as the heartbeat state machine sees it.
    enum BrokerState: Equatable {
        case fenced, unfenced, controlledShutdown, shutdownNow

        var isFenced: Bool { self == .fenced || self == .shutdownNow }
    }

    /// BrokerRegistration: registers (or re-registers) a broker, fenced, with a new epoch —
    /// the offset of its `RegisterBrokerRecord`. A broker re-registering with a new
    /// incarnation is taken out of ISRs and leaderships, as if fenced, since it may have lost
    /// state. The same incarnation registering again (the same process retrying, or a
    /// request that arrived twice) amends its registration, as Kafka does: the record is
    /// rewritten with the same epoch and the same fenced/controlled-shutdown state, so a
    /// retry never invalidates the epoch the broker heartbeats with.
    public func registerBroker(_ request: BrokerRegistrationRequest, nowMs: Int64) -> ControllerResult<BrokerRegistrationResponse> {
        var response = BrokerRegistrationResponse()
        func fail(_ code: ErrorCode) -> ControllerResult<BrokerRegistrationResponse> {
            response.errorCode = code.rawValue
            return ControllerResult(records: [], response: response)
        }
        let id = request.brokerId
        guard request.clusterId == config.clusterId else { return fail(.inconsistentClusterId) }
        guard id >= 0 else { return fail(.invalidRegistration) }
        // The broker must support every finalized feature level (missing: only level 0).
        var supported: [String: FeatureRange] = [:]
        for f in request.features { supported[f.name] = FeatureRange(min: f.minSupportedVersion, max: f.maxSupportedVersion) }
        for (name, level) in image.features {
            let range = supported[name] ?? FeatureRange(min: 0, max: 0)
            if !range.contains(level) { return fail(.unsupportedVersion) }
        }
        // Log directories: no reserved ids, no duplicates, none owned by another broker.
        if Set(request.logDirs).count != request.logDirs.count { return fail(.invalidRegistration) }
        if request.logDirs.contains(where: { $0.high == 0 && $0.low < 100 }) { return fail(.invalidRegistration) }
        let dirs = Set(request.logDirs)
        for other in image.brokers.values where other.id != id && other.logDirs.contains(where: dirs.contains) {
            return fail(.invalidRegistration)
        }
        let existing = image.brokers[id]
        if let e = existing, e.incarnationId != request.incarnationId, hasValidSession(id, nowMs: nowMs) {
            return fail(.duplicateBrokerRegistration)
        }

        let amend = existing.map { $0.incarnationId == request.incarnationId } ?? false
        var rec = RegisterBrokerRecord()
        rec.brokerId = id
        rec.incarnationId = request.incarnationId
        rec.brokerEpoch = amend ? existing!.epoch : nextWriteOffset
        rec.endPoints = request.listeners.map {
            var e = RegisterBrokerRecord.BrokerEndpoint()
            e.name = $0.name
            e.host = $0.host
            e.port = $0.port
            e.securityProtocol = $0.securityProtocol
            return e
        }
        rec.features = request.features.map {
            var f = RegisterBrokerRecord.BrokerFeature()
            f.name = $0.name
            f.minSupportedVersion = $0.minSupportedVersion
            f.maxSupportedVersion = $0.maxSupportedVersion
            return f
        }
        rec.rack = request.rack
        rec.fenced = amend ? existing!.fenced : true
        rec.inControlledShutdown = amend ? existing!.inControlledShutdown : false
        rec.logDirs = request.logDirs
        var records: [MetadataRecord] = []
        emit([.registerBroker(rec)], into: &records)
        if amend {
            response.brokerEpoch = rec.brokerEpoch
            return ControllerResult(records: records, response: response)
        }
        sessions[id] = nil
        if existing != nil {
            emit(leaderAndIsrUpdates(remove: id, partitions: partitionsWithBrokerInIsr(id)), into: &records)
        }
        response.brokerEpoch = rec.brokerEpoch
        return ControllerResult(records: records, response: response)
    }

    /// Whether an unfenced broker heard from within the session timeout holds `id`.
    func hasValidSession(_ id: Int32, nowMs: Int64) -> Bool {
        guard let b = image.brokers[id], !b.fenced, let s = sessions[id] else { return false }
        return nowMs - s.lastContactMs <= config.brokerSessionTimeoutMs
    }

    /// BrokerHeartbeat: keeps the broker's session alive and moves it through Kafka's
    /// states — fenced → unfenced once it has replayed its own registration record
    /// (`currentMetadataOffset` ≥ its epoch); unfenced → controlled shutdown when it wants to
    /// shut down (its leaderships move away and it leaves ISRs); controlled shutdown →
    /// shut down once it leads nothing and the records that moved its leaderships are
    /// replayed by every other active broker (and committed, if `committedOffset` is given;
    /// a shell that answers only after the response's own records commit need not, since the
    /// grant fences the broker and so commits after them).
    public func heartbeat(_ request: BrokerHeartbeatRequest, nowMs: Int64,
                          committedOffset: Int64? = nil) -> ControllerResult<BrokerHeartbeatResponse> {
        var response = BrokerHeartbeatResponse()
        let id = request.brokerId
        guard let broker = image.brokers[id], broker.epoch == request.brokerEpoch else {
            response.errorCode = ErrorCode.staleBrokerEpoch.rawValue
            return ControllerResult(records: [], response: response)
        }
        let current: BrokerState = broker.fenced ? .fenced : broker.inControlledShutdown ? .controlledShutdown : .unfenced
        let next: BrokerState
        switch current {
        case .fenced:
            if request.wantFence {
                next = .fenced
            } else if request.wantShutDown {
                next = .shutdownNow
            } else if request.currentMetadataOffset >= broker.epoch && !broker.inControlledShutdown {
                // A broker fenced during controlled shutdown cannot leave that state (no
                // record clears it): it comes back by registering again.
                next = .unfenced
            } else {
                next = .fenced
            }
        case .unfenced:
            if request.wantFence {
                next = .fenced
            } else if request.wantShutDown {
                next = .controlledShutdown
            } else {
                next = .unfenced
            }
        case .controlledShutdown, .shutdownNow:
            sessions[id, default: BrokerSession(lastContactMs: nowMs)].metadataOffset = request.currentMetadataOffset
            if !image.partitionsLed(by: id).isEmpty {
                next = .controlledShutdown
            } else {
                let shutdownOffset = sessions[id]?.controlledShutdownOffset ?? -1
                next = shutdownOffset <= (committedOffset ?? Int64.max) && shutdownOffset <= lowestActiveOffset(excluding: id)
                    ? .shutdownNow : .controlledShutdown
            }
        }
        var records: [MetadataRecord] = []
        if next != current {
            switch next {
            case .fenced, .shutdownNow:
                if !broker.fenced { records = fence(broker: id) }
            case .unfenced:
                records = unfence(broker: id)
            case .controlledShutdown:
                records = enterControlledShutdown(broker: id)
                sessions[id, default: BrokerSession(lastContactMs: nowMs)].controlledShutdownOffset = nextWriteOffset - 1
            }
        }
        if next.isFenced {
            sessions[id] = nil
        } else {
            sessions[id, default: BrokerSession(lastContactMs: nowMs)].lastContactMs = nowMs
            sessions[id]?.metadataOffset = request.currentMetadataOffset
        }
        response.isCaughtUp = request.currentMetadataOffset >= broker.epoch
        response.isFenced = next.isFenced
        response.shouldShutDown = next == .shutdownNow
        return ControllerResult(records: records, response: response)
    }

    /// The lowest metadata offset reported by an active broker other than `id`
    /// (Int64.max if there is none).
    func lowestActiveOffset(excluding id: Int32) -> Int64 {
        var lowest = Int64.max
        for b in image.brokers.values where b.id != id && b.isActive {
            lowest = min(lowest, sessions[b.id]?.metadataOffset ?? -1)
        }
        return lowest
    }

    /// Fences a broker: its ISR memberships and leaderships go first, then the
    /// registration change. Records are replayed.
    func fence(broker id: Int32) -> [MetadataRecord] {
        guard let b = image.brokers[id] else { return [] }
        var out: [MetadataRecord] = []
        emit(leaderAndIsrUpdates(remove: id, partitions: partitionsWithBrokerInIsr(id)), into: &out)
        var change = BrokerRegistrationChangeRecord()
        change.brokerId = id
        change.brokerEpoch = b.epoch
        change.fenced = 1
        emit([.brokerRegistrationChange(change)], into: &out)
        sessions[id] = nil
        return out
    }

    /// Unfences a broker, then lets it lead the leaderless partitions it is eligible for.
    func unfence(broker id: Int32) -> [MetadataRecord] {
        guard let b = image.brokers[id] else { return [] }
        var out: [MetadataRecord] = []
        var change = BrokerRegistrationChangeRecord()
        change.brokerId = id
        change.brokerEpoch = b.epoch
        change.fenced = -1
        emit([.brokerRegistrationChange(change)], into: &out)
        emit(leaderAndIsrUpdates(add: id, partitions: partitionsWithoutLeader()), into: &out)
        return out
    }

    /// Marks a broker in controlled shutdown, then moves its leaderships away and takes it
    /// out of ISRs.
    func enterControlledShutdown(broker id: Int32) -> [MetadataRecord] {
        guard let b = image.brokers[id] else { return [] }
        var out: [MetadataRecord] = []
        var change = BrokerRegistrationChangeRecord()
        change.brokerId = id
        change.brokerEpoch = b.epoch
        change.inControlledShutdown = 1
        emit([.brokerRegistrationChange(change)], into: &out)
        emit(leaderAndIsrUpdates(remove: id, partitions: partitionsWithBrokerInIsr(id)), into: &out)
        return out
    }

    /// UnregisterBroker: removes a broker after taking it out of ISRs and leaderships.
    public func unregisterBroker(_ request: UnregisterBrokerRequest) -> ControllerResult<UnregisterBrokerResponse> {
        var response = UnregisterBrokerResponse()
        response.errorMessage = nil
        let id = request.brokerId
        guard let b = image.brokers[id] else {
            response.errorCode = ErrorCode.brokerIdNotRegistered.rawValue
            response.errorMessage = "Broker ID \(id) is not currently registered"
            return ControllerResult(records: [], response: response)
        }
        var out: [MetadataRecord] = []
        emit(leaderAndIsrUpdates(remove: id, partitions: partitionsWithBrokerInIsr(id)), into: &out)
        var rec = UnregisterBrokerRecord()
        rec.brokerId = id
        rec.brokerEpoch = b.epoch
        emit([.unregisterBroker(rec)], into: &out)
        sessions[id] = nil
        return ControllerResult(records: out, response: response)
    }

    /// ControllerRegistration: records a controller's listeners and supported features.
    public func registerController(_ request: ControllerRegistrationRequest) -> ControllerResult<ControllerRegistrationResponse> {
        var response = ControllerRegistrationResponse()
        response.errorMessage = nil
        var rec = RegisterControllerRecord()
        rec.controllerId = request.controllerId
        rec.incarnationId = request.incarnationId
        rec.zkMigrationReady = request.zkMigrationReady
        rec.endPoints = request.listeners.map {
            var e = RegisterControllerRecord.ControllerEndpoint()
            e.name = $0.name
            e.host = $0.host
            e.port = $0.port
            e.securityProtocol = $0.securityProtocol
            return e
        }
        rec.features = request.features.map {
            var f = RegisterControllerRecord.ControllerFeature()
            f.name = $0.name
            f.minSupportedVersion = $0.minSupportedVersion
            f.maxSupportedVersion = $0.maxSupportedVersion
            return f
        }
        var out: [MetadataRecord] = []
        emit([.registerController(rec)], into: &out)
        return ControllerResult(records: out, response: response)
    }

    /// AllocateProducerIds: hands the broker the next block of `producerIdBlockSize` ids.
    public func allocateProducerIds(_ request: AllocateProducerIdsRequest) -> ControllerResult<AllocateProducerIdsResponse> {
        var response = AllocateProducerIdsResponse()
        guard let b = image.brokers[request.brokerId], b.epoch == request.brokerEpoch else {
            response.errorCode = ErrorCode.staleBrokerEpoch.rawValue
            return ControllerResult(records: [], response: response)
        }
        let start = image.nextProducerId
        let size = Int64(config.producerIdBlockSize)
        guard size > 0, start <= Int64.max - size else {
            response.errorCode = ErrorCode.unknownServerError.rawValue
            return ControllerResult(records: [], response: response)
        }
        var rec = ProducerIdsRecord()
        rec.brokerId = request.brokerId
        rec.brokerEpoch = request.brokerEpoch
        rec.nextProducerId = start + size
        var out: [MetadataRecord] = []
        emit([.producerIds(rec)], into: &out)
        response.producerIdStart = start
        response.producerIdLen = config.producerIdBlockSize
        return ControllerResult(records: out, response: response)
    }
}
