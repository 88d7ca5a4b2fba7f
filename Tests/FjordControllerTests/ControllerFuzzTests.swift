import FjordController
import FjordMetadata
import FjordProtocol
import FjordWire
import XCTest

/// Random operations, ticks and failovers from a seed; after every step the image must keep
/// the partition invariants, epochs must not go back, and (checked by the harness) the
/// returned records must replay to the controller's image.
final class ControllerFuzzTests: XCTestCase {
    struct PartitionKey: Hashable {
        var topic: KafkaUUID
        var partition: Int32
    }

    func testRandomOperationsKeepInvariants() {
        let seeds = ProcessInfo.processInfo.environment["FJORD_FUZZ_SEEDS"].flatMap(Int.init) ?? 40
        var seen = Set<String>()
        for seed in 1...UInt64(seeds) {
            for r in run(seed: seed, steps: 400) { seen.insert(Self.kind(r)) }
        }
        // The runs reach the interesting transitions.
        for k in ["fence", "unfence", "controlled-shutdown", "leaderless", "unclean", "isr", "leader", "remove-topic", "unregister"] {
            XCTAssertTrue(seen.contains(k), "no \(k) in any run: \(seen.sorted())")
        }
    }

    static func kind(_ r: MetadataRecord) -> String {
        switch r {
        case let .brokerRegistrationChange(c):
            return c.fenced == 1 ? "fence" : c.fenced == -1 ? "unfence" : "controlled-shutdown"
        case let .partitionChange(c):
            if c.leaderRecoveryState == 1 { return "unclean" }
            if c.leader == -1 { return "leaderless" }
            return c.leader == PartitionImage.noLeaderChange ? "isr" : "leader"
        case .removeTopic: return "remove-topic"
        case .unregisterBroker: return "unregister"
        default: return "\(r.type)"
        }
    }

    func run(seed: UInt64, steps: Int) -> [MetadataRecord] {
        var rng = TestRandom(seed: seed)
        let uncleanDefault = seed % 4 == 0
        let h = ControllerHarness(seed: seed) {
            $0.uncleanLeaderElectionEnable = uncleanDefault
            $0.leaderImbalanceCheckIntervalMs = 20_000
        }
        var epochs: [PartitionKey: (leader: Int32, leaderEpoch: Int32, partitionEpoch: Int32)] = [:]
        let topicNames = ["a", "b", "c", "d", "e"]
        var lastAction = ""
        for step in 0..<steps {
            var afterTick = false
            let roll = Int.random(in: 0..<100, using: &rng)
            switch roll {
            case 0..<10:
                let id = Int32.random(in: 1...5, using: &rng)
                let fresh = Int.random(in: 0..<3, using: &rng) == 0
                let inc = fresh ? KafkaUUID(high: 0x500, low: rng.next()) : (h.incarnations[id] ?? KafkaUUID(high: 0x100, low: UInt64(id)))
                lastAction = "register \(id)"
                h.register(id, incarnation: inc)
            case 10..<30:
                guard let id = h.image.brokers.keys.sorted().randomElement(using: &rng) else { continue }
                let behind = Int.random(in: 0..<5, using: &rng) == 0
                let offset = behind ? max(0, h.lastOffset - Int64.random(in: 0...20, using: &rng)) : h.lastOffset
                let shutdown = Int.random(in: 0..<12, using: &rng) == 0
                let fence = Int.random(in: 0..<25, using: &rng) == 0
                lastAction = "heartbeat \(id) offset=\(offset) shutdown=\(shutdown) fence=\(fence)"
                h.heartbeat(id, offset: offset, wantShutDown: shutdown, wantFence: fence)
            case 30..<45:
                h.now += Int64.random(in: 0...4_000, using: &rng)
                for (id, b) in h.image.brokers.sorted(by: { $0.key < $1.key }) where !b.fenced && Int.random(in: 0..<6, using: &rng) != 0 {
                    h.heartbeat(id)
                }
                lastAction = "tick \(h.now)"
                h.tick(to: h.now)
                afterTick = true
            case 45..<55:
                let name = topicNames.randomElement(using: &rng) ?? "a"
                lastAction = "create \(name)"
                h.createTopic(name, partitions: Int32.random(in: 1...6, using: &rng), rf: Int16.random(in: 1...3, using: &rng))
            case 55..<60:
                guard let (name, t) = h.image.topics.sorted(by: { $0.key < $1.key }).randomElement(using: &rng) else { continue }
                var req = CreatePartitionsRequest()
                var tp = CreatePartitionsRequest.CreatePartitionsTopic()
                tp.name = name
                tp.count = Int32(t.partitions.count) + Int32.random(in: -1...3, using: &rng)
                tp.assignments = nil
                req.topics = [tp]
                lastAction = "create-partitions \(name) \(tp.count)"
                h.run { $0.createPartitions(req) }
            case 60..<64:
                guard let name = h.image.topics.keys.sorted().randomElement(using: &rng) else { continue }
                var req = DeleteTopicsRequest()
                req.topicNames = [name]
                lastAction = "delete \(name)"
                h.run { $0.deleteTopics(req, version: 5) }
            case 64..<84:
                let led = h.image.allPartitions().filter { $0.partition.hasLeader }
                guard let (t, pid, p) = led.randomElement(using: &rng) else { continue }
                var isr = p.isr
                if Bool.random(using: &rng), let victim = isr.filter({ $0 != p.leader }).randomElement(using: &rng) {
                    isr.removeAll { $0 == victim }
                } else if let joiner = p.replicas.filter({ !isr.contains($0) }).randomElement(using: &rng) {
                    isr.append(joiner)
                }
                var req = AlterPartitionRequest()
                req.brokerId = p.leader
                req.brokerEpoch = h.image.brokers[p.leader]?.epoch ?? -1
                var td = AlterPartitionRequest.TopicData()
                td.topicId = t.id
                var pd = AlterPartitionRequest.PartitionData()
                pd.partitionIndex = pid
                let stale = Int.random(in: 0..<8, using: &rng) == 0
                pd.leaderEpoch = p.leaderEpoch - (stale ? 1 : 0)
                pd.partitionEpoch = p.partitionEpoch
                pd.leaderRecoveryState = 0
                pd.newIsr = isr
                td.partitions = [pd]
                req.topics = [td]
                lastAction = "alter-partition \(t.name)-\(pid) isr=\(isr)"
                h.run { $0.alterPartition(req, version: 2) }
            case 84..<90:
                var req = ElectLeadersRequest()
                req.electionType = Int8.random(in: 0...1, using: &rng)
                if Bool.random(using: &rng) {
                    req.topicPartitions = nil
                } else if let (t, pid, _) = h.image.allPartitions().randomElement(using: &rng) {
                    var tp = ElectLeadersRequest.TopicPartitions()
                    tp.topic = t.name
                    tp.partitions = [pid]
                    req.topicPartitions = [tp]
                }
                lastAction = "elect \(req.electionType)"
                h.run { $0.electLeaders(req) }
            case 90..<93:
                guard let id = h.image.brokers.keys.sorted().randomElement(using: &rng) else { continue }
                var req = UnregisterBrokerRequest()
                req.brokerId = id
                lastAction = "unregister \(id)"
                h.run { $0.unregisterBroker(req) }
            case 93..<96:
                guard let name = h.image.topics.keys.sorted().randomElement(using: &rng) else { continue }
                var req = IncrementalAlterConfigsRequest()
                var res = IncrementalAlterConfigsRequest.AlterConfigsResource()
                res.resourceType = ConfigResourceType.topic.rawValue
                res.resourceName = name
                var c = IncrementalAlterConfigsRequest.AlterableConfig()
                c.name = "unclean.leader.election.enable"
                c.configOperation = Bool.random(using: &rng) ? 0 : 1
                c.value = Bool.random(using: &rng) ? "true" : "false"
                res.configs = [c]
                req.resources = [res]
                lastAction = "config \(name)"
                h.run { $0.incrementalAlterConfigs(req) }
            default:
                lastAction = "failover"
                h.failover(seed: rng.next())
            }
            check(h, &epochs, afterTick: afterTick, context: "seed \(seed) step \(step) after \(lastAction)")
        }
        return h.log
    }

