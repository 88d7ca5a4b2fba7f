import FjordProtocol
import FjordWire

/// Config resource types as `ConfigRecord` and the config APIs number them
/// (Kafka's `ConfigResource.Type`).
public enum ConfigResourceType: Int8, Sendable, CaseIterable {
    case unknown = 0
    case topic = 2
    case broker = 4
    case brokerLogger = 8
    case clientMetrics = 16
    case group = 32
}

extension MetadataImage {
    /// Applies one record at `offset`, with Kafka's `MetadataDelta` semantics.
    ///
    /// A record that does not apply — a change for an unknown broker, epoch, topic or
    /// partition — cannot come from a correct controller; Kafka treats it as a fatal replay
    /// fault. Here it changes nothing (but the offset), so a broker never traps on its log;
    /// the controller's own tests check that it never writes one.
    public mutating func replay(_ record: MetadataRecord, offset: Int64) {
        self.offset = offset
        switch record {
        case let .registerBroker(r): replayRegisterBroker(r)
        case let .unregisterBroker(r):
            if let b = brokers[r.brokerId], b.epoch == r.brokerEpoch { brokers[r.brokerId] = nil }
        case let .topic(r):
            if let old = topics[r.name] { topicNamesById[old.id] = nil }
            topics[r.name] = TopicImage(name: r.name, id: r.topicId)
            topicNamesById[r.topicId] = r.name
        case let .partition(r): replayPartition(r)
        case let .partitionChange(r): replayPartitionChange(r)
        case let .config(r): replayConfig(r)
        case let .fenceBroker(r):
            changeRegistration(id: r.id, epoch: r.epoch, fenced: true, inControlledShutdown: nil)
        case let .unfenceBroker(r):
            changeRegistration(id: r.id, epoch: r.epoch, fenced: false, inControlledShutdown: nil)
        case let .brokerRegistrationChange(r):
            // Fenced: -1 unfenced, 0 unchanged, 1 fenced. InControlledShutdown: 0 unchanged, 1 in it.
            let fenced: Bool?
            switch r.fenced {
            case -1: fenced = false
            case 0: fenced = nil
            case 1: fenced = true
            default: return
            }
            let shutdown: Bool?
            switch r.inControlledShutdown {
            case 0: shutdown = nil
            case 1: shutdown = true
            default: return
            }
            changeRegistration(id: r.brokerId, epoch: r.brokerEpoch, fenced: fenced, inControlledShutdown: shutdown)
            if !r.logDirs.isEmpty, var b = brokers[r.brokerId], b.epoch == r.brokerEpoch {
                b.logDirs = r.logDirs
                brokers[r.brokerId] = b
            }
        case let .removeTopic(r):
            guard let name = topicNamesById[r.topicId] else { return }
            topicNamesById[r.topicId] = nil
            topics[name] = nil
            topicConfigs[name] = nil
        case let .featureLevel(r):
            // Level 0 removes a feature (metadata.version is never removed).
            if r.featureLevel == 0 && r.name != Self.metadataVersionFeature {
                features[r.name] = nil
            } else {
                features[r.name] = r.featureLevel
            }
        case let .producerIds(r):
            if r.nextProducerId > nextProducerId { nextProducerId = r.nextProducerId }
        case let .registerController(r):
            controllers[r.controllerId] = ControllerInfo(
                id: r.controllerId, incarnationId: r.incarnationId, zkMigrationReady: r.zkMigrationReady,
                endpoints: r.endPoints.map { Endpoint(name: $0.name, host: $0.host, port: $0.port, securityProtocol: $0.securityProtocol) },
                supportedFeatures: Self.ranges(r.features.map { ($0.name, $0.minSupportedVersion, $0.maxSupportedVersion) }))
        case .noOp, .other:
            break
        }
    }

    /// Replays records at consecutive offsets starting at `firstOffset`.
    public mutating func replay<S: Sequence>(_ records: S, firstOffset: Int64) where S.Element == MetadataRecord {
        var o = firstOffset
        for r in records {
            replay(r, offset: o)
            o += 1
        }
    }

    private mutating func replayRegisterBroker(_ r: RegisterBrokerRecord) {
        brokers[r.brokerId] = BrokerRegistrationInfo(
            id: r.brokerId, epoch: r.brokerEpoch, incarnationId: r.incarnationId,
            endpoints: r.endPoints.map { Endpoint(name: $0.name, host: $0.host, port: $0.port, securityProtocol: $0.securityProtocol) },
            rack: r.rack, fenced: r.fenced, inControlledShutdown: r.inControlledShutdown,
            supportedFeatures: Self.ranges(r.features.map { ($0.name, $0.minSupportedVersion, $0.maxSupportedVersion) }),
            logDirs: r.logDirs)
    }

    private static func ranges(_ features: [(String, Int16, Int16)]) -> [String: FeatureRange] {
        Dictionary(features.map { ($0.0, FeatureRange(min: $0.1, max: $0.2)) }, uniquingKeysWith: { _, last in last })
    }

    private mutating func changeRegistration(id: Int32, epoch: Int64, fenced: Bool?, inControlledShutdown: Bool?) {
        guard var b = brokers[id], b.epoch == epoch else { return }
        if let f = fenced { b.fenced = f }
        if let s = inControlledShutdown { b.inControlledShutdown = s }
        brokers[id] = b
    }

    private mutating func replayPartition(_ r: PartitionRecord) {
        guard let name = topicNamesById[r.topicId], topics[name] != nil else { return }
        topics[name]?.partitions[r.partitionId] = PartitionImage(
            replicas: r.replicas, isr: r.isr, leader: r.leader, leaderEpoch: r.leaderEpoch,
            partitionEpoch: r.partitionEpoch, leaderRecoveryState: r.leaderRecoveryState,
            removingReplicas: r.removingReplicas, addingReplicas: r.addingReplicas, directories: r.directories)
    }

    private mutating func replayPartitionChange(_ r: PartitionChangeRecord) {
        guard let name = topicNamesById[r.topicId], let p = topics[name]?.partitions[r.partitionId] else { return }
        topics[name]?.partitions[r.partitionId] = p.merging(r)
    }

    private mutating func replayConfig(_ r: ConfigRecord) {
        switch ConfigResourceType(rawValue: r.resourceType) {
        case .topic?: Self.set(&topicConfigs, r.resourceName, r.name, r.value)
        case .broker?: Self.set(&brokerConfigs, r.resourceName, r.name, r.value)
        default: break
        }
    }

    private static func set(_ map: inout [String: [String: String]], _ resource: String, _ key: String, _ value: String?) {
        var m = map[resource] ?? [:]
        m[key] = value
        map[resource] = m.isEmpty ? nil : m
    }
}

extension PartitionImage {
    /// This partition after `change`: absent fields keep their value; a leader other than
    /// -2 ("no change") bumps the leader epoch, even when it names the same leader; every
    /// change bumps the partition epoch.
    public func merging(_ change: PartitionChangeRecord) -> PartitionImage {
        var p = self
        if let v = change.replicas { p.replicas = v }
        if let v = change.isr { p.isr = v }
        if let v = change.removingReplicas { p.removingReplicas = v }
        if let v = change.addingReplicas { p.addingReplicas = v }
        if let v = change.directories { p.directories = v }
        if change.leader != Self.noLeaderChange {
            p.leader = change.leader
            p.leaderEpoch += 1
        }
        if change.leaderRecoveryState != -1 { p.leaderRecoveryState = change.leaderRecoveryState }
        p.partitionEpoch += 1
        return p
    }
}
