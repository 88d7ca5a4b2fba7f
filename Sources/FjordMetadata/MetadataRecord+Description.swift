import FjordProtocol
import FjordWire

extension MetadataRecord: CustomStringConvertible {
    /// One line naming the record and its meaningful fields, e.g.
    /// `PartitionChangeRecord(topicId=…, partitionId=0, leader=2, isr=[2,3])`.
    public var description: String {
        "\(Self.recordName(type))(\(fields().map { "\($0.0)=\($0.1)" }.joined(separator: ", ")))"
    }

    /// The schema name of a record type, e.g. "PartitionChangeRecord".
    public static func recordName(_ type: MetadataRecordType) -> String {
        type.recordType.messageName
    }

    /// The record's fields as (name, value text) pairs, leaving out "no change" values of
    /// change records.
    public func fields() -> [(String, String)] {
        func list(_ a: [Int32]) -> String { "[" + a.map(String.init).joined(separator: ",") + "]" }
        switch self {
        case let .registerBroker(r):
            var f: [(String, String)] = [("brokerId", "\(r.brokerId)"), ("brokerEpoch", "\(r.brokerEpoch)"),
                                         ("incarnationId", "\(r.incarnationId)"), ("fenced", "\(r.fenced)")]
            if r.inControlledShutdown { f.append(("inControlledShutdown", "true")) }
            if let rack = r.rack { f.append(("rack", rack)) }
            if !r.endPoints.isEmpty {
                f.append(("endPoints", "[" + r.endPoints.map { "\($0.name)://\($0.host):\($0.port)" }.joined(separator: ",") + "]"))
            }
            return f
        case let .unregisterBroker(r):
            return [("brokerId", "\(r.brokerId)"), ("brokerEpoch", "\(r.brokerEpoch)")]
        case let .topic(r):
            return [("name", r.name), ("topicId", "\(r.topicId)")]
        case let .partition(r):
            var f: [(String, String)] = [("topicId", "\(r.topicId)"), ("partitionId", "\(r.partitionId)"),
                                         ("replicas", list(r.replicas)), ("isr", list(r.isr)), ("leader", "\(r.leader)"),
                                         ("leaderEpoch", "\(r.leaderEpoch)"), ("partitionEpoch", "\(r.partitionEpoch)")]
            if r.leaderRecoveryState != 0 { f.append(("leaderRecoveryState", "\(r.leaderRecoveryState)")) }
            return f
        case let .partitionChange(r):
            var f: [(String, String)] = [("topicId", "\(r.topicId)"), ("partitionId", "\(r.partitionId)")]
            if r.leader != PartitionImage.noLeaderChange { f.append(("leader", "\(r.leader)")) }
            if let v = r.isr { f.append(("isr", list(v))) }
            if let v = r.replicas { f.append(("replicas", list(v))) }
            if let v = r.removingReplicas { f.append(("removingReplicas", list(v))) }
            if let v = r.addingReplicas { f.append(("addingReplicas", list(v))) }
            if r.leaderRecoveryState != -1 { f.append(("leaderRecoveryState", "\(r.leaderRecoveryState)")) }
            return f
        case let .config(r):
            return [("resourceType", "\(r.resourceType)"), ("resourceName", r.resourceName), ("name", r.name),
                    ("value", r.value ?? "null")]
        case let .fenceBroker(r):
            return [("id", "\(r.id)"), ("epoch", "\(r.epoch)")]
        case let .unfenceBroker(r):
            return [("id", "\(r.id)"), ("epoch", "\(r.epoch)")]
        case let .removeTopic(r):
            return [("topicId", "\(r.topicId)")]
        case let .featureLevel(r):
            return [("name", r.name), ("featureLevel", "\(r.featureLevel)")]
        case let .producerIds(r):
            return [("brokerId", "\(r.brokerId)"), ("brokerEpoch", "\(r.brokerEpoch)"), ("nextProducerId", "\(r.nextProducerId)")]
        case let .brokerRegistrationChange(r):
            var f: [(String, String)] = [("brokerId", "\(r.brokerId)"), ("brokerEpoch", "\(r.brokerEpoch)")]
            if r.fenced != 0 { f.append(("fenced", "\(r.fenced)")) }
            if r.inControlledShutdown != 0 { f.append(("inControlledShutdown", "\(r.inControlledShutdown)")) }
            return f
        case let .registerController(r):
            return [("controllerId", "\(r.controllerId)"), ("incarnationId", "\(r.incarnationId)")]
        case .noOp:
            return []
        case let .other(_, version, body):
            return [("version", "\(version)"), ("bytes", "\(body.readableBytes)")]
        }
    }
}
