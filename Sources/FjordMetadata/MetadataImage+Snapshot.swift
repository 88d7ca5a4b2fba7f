import FjordProtocol
import FjordWire

extension MetadataImage {
    /// The records that rebuild this image from nothing: what a metadata snapshot (KIP-630)
    /// holds. Replaying them into an empty image gives an image equal to this one (but for
    /// `offset`, which the snapshot's end offset sets). The order is deterministic — features
    /// first (the metadata version governs how the rest is read), then controllers, brokers,
    /// topics with their partitions, configs and the producer-id block — so two nodes with
    /// equal images write byte-identical snapshots.
    public func snapshotRecords() -> [MetadataRecord] {
        var out: [MetadataRecord] = []
        let featureNames = features.keys.sorted { a, b in
            (a == Self.metadataVersionFeature ? 0 : 1, a) < (b == Self.metadataVersionFeature ? 0 : 1, b)
        }
        for name in featureNames {
            var r = FeatureLevelRecord()
            r.name = name
            r.featureLevel = features[name] ?? 0
            out.append(.featureLevel(r))
        }
        for id in controllers.keys.sorted() {
            guard let c = controllers[id] else { continue }
            var r = RegisterControllerRecord()
            r.controllerId = c.id
            r.incarnationId = c.incarnationId
            r.zkMigrationReady = c.zkMigrationReady
            r.endPoints = c.endpoints.map { e in
                var x = RegisterControllerRecord.ControllerEndpoint()
                x.name = e.name
                x.host = e.host
                x.port = e.port
                x.securityProtocol = e.securityProtocol
                return x
            }
            r.features = c.supportedFeatures.keys.sorted().map { n in
                var f = RegisterControllerRecord.ControllerFeature()
                f.name = n
                f.minSupportedVersion = c.supportedFeatures[n]?.min ?? 0
                f.maxSupportedVersion = c.supportedFeatures[n]?.max ?? 0
                return f
            }
            out.append(.registerController(r))
        }
        for id in brokers.keys.sorted() {
            guard let b = brokers[id] else { continue }
            var r = RegisterBrokerRecord()
            r.brokerId = b.id
            r.incarnationId = b.incarnationId
            r.brokerEpoch = b.epoch
            r.endPoints = b.endpoints.map { e in
                var x = RegisterBrokerRecord.BrokerEndpoint()
                x.name = e.name
                x.host = e.host
                x.port = e.port
                x.securityProtocol = e.securityProtocol
                return x
            }
            r.features = b.supportedFeatures.keys.sorted().map { n in
                var f = RegisterBrokerRecord.BrokerFeature()
                f.name = n
                f.minSupportedVersion = b.supportedFeatures[n]?.min ?? 0
                f.maxSupportedVersion = b.supportedFeatures[n]?.max ?? 0
                return f
            }
            r.rack = b.rack
            r.fenced = b.fenced
            r.inControlledShutdown = b.inControlledShutdown
            r.logDirs = b.logDirs
            out.append(.registerBroker(r))
        }
        for name in topics.keys.sorted() {
            guard let t = topics[name] else { continue }
            var tr = TopicRecord()
            tr.name = t.name
            tr.topicId = t.id
            out.append(.topic(tr))
            for pid in t.sortedPartitionIds {
                guard let p = t.partitions[pid] else { continue }
                var pr = PartitionRecord()
                pr.partitionId = pid
                pr.topicId = t.id
                pr.replicas = p.replicas
                pr.isr = p.isr
                pr.removingReplicas = p.removingReplicas
                pr.addingReplicas = p.addingReplicas
                pr.leader = p.leader
                pr.leaderRecoveryState = p.leaderRecoveryState
                pr.leaderEpoch = p.leaderEpoch
                pr.partitionEpoch = p.partitionEpoch
                pr.directories = p.directories
                out.append(.partition(pr))
            }
        }
        func configs(_ type: ConfigResourceType, _ map: [String: [String: String]]) {
            for resource in map.keys.sorted() {
                let entries = map[resource] ?? [:]
                for key in entries.keys.sorted() {
                    var c = ConfigRecord()
                    c.resourceType = type.rawValue
                    c.resourceName = resource
                    c.name = key
                    c.value = entries[key]
                    out.append(.config(c))
                }
            }
        }
        configs(.broker, brokerConfigs)
        configs(.topic, topicConfigs)
        if nextProducerId > 0 {
            var r = ProducerIdsRecord()
            r.brokerId = -1
            r.brokerEpoch = -1
            r.nextProducerId = nextProducerId
            out.append(.producerIds(r))
        }
        return out
    }

    /// The image a snapshot's records describe, as of the snapshot's end offset (exclusive).
    public init(snapshotRecords records: [MetadataRecord], endOffset: Int64) {
        self.init()
        for r in records { replay(r, offset: endOffset - 1) }
        offset = endOffset - 1
    }
}
