import FjordTestSupport
import Foundation
import XCTest

/// The operator tools as a user runs them: real `fjord` processes, outputs compared with
/// Kafka's formats (volatile fields — topic ids, timestamps, leaders — masked).
final class ToolsCLITests: XCTestCase {
    struct Run {
        var status: Int32
        var out: String
        var err: String
    }

    /// Runs `fjord args` with `stdin`, bounded by `timeout` seconds.
    func fjord(_ args: [String], stdin: String = "", env: [String: String] = [:], timeout: Double = 60) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try LocalCluster.fjordBinary())
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = errPipe
        try p.run()
        final class Box: @unchecked Sendable { var out = Data(); var err = Data() }
        let box = Box()
        let g = DispatchGroup()
        g.enter(); DispatchQueue.global().async { box.out = outPipe.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        g.enter(); DispatchQueue.global().async { box.err = errPipe.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        inPipe.fileHandleForWriting.write(Data(stdin.utf8))
        try? inPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            g.wait()
            XCTFail("fjord \(args.joined(separator: " ")) timed out after \(timeout) s; stderr: \(String(decoding: box.err, as: UTF8.self))")
            return Run(status: 124, out: String(decoding: box.out, as: UTF8.self), err: String(decoding: box.err, as: UTF8.self))
        }
        g.wait()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, out: String(decoding: box.out, as: UTF8.self), err: String(decoding: box.err, as: UTF8.self))
    }

    /// Runs and expects success; returns stdout.
    @discardableResult
    func ok(_ args: [String], stdin: String = "", file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try fjord(args, stdin: stdin)
        XCTAssertEqual(r.status, 0, "fjord \(args.joined(separator: " ")): \(r.err)", file: file, line: line)
        return r.out
    }

    /// Masks `TopicId: …`, leader ids and replica lists.
    func mask(_ s: String) -> String {
        var out: [String] = []
        for line in s.split(separator: "\n", omittingEmptySubsequences: false) {
            var l = String(line)
            l = l.replacingOccurrences(of: #"TopicId: [A-Za-z0-9_-]{22}"#, with: "TopicId: <id>", options: .regularExpression)
            l = l.replacingOccurrences(of: #"Leader: [0-9]+"#, with: "Leader: <n>", options: .regularExpression)
            l = l.replacingOccurrences(of: #"(Replicas|Isr): [0-9,]+"#, with: "$1: <ids>", options: .regularExpression)
            l = l.replacingOccurrences(of: #"(CreateTime|LogAppendTime):[0-9]+"#, with: "$1:<ts>", options: .regularExpression)
            out.append(l)
        }
        return out.joined(separator: "\n")
    }

    func testTopicsGolden() throws {
        let c = try LocalCluster(count: 3)
        defer { c.stopAll() }
        try c.startAll()
        let bs = ["--bootstrap-server", c.bootstrap]
        XCTAssertEqual(try ok(["topics"] + bs + ["--create", "--topic", "orders", "--partitions", "3", "--replication-factor", "3",
                                                "--config", "retention.ms=3600000", "--config", "cleanup.policy=delete"]),
                       "Created topic orders.\n")
        let dup = try fjord(["topics"] + bs + ["--create", "--topic", "orders", "--partitions", "1"])
        XCTAssertEqual(dup.status, 1)
        XCTAssertEqual(dup.err, "Error while executing topic command : Topic 'orders' already exists. Describe it with `fjord topics --describe --topic orders`, or add --if-not-exists.\n")
        XCTAssertEqual(try fjord(["topics"] + bs + ["--create", "--topic", "orders", "--if-not-exists"]).status, 0)
        XCTAssertEqual(try ok(["topics"] + bs + ["--list"]), "orders\n")

        let describe = try ok(["topics"] + bs + ["--describe", "--topic", "orders"])
        XCTAssertEqual(mask(describe), """
            Topic: orders\tTopicId: <id>\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: cleanup.policy=delete,min.insync.replicas=2,retention.ms=3600000
            \tTopic: orders\tPartition: 0\tLeader: <n>\tReplicas: <ids>\tIsr: <ids>
            \tTopic: orders\tPartition: 1\tLeader: <n>\tReplicas: <ids>\tIsr: <ids>
            \tTopic: orders\tPartition: 2\tLeader: <n>\tReplicas: <ids>\tIsr: <ids>

            """)
        // Unmasked facts: three replicas on three brokers, all in sync, leaders spread.
        let partLines = describe.split(separator: "\n").dropFirst()
        var leaders = Set<String>()
        for l in partLines {
            let f = Dictionary(uniqueKeysWithValues: l.split(separator: "\t").compactMap { kv -> (String, String)? in
                let p = kv.components(separatedBy: ": ")
                return p.count == 2 ? (p[0], p[1]) : nil
            })
            XCTAssertEqual(Set(f["Replicas"]!.split(separator: ",")), ["1", "2", "3"])
            XCTAssertEqual(Set(f["Isr"]!.split(separator: ",")), ["1", "2", "3"])
            leaders.insert(f["Leader"]!)
        }
        XCTAssertEqual(leaders.count, 3)
        let json = try ok(["topics"] + bs + ["--describe", "--topic", "orders", "--output", "json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [[String: Any]]
        XCTAssertEqual(parsed.first?["partitionCount"] as? Int, 3)

        let down = try fjord(["topics"] + bs + ["--alter", "--topic", "orders", "--partitions", "2"])
        XCTAssertEqual(down.status, 1)
        XCTAssertEqual(down.err, "Error while executing topic command : The number of partitions for a topic can only be increased. Topic orders currently has 3 partitions, 2 would not be an increase. To have fewer partitions, create a new topic and copy the data.\n")
        let rf = try fjord(["topics"] + bs + ["--alter", "--topic", "orders", "--partitions", "4", "--replication-factor", "2"])
        XCTAssertNotEqual(rf.status, 0)
        XCTAssertTrue(rf.err.contains("--replication-factor cannot be changed with --alter: a topic's replicas move with a partition reassignment"), rf.err)
        XCTAssertEqual(try ok(["topics"] + bs + ["--alter", "--topic", "orders", "--partitions", "5"]), "")
        XCTAssertTrue(try ok(["topics"] + bs + ["--describe", "--topic", "orders"]).hasPrefix("Topic: orders\tTopicId: "))
        XCTAssertEqual(try ok(["topics"] + bs + ["--describe", "--topic", "ord.*"]).split(separator: "\n").count, 6)
        XCTAssertEqual(try ok(["topics"] + bs + ["--describe", "--under-replicated-partitions"]), "")
        XCTAssertEqual(try ok(["topics"] + bs + ["--describe", "--unavailable-partitions"]), "")

        // One replica per partition: the partitions broker 3 holds become unavailable with it.
        try ok(["topics"] + bs + ["--create", "--topic", "single", "--partitions", "3", "--replication-factor", "1"])
        let onThree = try XCTUnwrap(LocalCluster.eventually(15) { () throws -> [String]? in
            let d = try ok(["topics"] + bs + ["--describe", "--topic", "single"]).split(separator: "\n").dropFirst()
            guard d.count == 3, d.allSatisfy({ !$0.contains("Leader: none") }) else { return nil }
            return d.filter { $0.contains("\tReplicas: 3\t") }.map { String($0.components(separatedBy: "\tLeader: ")[0]) }
        })
        XCTAssertFalse(onThree.isEmpty, "the three single-replica partitions are spread over the brokers")

        // A dead broker: its partitions are under-replicated; the single-replica ones on it
        // have no leader.
        c.kill9(3)
        let live = "127.0.0.1:\(c.brokerPorts[1]!)"
        let under = try LocalCluster.eventually(15) { () throws -> String? in
            let o = try ok(["topics", "--bootstrap-server", live, "--describe", "--under-replicated-partitions"])
            return o.split(separator: "\n").filter { $0.hasPrefix("\tTopic: orders\t") }.count == 5 ? o : nil
        }
        XCTAssertNotNil(under)
        for l in (under ?? "").split(separator: "\n") where l.hasPrefix("\tTopic: orders\t") {
            XCTAssertFalse(l.components(separatedBy: "Isr: ")[1].contains("3"), String(l))
        }
        let unavailable = try LocalCluster.eventually(15) { () throws -> String? in
            let o = try ok(["topics", "--bootstrap-server", live, "--describe", "--unavailable-partitions"])
            return o.split(separator: "\n").count == onThree.count ? o : nil
        }
        for l in (unavailable ?? "").split(separator: "\n") {
            XCTAssertTrue(onThree.contains(String(l.components(separatedBy: "\tLeader: ")[0])), String(l))
            XCTAssertTrue(l.contains("\tLeader: none\t"), String(l))
        }
        XCTAssertNotNil(unavailable, "the partitions of the dead broker are listed as unavailable")
        XCTAssertEqual(try ok(["topics", "--bootstrap-server", live, "--delete", "--topic", "single"]), "")

        XCTAssertEqual(try ok(["topics", "--bootstrap-server", live, "--delete", "--topic", "orders"]), "")
        XCTAssertEqual(try ok(["topics", "--bootstrap-server", live, "--list"]), "")
        let missing = try fjord(["topics", "--bootstrap-server", live, "--describe", "--topic", "orders"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.err.hasPrefix("Error while executing topic command : Topic 'orders' does not exist as expected."), missing.err)
        let unreachable = try fjord(["topics", "--bootstrap-server", "127.0.0.1:1", "--list"])
        XCTAssertEqual(unreachable.status, 1)
        XCTAssertTrue(unreachable.err.contains("could not reach any broker"), unreachable.err)
    }

    func testConfigsAndLeaderElectionGolden() throws {
        let c = try LocalCluster(count: 3)
        defer { c.stopAll() }
        try c.startAll()
        let bs = ["--bootstrap-server", c.bootstrap]
        try ok(["topics"] + bs + ["--create", "--topic", "t", "--partitions", "2", "--replication-factor", "3"])
        let cfg = ["configs"] + bs + ["--entity-type", "topics", "--entity-name", "t"]
        XCTAssertEqual(try ok(cfg + ["--describe"]), "Dynamic configs for topic t are:\n")
        XCTAssertEqual(try ok(cfg + ["--alter", "--add-config", "retention.ms=3600000,cleanup.policy=[compact,delete]"]),
                       "Completed updating config for topic t.\n")
        let described = try ok(cfg + ["--describe"])
        let lines = described.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "Dynamic configs for topic t are:")
        XCTAssertEqual(lines.count, 3, described)
        XCTAssertTrue(lines[1].hasPrefix("  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete"), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("  retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000"), lines[2])
        XCTAssertTrue(try ok(cfg + ["--describe", "--all"]).hasPrefix("All configs for topic t are:\n"))
        XCTAssertEqual(try ok(cfg + ["--alter", "--delete-config", "cleanup.policy"]), "Completed updating config for topic t.\n")
        XCTAssertEqual(try ok(cfg + ["--describe"]).split(separator: "\n").count, 2)
        let bad = try fjord(cfg + ["--alter", "--delete-config", "nope"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.err.hasPrefix("Error: Invalid config(s): nope"), bad.err)
        XCTAssertTrue(try ok(["configs"] + bs + ["--entity-type", "brokers", "--entity-name", "1", "--describe"]).hasPrefix("Dynamic configs for broker 1 are:\n"))
        XCTAssertTrue(try ok(["configs"] + bs + ["--entity-type", "brokers", "--entity-default", "--describe"]).hasPrefix("Default configs for brokers in the cluster are:\n"))
        // A broker key Kafka cannot reload is refused; a dynamic one is taken.
        let fixed = try fjord(["configs"] + bs + ["--entity-type", "brokers", "--entity-name", "1", "--alter", "--add-config", "log.dirs=/tmp/x"])
        XCTAssertEqual(fixed.status, 1)
        XCTAssertTrue(fixed.err.contains("Cannot update these configs dynamically: Set(log.dirs)"), fixed.err)
        XCTAssertEqual(try ok(["configs"] + bs + ["--entity-type", "brokers", "--entity-name", "1", "--alter", "--add-config", "log.cleaner.threads=2"]),
                       "Completed updating config for broker 1.\n")
        let brokerDescribe = try LocalCluster.eventually(10) { () throws -> String? in
            let d = try ok(["configs"] + bs + ["--entity-type", "brokers", "--entity-name", "1", "--describe"])
            return d.contains("log.cleaner.threads=2") ? d : nil
        }
        XCTAssertTrue(brokerDescribe?.contains("  log.cleaner.threads=2 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.cleaner.threads=2") == true,
                      brokerDescribe ?? "")
        // A cluster-wide dynamic default shows as the topic's value, with its source.
        XCTAssertEqual(try ok(["configs"] + bs + ["--entity-type", "brokers", "--entity-default", "--alter", "--add-config", "log.retention.ms=600000"]),
                       "Completed updating default config for brokers in the cluster.\n")
        try ok(["topics"] + bs + ["--create", "--topic", "dflt", "--partitions", "1", "--replication-factor", "1"])
        let topicAll = try LocalCluster.eventually(10) { () throws -> String? in
            let d = try ok(["configs"] + bs + ["--entity-type", "topics", "--entity-name", "dflt", "--describe", "--all"])
            return d.contains("retention.ms=600000") ? d : nil
        }
        XCTAssertTrue(topicAll?.contains("  retention.ms=600000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=600000") == true,
                      topicAll ?? "")
        XCTAssertEqual(try fjord(["configs"] + bs + ["--entity-type", "users", "--entity-name", "x", "--describe"]).status, 64)

        XCTAssertEqual(try ok(["cluster-id"] + bs), "Cluster ID: \(c.clusterId)\n")
        let versions = try ok(["broker-api-versions"] + bs)
        XCTAssertEqual(versions.components(separatedBy: " -> (\n").count, 4, versions)
        XCTAssertTrue(versions.contains("(id: 1 rack: null) -> (\n"), versions)
        XCTAssertNotNil(versions.range(of: #"\n\tProduce\(0\): [0-9]+ to [0-9]+ \[usable: [0-9]+\],\n"#, options: .regularExpression), versions)
        XCTAssertNotNil(versions.range(of: #"\n\tFetch\(1\): [0-9]+ to [0-9]+ \[usable: [0-9]+\],\n"#, options: .regularExpression), versions)

        // Move partition 0's leadership away from its preferred replica, then elect it back.
        let describe = try ok(["topics"] + bs + ["--describe", "--topic", "t"])
        let p0 = describe.split(separator: "\n")[1]
        let preferred = Int32(p0.components(separatedBy: "Replicas: ")[1].split(separator: ",")[0])!
        c.kill9(preferred)
        let other = c.nodes.first { $0 != preferred }!
        let liveBs = ["--bootstrap-server", "127.0.0.1:\(c.brokerPorts[other]!)"]
        _ = try LocalCluster.eventually(15) { () throws -> Bool? in
            try ok(["topics"] + liveBs + ["--describe", "--topic", "t"]).split(separator: "\n")[1].contains("Leader: \(preferred)\t") ? nil : true
        }
        try c.start(preferred)
        try c.waitForBroker(preferred)
        let back = try LocalCluster.eventually(30) { () throws -> Bool? in
            let d = try ok(["topics"] + liveBs + ["--describe", "--topic", "t"])
            return d.split(separator: "\n")[1].components(separatedBy: "Isr: ")[1].split(separator: ",").count == 3 ? true : nil
        }
        XCTAssertNotNil(back, "the restarted broker rejoins the ISR")
        let election = try ok(["leader-election"] + liveBs + ["--election-type", "preferred", "--topic", "t", "--partition", "0"])
        XCTAssertEqual(election, "Successfully completed leader election (PREFERRED) for partitions t-0\n")
        let again = try ok(["leader-election"] + liveBs + ["--election-type", "preferred", "--topic", "t", "--partition", "0"])
        XCTAssertEqual(again, "Valid replica already elected for partitions t-0\n")
        // An unclean election where the leader is alive changes nothing; every partition at once.
        let unclean = try ok(["leader-election"] + liveBs + ["--election-type", "unclean", "--topic", "t", "--partition", "1"])
        XCTAssertEqual(unclean, "Valid replica already elected for partitions t-1\n")
        let all = try ok(["leader-election"] + liveBs + ["--election-type", "preferred", "--all-topic-partitions"])
        // (Partitions whose preferred leader already leads are left out of an all-partitions answer.)
        for line in all.split(separator: "\n") {
            XCTAssertTrue(line.hasPrefix("Successfully completed leader election (PREFERRED) for partitions ")
                          || line.hasPrefix("Valid replica already elected for partitions "), String(line))
        }
        let usage = try fjord(["leader-election"] + liveBs + ["--election-type", "preferred"])
        XCTAssertEqual(usage.status, 64)
        XCTAssertTrue(usage.err.contains("One and only one of the following options is required"), usage.err)
    }

    func testConsoleProducerConsumerAndPerfGolden() throws {
        let c = try LocalCluster(count: 1)
        defer { c.stopAll() }
        try c.startAll()
        let bs = ["--bootstrap-server", c.bootstrap]
        try ok(["topics"] + bs + ["--create", "--topic", "lines", "--partitions", "1", "--replication-factor", "1"])
        XCTAssertEqual(try ok(["console-producer"] + bs + ["--topic", "lines", "--property", "parse.key=true", "--property", "key.separator=:"],
                              stdin: "k1:hello\nk2:world:with colon\n:empty key\n"), "")
        let bad = try fjord(["console-producer"] + bs + ["--topic", "lines", "--property", "parse.key=true"], stdin: "no separator\n")
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.err, "Error: No key separator found on line number 1: 'no separator'\n")
        try ok(["console-producer"] + bs + ["--topic", "lines", "--compression-codec", "zstd", "--request-required-acks", "1"], stdin: "plain\n")
        // A write the cluster cannot take (acks=all with one replica, min.insync.replicas=2):
        // a warning per retry, and the final error names the cause.
        try ok(["topics"] + bs + ["--create", "--topic", "strict", "--partitions", "1", "--replication-factor", "1",
                                  "--config", "min.insync.replicas=2"])
        let stuck = try fjord(["console-producer"] + bs + ["--topic", "strict", "--producer-property", "delivery.timeout.ms=2000",
                                                           "--producer-property", "retry.backoff.ms=200"], stdin: "lost\n")
        XCTAssertEqual(stuck.status, 1)
        XCTAssertTrue(stuck.err.contains("WARN [Producer clientId=console-producer] Got error produce response on topic-partition strict-0, retrying ("), stuck.err)
        XCTAssertTrue(stuck.err.contains("Error: NOT_ENOUGH_REPLICAS"), stuck.err)
        XCTAssertTrue(stuck.err.contains("the last attempt failed"), stuck.err)

        let all = try fjord(["console-consumer"] + bs + ["--topic", "lines", "--from-beginning", "--max-messages", "4",
                                                         "--property", "print.key=true", "--property", "print.timestamp=true",
                                                         "--property", "print.partition=true", "--property", "print.offset=true",
                                                         "--property", "print.headers=true"])
        XCTAssertEqual(all.status, 0, all.err)
        XCTAssertEqual(mask(all.out), """
            CreateTime:<ts>\tPartition:0\tOffset:0\tNO_HEADERS\tk1\thello
            CreateTime:<ts>\tPartition:0\tOffset:1\tNO_HEADERS\tk2\tworld:with colon
            CreateTime:<ts>\tPartition:0\tOffset:2\tNO_HEADERS\t\tempty key
            CreateTime:<ts>\tPartition:0\tOffset:3\tNO_HEADERS\tnull\tplain

            """)
        XCTAssertEqual(all.err, "Processed a total of 4 messages\n")
        XCTAssertEqual(try ok(["console-consumer"] + bs + ["--topic", "lines", "--from-beginning", "--max-messages", "2"]), "hello\nworld:with colon\n")
        XCTAssertEqual(try ok(["console-consumer"] + bs + ["--topic", "lines", "--from-beginning", "--max-messages", "2",
                                                          "--isolation-level", "read_committed"]), "hello\nworld:with colon\n")
        XCTAssertEqual(try ok(["console-consumer"] + bs + ["--topic", "lines", "--partition", "0", "--offset", "2", "--max-messages", "1",
                                                          "--property", "print.key=true", "--property", "key.separator=|"]), "|empty key\n")
        let idle = try fjord(["console-consumer"] + bs + ["--topic", "lines", "--timeout-ms", "1000"])
        XCTAssertEqual(idle.status, 0)
        XCTAssertEqual(idle.out, "", "without --from-beginning the consumer starts at the end")
        XCTAssertEqual(idle.err, "Processed a total of 0 messages\n")
        let noTopic = try fjord(["console-consumer"] + bs + ["--topic", "nope", "--max-messages", "1"], timeout: 60)
        XCTAssertEqual(noTopic.status, 1)
        XCTAssertTrue(noTopic.err.contains("topic 'nope' does not exist"), noTopic.err)

        try ok(["topics"] + bs + ["--create", "--topic", "perf", "--partitions", "3", "--replication-factor", "1"])
        let perf = try fjord(["producer-perf-test", "--topic", "perf", "--num-records", "20000", "--record-size", "100", "--throughput", "-1",
                              "--producer-props", "bootstrap.servers=\(c.bootstrap)", "acks=1"])
        XCTAssertEqual(perf.status, 0, perf.err)
        let last = perf.out.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertNotNil(last.range(of: #"^20000 records sent, [0-9]+\.[0-9]{6} records/sec \([0-9]+\.[0-9]{2} MB/sec\), [0-9]+\.[0-9]{2} ms avg latency, [0-9]+\.[0-9]{2} ms max latency, [0-9]+ ms 50th, [0-9]+ ms 95th, [0-9]+ ms 99th, [0-9]+ ms 99\.9th\.$"#, options: .regularExpression), last)
        // Six seconds at 100 records/s: one periodic line (every 5 s) before the final one.
        let throttled = try fjord(["producer-perf-test", "--topic", "perf", "--num-records", "600", "--record-size", "10", "--throughput", "100",
                                   "--producer-props", "bootstrap.servers=\(c.bootstrap)"])
        XCTAssertEqual(throttled.status, 0, throttled.err)
        let periodic = throttled.out.split(separator: "\n").dropLast()
        XCTAssertFalse(periodic.isEmpty, throttled.out)
        for l in periodic {
            XCTAssertNotNil(l.range(of: #"^[0-9]+ records sent, [0-9]+\.[0-9] records/sec \([0-9]+\.[0-9]{2} MB/sec\), [0-9]+\.[0-9] ms avg latency, [0-9]+\.[0-9] ms max latency\.$"#,
                                    options: .regularExpression), String(l))
        }
        let rate = Double(throttled.out.split(separator: "\n").last!.components(separatedBy: " records sent, ")[1].split(separator: " ")[0])!
        XCTAssertLessThan(rate, 130, throttled.out)

        let cperf = try fjord(["consumer-perf-test"] + bs + ["--topic", "perf", "--messages", "20600"])
        XCTAssertEqual(cperf.status, 0, cperf.err)
        let cl = cperf.out.split(separator: "\n").map(String.init)
        XCTAssertEqual(cl.count, 2, cperf.out)
        XCTAssertEqual(cl[0], "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
        XCTAssertNotNil(cl[1].range(of: #"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}, 1\.9131, [0-9.]+, 20600, [0-9.]+, 0, [0-9]+, [0-9.]+, [0-9.]+$"#, options: .regularExpression), cl[1])
    }

    func testConsoleConsumerGroupResumesFromCommittedOffsets() throws {
        let c = try LocalCluster(count: 1, extra: ["offsets.topic.replication.factor=1", "offsets.topic.num.partitions=3",
                                                  "group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        let bs = ["--bootstrap-server", c.bootstrap]
        try ok(["topics"] + bs + ["--create", "--topic", "g", "--partitions", "1", "--replication-factor", "1"])
        try ok(["console-producer"] + bs + ["--topic", "g"], stdin: (1...30).map { "\($0)\n" }.joined())
        let group = ["console-consumer"] + bs + ["--topic", "g", "--group", "readers", "--from-beginning", "--max-messages", "10"]
        XCTAssertEqual(try ok(group), (1...10).map { "\($0)\n" }.joined())
        XCTAssertEqual(try ok(group), (11...20).map { "\($0)\n" }.joined(), "the group resumes after its committed offset")
        let both = try fjord(["console-consumer"] + bs + ["--topic", "g", "--group", "readers", "--partition", "0"])
        XCTAssertEqual(both.status, 64)
    }

    func testEveryToolHasHelpWithExamples() throws {
        for tool in ["topics", "console-producer", "console-consumer", "producer-perf-test", "consumer-perf-test", "configs",
                     "leader-election", "cluster-id", "broker-api-versions", "dev-cluster", "dev-cluster up", "dev-cluster status",
                     "dev-cluster kill", "dev-cluster stop", "dev-cluster start", "dev-cluster down", "consumer-groups",
                     "storage", "storage random-uuid", "storage format", "storage info", "server-start", "server start",
                     "metadata-quorum", "metadata-quorum describe", "dump-log", "metadata-shell"] {
            let r = try fjord(tool.split(separator: " ").map(String.init) + ["--help"])
            XCTAssertEqual(r.status, 0, tool)
            XCTAssertTrue(r.out.contains("Example"), "\(tool) --help has no examples:\n\(r.out)")
        }
    }

    /// The README's walkthrough, line by line (with this build's binary and a private directory).
    func testReadmeWalkthrough() throws {
        let readme = try String(contentsOfFile: TestPython.packageRoot() + "/README.md", encoding: .utf8)
        guard let b = readme.range(of: "<!-- walkthrough:begin -->"), let e = readme.range(of: "<!-- walkthrough:end -->") else {
            return XCTFail("README.md has no walkthrough markers")
        }
        var lines = readme[b.upperBound..<e.lowerBound].split(separator: "\n").map(String.init)
        lines.removeAll { $0.hasPrefix("```") || $0.isEmpty }
        XCTAssertTrue(lines.first?.hasPrefix("fjord=.build/release/fjord") == true, lines.first ?? "")
        lines[0] = "fjord=\(try LocalCluster.fjordBinary())"
        let work = try TestPython.temporaryDirectory("fjord-walkthrough")
        let dir = work + "/cluster"
        defer {
            _ = try? fjord(["dev-cluster", "down", "--kill", "--dir", dir])
            try? FileManager.default.removeItem(atPath: work)
        }
        let script = "set -euo pipefail\ncd \(work)\n" + lines.joined(separator: "\n") + "\n"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        var env = ProcessInfo.processInfo.environment
        env["FJORD_DEV_CLUSTER_DIR"] = dir
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let box = Box()
        let g = DispatchGroup()
        g.enter(); DispatchQueue.global().async { box.data = out.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        let deadline = Date().addingTimeInterval(240)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        g.wait()
        let text = String(decoding: box.data, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertEqual(text.components(separatedBy: "with SIGKILL.").count - 1, 2, text)
        XCTAssertTrue(text.contains("Controller leader: node "), text)
        XCTAssertTrue(text.contains("Processed a total of 1000 messages"), text)
        let consumed = try String(contentsOfFile: work + "/consumed.txt", encoding: .utf8).split(separator: "\n").map { Int($0)! }
        XCTAssertEqual(consumed.count, 1000)
        XCTAssertEqual(consumed.sorted(), Array(1...1000), "every record once")
        XCTAssertTrue(text.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "1000" }, text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "down --delete removed the directory")
    }

    func testDevClusterJsonStatusAndSplitMode() throws {
        let work = try TestPython.temporaryDirectory("fjord-devcluster")
        let dir = work + "/c"
        defer {
            _ = try? fjord(["dev-cluster", "down", "--kill", "--dir", dir])
            try? FileManager.default.removeItem(atPath: work)
        }
        let up = try fjord(["dev-cluster", "up", "--nodes", "2", "--mode", "split", "--controllers", "1", "--dir", dir], timeout: 90)
        XCTAssertEqual(up.status, 0, up.out + up.err)
        let json = try ok(["dev-cluster", "status", "--dir", dir, "--output", "json"])
        let s = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let nodes = s["nodes"] as! [[String: Any]]
        XCTAssertEqual(nodes.map { $0["id"] as! Int }, [1, 2, 3])
        XCTAssertEqual(nodes.map { $0["roles"] as! [String] }, [["controller"], ["broker"], ["broker"]])
        XCTAssertTrue(nodes.allSatisfy { $0["alive"] as? Bool == true && ($0["pid"] as? Int ?? 0) > 0 })
        XCTAssertEqual(s["controllerLeader"] as? Int, 1)
        XCTAssertNotNil(s["leaderEpoch"] as? Int)
        let bootstrap = s["bootstrap"] as! String
        XCTAssertEqual(bootstrap.split(separator: ",").count, 2)
        XCTAssertEqual(try ok(["dev-cluster", "status", "--dir", dir, "--get", "bootstrap"]), bootstrap + "\n")
        let again = try fjord(["dev-cluster", "up", "--nodes", "2", "--dir", dir])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.err.contains("a cluster is already running"), again.err)

        XCTAssertTrue(try ok(["dev-cluster", "stop", "3", "--dir", dir]).hasPrefix("Stopped node 3"))
        let after = try JSONSerialization.jsonObject(with: Data(try ok(["dev-cluster", "status", "--dir", dir, "--output", "json"]).utf8)) as! [String: Any]
        let n3 = (after["nodes"] as! [[String: Any]]).first { $0["id"] as! Int == 3 }!
        XCTAssertEqual(n3["alive"] as? Bool, false)
        XCTAssertTrue(n3["pid"] is NSNull)
        XCTAssertTrue(try ok(["dev-cluster", "start", "3", "--dir", dir]).contains("Node 3 is serving."))
        let notRunning = try fjord(["dev-cluster", "kill", "9", "--dir", dir])
        XCTAssertEqual(notRunning.status, 1)
        XCTAssertTrue(notRunning.err.contains("no node 9"), notRunning.err)
        XCTAssertEqual(try ok(["dev-cluster", "down", "--dir", dir]), "Stopped 3 nodes.\n")
        // `up` on a stopped cluster restarts it with its data.
        let restart = try fjord(["dev-cluster", "up", "--nodes", "2", "--dir", dir], timeout: 90)
        XCTAssertEqual(restart.status, 0, restart.out + restart.err)
        XCTAssertTrue(restart.out.hasPrefix("Restarting the stopped cluster"), restart.out)
    }
}
