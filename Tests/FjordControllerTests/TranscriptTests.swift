import FjordController
import FjordMetadata
import FjordProtocol
import FjordWire
import Foundation
import XCTest

/// Runs the controller scenarios in `testdata/controller/*.txt`.
///
/// Each case is a command line, a `----` line and the expected output, ended by a blank
/// line. Lines starting with `#` between cases are comments. `FJORD_REWRITE=1` rewrites the
/// files with the actual output (review the diff).
///
/// Commands (any may take `now=MS` to set the clock first):
///
///     cluster [seed=N] [unclean] [no-rebalance] [imbalance-interval=MS] [partitions=N] [rf=N]
///     register-broker id=N [incarnation=N] [mv=MIN-MAX] [cluster=ID]
///     heartbeat id=N[,N...] [offset=N] [epoch=N] [shutdown] [fence]
///     unregister-broker id=N
///     create-topic NAME [partitions=N] [rf=N] [assign=1,2/2,3] [config.KEY=VALUE...] [validate-only] [v=N]
///     create-partitions NAME count=N [assign=1,2/2,3] [validate-only]
///     delete-topic NAME... [by-id]
///     alter-partition TOPIC-P isr=1,2 [broker=N] [leader-epoch=N] [partition-epoch=N] [recovery=N] [v=N]
///     elect preferred|unclean [TOPIC-P...]        (no partitions: all)
///     alter-config topic=NAME|broker=ID [set.K=V] [delete.K] [append.K=V] [subtract.K=V] [validate-only]
///     allocate-producer-ids id=N
///     tick now=MS
///     describe
final class TranscriptTests: XCTestCase {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("testdata/controller")
    }

    func testTranscripts() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".txt") }.sorted()
        XCTAssertFalse(files.isEmpty, "no transcripts in \(Self.directory.path)")
        for f in files {
            try runFile(Self.directory.appendingPathComponent(f))
        }
    }

    enum Item {
        case text(String)
        case scenario(command: String, expected: [String], line: Int)
    }

    static func parse(_ text: String) -> [Item] {
        var items: [Item] = []
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        var i = 0
        while i < lines.count {
            let line = lines[i]
            if line.hasPrefix("#") || line.trimmingCharacters(in: .whitespaces).isEmpty || i + 1 >= lines.count || lines[i + 1] != "----" {
                items.append(.text(line))
                i += 1
                continue
            }
            let start = i + 1
            i += 2
            var expected: [String] = []
            while i < lines.count, !lines[i].isEmpty {
                expected.append(lines[i])
                i += 1
            }
            if i < lines.count { i += 1 }  // the blank line that ends the case
            items.append(.scenario(command: line, expected: expected, line: start))
        }
        return items
    }

    func runFile(_ url: URL) throws {
        let text = try String(contentsOf: url, encoding: .utf8)
        let items = Self.parse(text)
        let rewrite = ProcessInfo.processInfo.environment["FJORD_REWRITE"] == "1"
        let runner = TranscriptRunner()
        var out: [String] = []
        for item in items {
            switch item {
            case let .text(t):
                out.append(t)
            case let .scenario(command, expected, line):
                let actual = runner.execute(command)
                out.append(command)
                out.append("----")
                out.append(contentsOf: actual)
                out.append("")
                if !rewrite, actual != expected {
                    XCTFail("""
                        \(url.lastPathComponent):\(line): \(command)
                        expected:
                        \(expected.joined(separator: "\n"))
                        actual:
                        \(actual.joined(separator: "\n"))
                        """)
                }
            }
        }
        if rewrite {
            try (out.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        }
    }
}

/// Executes transcript commands against a `ControllerHarness`.
final class TranscriptRunner {
    var h = ControllerHarness()

    struct Args {
        var positional: [String] = []
        var named: [String: String] = [:]
        var flags: Set<String> = []
        var ordered: [(String, String?)] = []

        init(_ words: ArraySlice<String>) {
            for w in words {
                if let eq = w.firstIndex(of: "=") {
                    let k = String(w[..<eq])
                    let v = String(w[w.index(after: eq)...])
                    named[k] = v
                    ordered.append((k, v))
                } else if w.hasPrefix("delete.") {
                    ordered.append((w, nil))
                } else {
                    flags.insert(w)
                    positional.append(w)
                }
            }
        }

        func int(_ k: String) -> Int64? { named[k].flatMap { Int64($0) } }
        func ints(_ k: String) -> [Int32]? {
            named[k].map { $0.split(separator: ",").compactMap { Int32($0) } }
        }
        func assignments(_ k: String) -> [[Int32]]? {
            named[k].map { $0.split(separator: "/").map { $0.split(separator: ",").compactMap { Int32($0) } } }
        }
    }

