import FjordController
import FjordMetadata
import FjordProtocol
import FjordWire
import NIOCore
import XCTest

/// Drives a `QuorumController` the way the shell does and checks, after every operation,
/// that the records it returned replay on a standby image to exactly the controller's image
/// and survive encoding.
final class ControllerHarness {
    private(set) var controller: QuorumController
    var now: Int64 = 0
    /// An image built only from the returned records, like a standby's or a broker's.
    private(set) var standby: MetadataImage
    /// Every record, in log order.
    private(set) var log: [MetadataRecord] = []
    /// Topic names by id, including deleted topics (for printing records).
    private(set) var names: [KafkaUUID: String] = [:]
    /// The incarnation id each broker registered with last.
    var incarnations: [Int32: KafkaUUID] = [:]

    static let clusterId = "MkU3OEVBNTcwNTJENDM2Qg"

    init(seed: UInt64 = 1, configure: (inout ControllerConfig) -> Void = { _ in }) {
        var config = ControllerConfig(nodeId: 3000, clusterId: Self.clusterId)
        configure(&config)
        controller = QuorumController(config: config, seed: seed, nowMs: 0)
        standby = MetadataImage()
        check(controller.bootstrapRecords(), from: 0)
    }

    var image: MetadataImage { controller.image }

    /// A leadership change: a new active controller built from the (committed) standby image.
    func failover(seed: UInt64) {
        controller = QuorumController(config: controller.config, image: standby, seed: seed, nowMs: now)
    }

    /// The offset of the last record generated (what a caught-up broker reports).
    var lastOffset: Int64 { controller.nextWriteOffset - 1 }

    /// Runs an operation, checks its records and returns its result.
    @discardableResult
    func run<R>(_ op: (QuorumController) -> ControllerResult<R>,
                file: StaticString = #filePath, line: UInt = #line) -> ControllerResult<R> {
        let start = controller.nextWriteOffset
        let result = op(controller)
        check(result.records, from: start, file: file, line: line)
        return result
    }

    @discardableResult
    func tick(to nowMs: Int64, file: StaticString = #filePath, line: UInt = #line) -> [MetadataRecord] {
        now = nowMs
        let start = controller.nextWriteOffset
        let records = controller.tick(nowMs: nowMs)
        check(records, from: start, file: file, line: line)
        return records
    }

    private func check(_ records: [MetadataRecord], from start: Int64, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(controller.nextWriteOffset - start, Int64(records.count), "one offset per record", file: file, line: line)
        var offset = start
        for r in records {
            if case let .topic(t) = r { names[t.topicId] = t.name }
            do {
                let decoded = try MetadataRecord.decode(try r.encode())
                XCTAssertEqual(decoded, r, "record survives encoding", file: file, line: line)
            } catch {
                XCTFail("cannot encode \(r): \(error)", file: file, line: line)
            }
            standby.replay(r, offset: offset)
            offset += 1
        }
        log.append(contentsOf: records)
        XCTAssertEqual(standby, controller.image, "replaying the records reproduces the controller's image", file: file, line: line)
    }

    // MARK: requests

    func registrationRequest(_ id: Int32, incarnation: KafkaUUID? = nil, rack: String? = nil,
                             mv: ClosedRange<Int16> = 1...21, dirs: Int = 1) -> BrokerRegistrationRequest {
        var r = BrokerRegistrationRequest()
        r.brokerId = id
        r.clusterId = Self.clusterId
        r.incarnationId = incarnation ?? KafkaUUID(high: 0x100, low: UInt64(id))
        var l = BrokerRegistrationRequest.Listener()
        l.name = "PLAINTEXT"
        l.host = "broker\(id)"
        l.port = 9092
        r.listeners = [l]
        var f = BrokerRegistrationRequest.Feature()
        f.name = "metadata.version"
        f.minSupportedVersion = mv.lowerBound
        f.maxSupportedVersion = mv.upperBound
        r.features = [f]
        r.rack = rack
        r.logDirs = (0..<dirs).map { KafkaUUID(high: 0x200 + UInt64(id), low: 0x1000 + UInt64($0)) }
        return r
    }

    @discardableResult
    func register(_ id: Int32, incarnation: KafkaUUID? = nil) -> BrokerRegistrationResponse {
        let req = registrationRequest(id, incarnation: incarnation)
        incarnations[id] = req.incarnationId
        return run { $0.registerBroker(req, nowMs: now) }.response
    }

    @discardableResult
    func heartbeat(_ id: Int32, offset: Int64? = nil, epoch: Int64? = nil, wantShutDown: Bool = false,
                   wantFence: Bool = false) -> BrokerHeartbeatResponse {
        var req = BrokerHeartbeatRequest()
        req.brokerId = id
        req.brokerEpoch = epoch ?? image.brokers[id]?.epoch ?? -1
        req.currentMetadataOffset = offset ?? lastOffset
        req.wantShutDown = wantShutDown
        req.wantFence = wantFence
        return run { $0.heartbeat(req, nowMs: now) }.response
    }

    /// Registers brokers and unfences them with caught-up heartbeats.
    func startBrokers(_ ids: [Int32]) {
        for id in ids { register(id) }
        for id in ids { heartbeat(id) }
    }