    func check(_ h: ControllerHarness, _ epochs: inout [PartitionKey: (leader: Int32, leaderEpoch: Int32, partitionEpoch: Int32)],
               afterTick: Bool, context: String) {
        let image = h.image
        var seen = Set<PartitionKey>()
        for (t, pid, p) in image.allPartitions() {
            let where_ = "\(t.name)-\(pid) \(h.describePartition(t.name, pid, p)) — \(context)"
            XCTAssertFalse(p.isr.isEmpty, "empty ISR: \(where_)")
            XCTAssertEqual(Set(p.isr).count, p.isr.count, "duplicate ISR member: \(where_)")
            XCTAssertTrue(p.isr.allSatisfy(p.replicas.contains), "ISR outside the replicas: \(where_)")
            if p.hasLeader {
                XCTAssertTrue(p.isr.contains(p.leader), "leader not in ISR: \(where_)")
                XCTAssertTrue(image.isActive(broker: p.leader), "fenced or shutting-down leader: \(where_)")
            } else {
                XCTAssertFalse(p.isr.contains { image.isActive(broker: $0) }, "leaderless with an active ISR member: \(where_)")
                if afterTick && h.controllerUncleanEnabled(t.name) {
                    XCTAssertFalse(p.replicas.contains { image.isActive(broker: $0) },
                                   "leaderless with a live replica and unclean election on: \(where_)")
                }
            }
            let key = PartitionKey(topic: t.id, partition: pid)
            seen.insert(key)
            if let prev = epochs[key] {
                XCTAssertGreaterThanOrEqual(p.leaderEpoch, prev.leaderEpoch, "leader epoch went back: \(where_)")
                XCTAssertGreaterThanOrEqual(p.partitionEpoch, prev.partitionEpoch, "partition epoch went back: \(where_)")
                if p.leader != prev.leader {
                    XCTAssertGreaterThan(p.leaderEpoch, prev.leaderEpoch, "leader changed without a new epoch: \(where_)")
                }
            }
            epochs[key] = (p.leader, p.leaderEpoch, p.partitionEpoch)
        }
        for k in epochs.keys where !seen.contains(k) { epochs[k] = nil }
        for b in image.brokers.values where b.fenced {
            XCTAssertTrue(image.partitionsLed(by: b.id).isEmpty, "fenced broker \(b.id) leads — \(context)")
        }
    }
}

extension ControllerHarness {
    /// Whether unclean election is on for `topic` (topic config, cluster config, default).
    func controllerUncleanEnabled(_ topic: String) -> Bool {
        let key = "unclean.leader.election.enable"
        if let v = image.topicConfigs[topic]?[key] ?? image.brokerConfigs[""]?[key] { return v == "true" }
        return controller.config.uncleanLeaderElectionEnable
    }
}