    func execute(_ command: String) -> [String] {
        let words = command.split(separator: " ").map(String.init)
        guard let verb = words.first else { return ["error: empty command"] }
        let args = Args(words.dropFirst())
        if let now = args.int("now") { h.now = now }
        let start = h.log.count
        var response: [String] = []
        switch verb {
        case "cluster":
            h = ControllerHarness(seed: UInt64(args.int("seed") ?? 1)) { c in
                if args.flags.contains("unclean") { c.uncleanLeaderElectionEnable = true }
                if args.flags.contains("no-rebalance") { c.autoLeaderRebalanceEnable = false }
                if let v = args.int("imbalance-interval") { c.leaderImbalanceCheckIntervalMs = v }
                if let v = args.int("partitions") { c.defaultNumPartitions = Int32(v) }
                if let v = args.int("rf") { c.defaultReplicationFactor = Int16(v) }
            }
            return h.log.map(h.describe)
        case "register-broker":
            let id = Int32(args.int("id") ?? 0)
            var req = h.registrationRequest(id, incarnation: args.int("incarnation").map { KafkaUUID(high: 0x300, low: UInt64($0)) })
            if let mv = args.named["mv"], let dash = mv.firstIndex(of: "-"), let lo = Int16(mv[..<dash]),
               let hi = Int16(mv[mv.index(after: dash)...]) {
                req.features[0].minSupportedVersion = lo
                req.features[0].maxSupportedVersion = hi
            }
            if let c = args.named["cluster"] { req.clusterId = c }
            let r = h.run { $0.registerBroker(req, nowMs: h.now) }.response
            response.append(r.errorCode == 0 ? "=> epoch=\(r.brokerEpoch)" : "=> error=\(ErrorCode(code: r.errorCode))")
        case "heartbeat":
            for id in args.ints("id") ?? [] {
                let r = h.heartbeat(id, offset: args.int("offset"), epoch: args.int("epoch"),
                                    wantShutDown: args.flags.contains("shutdown"), wantFence: args.flags.contains("fence"))
                if r.errorCode != 0 {
                    response.append("=> broker \(id): error=\(ErrorCode(code: r.errorCode))")
                } else {
                    response.append("=> broker \(id): caughtUp=\(r.isCaughtUp) fenced=\(r.isFenced) shutdown=\(r.shouldShutDown)")
                }
            }
        case "unregister-broker":
            var req = UnregisterBrokerRequest()
            req.brokerId = Int32(args.int("id") ?? 0)
            let r = h.run { $0.unregisterBroker(req) }.response
            response.append("=> " + result(r.errorCode, r.errorMessage))
        case "create-topic":
            let name = args.positional.first ?? ""
            var configs: [String: String?] = [:]
            for (k, v) in args.ordered where k.hasPrefix("config.") { configs[String(k.dropFirst(7))] = v }
            let r = h.createTopic(name, partitions: Int32(args.int("partitions") ?? -1), rf: Int16(args.int("rf") ?? -1),
                                  assignments: args.assignments("assign") ?? [], configs: configs,
                                  validateOnly: args.flags.contains("validate-only"), version: Int16(args.int("v") ?? 7))
            if r.errorCode == 0 {
                response.append("=> \(r.name): ok partitions=\(r.numPartitions) rf=\(r.replicationFactor)")
            } else {
                response.append("=> \(r.name): " + result(r.errorCode, r.errorMessage))
            }
        case "create-partitions":
            var req = CreatePartitionsRequest()
            var t = CreatePartitionsRequest.CreatePartitionsTopic()
            t.name = args.positional.first ?? ""
            t.count = Int32(args.int("count") ?? 0)
            t.assignments = args.assignments("assign")?.map {
                var a = CreatePartitionsRequest.CreatePartitionsAssignment()
                a.brokerIds = $0
                return a
            }
            req.topics = [t]
            req.validateOnly = args.flags.contains("validate-only")
            let r = h.run { $0.createPartitions(req) }.response.results[0]
            response.append("=> \(r.name): " + result(r.errorCode, r.errorMessage))
        case "delete-topic":
            let names = args.positional.filter { $0 != "by-id" }
            var req = DeleteTopicsRequest()
            if args.flags.contains("by-id") {
                req.topics = names.map {
                    var s = DeleteTopicsRequest.DeleteTopicState()
                    s.topicId = h.image.topics[$0]?.id ?? KafkaUUID(high: 7, low: 7)
                    return s
                }
            } else {
                req.topics = names.map {
                    var s = DeleteTopicsRequest.DeleteTopicState()
                    s.name = $0
                    return s
                }
            }
            let r = h.run { $0.deleteTopics(req, version: 6) }.response
            for t in r.responses { response.append("=> \(t.name ?? "(unknown id)"): " + result(t.errorCode, t.errorMessage)) }
        case "alter-partition":
            guard let (topic, pid) = topicPartition(args.positional.first ?? "") else { return ["error: no partition"] }
            let p = h.partition(topic, pid)
            let version = Int16(args.int("v") ?? 3)
            let broker = Int32(args.int("broker") ?? Int64(p?.leader ?? -1))
            var req = AlterPartitionRequest()
            req.brokerId = broker
            req.brokerEpoch = h.image.brokers[broker]?.epoch ?? -1
            var td = AlterPartitionRequest.TopicData()
            td.topicName = topic
            td.topicId = h.image.topics[topic]?.id ?? .zero
            var pd = AlterPartitionRequest.PartitionData()
            pd.partitionIndex = pid
            pd.leaderEpoch = Int32(args.int("leader-epoch") ?? Int64(p?.leaderEpoch ?? 0))
            pd.partitionEpoch = Int32(args.int("partition-epoch") ?? Int64(p?.partitionEpoch ?? 0))
            pd.leaderRecoveryState = Int8(args.int("recovery") ?? Int64(p?.leaderRecoveryState ?? 0))
            let isr = args.ints("isr") ?? []
            if version >= 3 {
                pd.newIsrWithEpochs = isr.map {
                    var s = AlterPartitionRequest.BrokerState()
                    s.brokerId = $0
                    s.brokerEpoch = h.image.brokers[$0]?.epoch ?? -1
                    return s
                }
            } else {
                pd.newIsr = isr
            }
            td.partitions = [pd]
            req.topics = [td]
            let r = h.run { $0.alterPartition(req, version: version) }.response
            if r.errorCode != 0 {
                response.append("=> error=\(ErrorCode(code: r.errorCode))")
            }
            for t in r.topics {
                for x in t.partitions {
                    if x.errorCode == 0 {
                        response.append("=> \(topic)-\(x.partitionIndex): ok leader=\(x.leaderId) leaderEpoch=\(x.leaderEpoch) "
                            + "isr=[\(x.isr.map(String.init).joined(separator: ","))] partitionEpoch=\(x.partitionEpoch)")
                    } else {
                        response.append("=> \(topic)-\(x.partitionIndex): error=\(ErrorCode(code: x.errorCode))")
                    }
                }
            }
        case "elect":
            var req = ElectLeadersRequest()
            req.electionType = args.flags.contains("unclean") ? 1 : 0
            let parts = args.positional.filter { $0 != "preferred" && $0 != "unclean" }.compactMap(topicPartition)
            if parts.isEmpty {
                req.topicPartitions = nil
            } else {
                var byTopic: [String: [Int32]] = [:]
                var order: [String] = []
                for (t, p) in parts {
                    if byTopic[t] == nil { order.append(t) }
                    byTopic[t, default: []].append(p)
                }
                req.topicPartitions = order.map {
                    var tp = ElectLeadersRequest.TopicPartitions()
                    tp.topic = $0
                    tp.partitions = byTopic[$0] ?? []
                    return tp
                }
            }
            let r = h.run { $0.electLeaders(req) }.response
            for t in r.replicaElectionResults {
                for p in t.partitionResult { response.append("=> \(t.topic)-\(p.partitionId): " + result(p.errorCode, p.errorMessage)) }
            }
        case "alter-config":
            var req = IncrementalAlterConfigsRequest()
            var res = IncrementalAlterConfigsRequest.AlterConfigsResource()
            if let t = args.named["topic"] {
                res.resourceType = ConfigResourceType.topic.rawValue
                res.resourceName = t
            } else {
                res.resourceType = ConfigResourceType.broker.rawValue
                res.resourceName = args.named["broker"] ?? ""
            }
            for (k, v) in args.ordered {
                let ops: [(String, Int8)] = [("set.", 0), ("delete.", 1), ("append.", 2), ("subtract.", 3)]
                guard let (prefix, op) = ops.first(where: { k.hasPrefix($0.0) }) else { continue }
                var c = IncrementalAlterConfigsRequest.AlterableConfig()
                c.name = String(k.dropFirst(prefix.count))
                c.configOperation = op
                c.value = v
                res.configs.append(c)
            }
            req.resources = [res]
            req.validateOnly = args.flags.contains("validate-only")
            let r = h.run { $0.incrementalAlterConfigs(req) }.response.responses[0]
            response.append("=> " + result(r.errorCode, r.errorMessage))
        case "allocate-producer-ids":
            var req = AllocateProducerIdsRequest()
            req.brokerId = Int32(args.int("id") ?? 0)
            req.brokerEpoch = h.image.brokers[req.brokerId]?.epoch ?? -1
            let r = h.run { $0.allocateProducerIds(req) }.response
            response.append(r.errorCode == 0 ? "=> start=\(r.producerIdStart) len=\(r.producerIdLen)"
                                             : "=> error=\(ErrorCode(code: r.errorCode))")
        case "tick":
            h.tick(to: h.now)
        case "describe":
            return h.describeImage()
        default:
            return ["error: unknown command \(verb)"]
        }
        var out = h.log[start...].map(h.describe)
        out.append(contentsOf: response)
        return out.isEmpty ? ["(nothing)"] : out
    }

    func result(_ code: Int16, _ message: String?) -> String {
        if code == 0 { return "ok" }
        return "error=\(ErrorCode(code: code))" + (message.map { " \($0)" } ?? "")
    }

    func topicPartition(_ s: String) -> (String, Int32)? {
        guard let dash = s.lastIndex(of: "-"), let p = Int32(s[s.index(after: dash)...]) else { return nil }
        return (String(s[..<dash]), p)
    }
}