    @discardableResult
    func createTopic(_ name: String, partitions: Int32 = -1, rf: Int16 = -1, assignments: [[Int32]] = [],
                     configs: [String: String?] = [:], validateOnly: Bool = false,
                     version: Int16 = 7) -> CreateTopicsResponse.CreatableTopicResult {
        var req = CreateTopicsRequest()
        var t = CreateTopicsRequest.CreatableTopic()
        t.name = name
        t.numPartitions = partitions
        t.replicationFactor = rf
        t.assignments = assignments.enumerated().map {
            var a = CreateTopicsRequest.CreatableReplicaAssignment()
            a.partitionIndex = Int32($0.offset)
            a.brokerIds = $0.element
            return a
        }
        t.configs = configs.keys.sorted().map {
            var c = CreateTopicsRequest.CreatableTopicConfig()
            c.name = $0
            c.value = configs[$0] ?? nil
            return c
        }
        req.topics = [t]
        req.validateOnly = validateOnly
        return run { $0.createTopics(req, version: version) }.response.topics[0]
    }

    func partition(_ topic: String, _ p: Int32) -> PartitionImage? {
        image.topics[topic]?.partitions[p]
    }

    // MARK: printing

    func describe(_ r: MetadataRecord) -> String {
        func list(_ a: [Int32]) -> String { "[" + a.map(String.init).joined(separator: ",") + "]" }
        func name(_ id: KafkaUUID) -> String { names[id] ?? "\(id)" }
        switch r {
        case let .registerBroker(b):
            return "RegisterBroker id=\(b.brokerId) epoch=\(b.brokerEpoch) fenced=\(b.fenced)" + (b.rack.map { " rack=\($0)" } ?? "")
        case let .unregisterBroker(b):
            return "UnregisterBroker id=\(b.brokerId) epoch=\(b.brokerEpoch)"
        case let .topic(t):
            return "Topic \(t.name)"
        case let .partition(p):
            return "Partition \(name(p.topicId))-\(p.partitionId) replicas=\(list(p.replicas)) isr=\(list(p.isr)) leader=\(p.leader)"
        case let .partitionChange(c):
            var s = "PartitionChange \(name(c.topicId))-\(c.partitionId)"
            if c.leader != PartitionImage.noLeaderChange { s += " leader=\(c.leader)" }
            if let isr = c.isr { s += " isr=\(list(isr))" }
            if let reps = c.replicas { s += " replicas=\(list(reps))" }
            if c.leaderRecoveryState != -1 { s += " recovery=\(c.leaderRecoveryState)" }
            return s
        case let .config(c):
            let kind = ConfigResourceType(rawValue: c.resourceType).map { "\($0)" } ?? "\(c.resourceType)"
            return "Config \(kind):\(c.resourceName) \(c.name)=\(c.value ?? "null")"
        case let .brokerRegistrationChange(c):
            var s = "BrokerChange id=\(c.brokerId) epoch=\(c.brokerEpoch)"
            if c.fenced == 1 { s += " fence" }
            if c.fenced == -1 { s += " unfence" }
            if c.inControlledShutdown == 1 { s += " controlled-shutdown" }
            return s
        case let .fenceBroker(f): return "FenceBroker id=\(f.id) epoch=\(f.epoch)"
        case let .unfenceBroker(f): return "UnfenceBroker id=\(f.id) epoch=\(f.epoch)"
        case let .removeTopic(t): return "RemoveTopic \(name(t.topicId))"
        case let .featureLevel(f): return "FeatureLevel \(f.name)=\(f.featureLevel)"
        case let .producerIds(p): return "ProducerIds broker=\(p.brokerId) next=\(p.nextProducerId)"
        case let .registerController(c): return "RegisterController id=\(c.controllerId)"
        case .noOp: return "NoOp"
        case let .other(type, _, _): return "Other \(type)"
        }
    }

    /// The image, deterministically, without random topic ids.
    func describeImage() -> [String] {
        var out: [String] = []
        out.append("features: " + image.features.keys.sorted().map { "\($0)=\(image.features[$0] ?? 0)" }.joined(separator: " "))
        for id in image.brokers.keys.sorted() {
            guard let b = image.brokers[id] else { continue }
            let state = b.fenced ? "fenced" : b.inControlledShutdown ? "controlled-shutdown" : "active"
            out.append("broker \(id) epoch=\(b.epoch) \(state)")
        }
        for (t, pid, p) in image.allPartitions() {
            out.append(describePartition(t.name, pid, p))
        }
        for name in image.topicConfigs.keys.sorted() {
            let c = image.topicConfigs[name] ?? [:]
            out.append("config topic:\(name) " + c.keys.sorted().map { "\($0)=\(c[$0] ?? "")" }.joined(separator: " "))
        }
        for name in image.brokerConfigs.keys.sorted() {
            let c = image.brokerConfigs[name] ?? [:]
            out.append("config broker:\(name) " + c.keys.sorted().map { "\($0)=\(c[$0] ?? "")" }.joined(separator: " "))
        }
        if image.nextProducerId > 0 { out.append("nextProducerId: \(image.nextProducerId)") }
        return out
    }

    func describePartition(_ topic: String, _ pid: Int32, _ p: PartitionImage) -> String {
        func list(_ a: [Int32]) -> String { "[" + a.map(String.init).joined(separator: ",") + "]" }
        var s = "\(topic)-\(pid) replicas=\(list(p.replicas)) isr=\(list(p.isr)) leader=\(p.leader)"
            + " leaderEpoch=\(p.leaderEpoch) partitionEpoch=\(p.partitionEpoch)"
        if p.leaderRecoveryState != 0 { s += " recovering" }
        return s
    }
}

/// A seeded generator for tests.
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension ErrorCode {
    init(code: Int16) {
        self = ErrorCode(rawValue: code) ?? .unknownServerError
    }
}
