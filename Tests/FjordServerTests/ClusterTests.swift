import FjordTestSupport
import Foundation
import XCTest

/// Real processes: three combined nodes on loopback ports, killed with SIGKILL.
final class ClusterTests: XCTestCase {
    /// Formats and starts three nodes; the quorum elects a leader, every node registers as a
    /// broker, and kcat and confluent-kafka see three brokers and the cluster id.
    func testThreeNodeQuorumStatusAndBrokers() throws {
        let c = try LocalCluster(count: 3)
        defer { c.stopAll() }
        try c.startAll()
        let status = LocalCluster.eventually(20) { () -> [String: String]? in
            guard let s = c.quorumStatus(via: 1), let l = s["LeaderId"], l != "-1" else { return nil }
            return s
        }
        let s = try XCTUnwrap(status, "no leader reported by metadata-quorum describe --status")
        XCTAssertEqual(s["ClusterId"], c.clusterId)
        XCTAssertEqual(s["CurrentVoters"]?.components(separatedBy: "\"id\":").count, 4, "\(s)")
        XCTAssertEqual(s["CurrentObservers"], "[]")
        // All three brokers registered and unfenced: Metadata lists them.
        let script = """
            import sys, time
            from confluent_kafka.admin import AdminClient
            a = AdminClient({"bootstrap.servers": sys.argv[1]})
            deadline = time.time() + 30
            while True:
                md = a.list_topics(timeout=5)
                if len(md.brokers) == 3 or time.time() > deadline: break
                time.sleep(0.2)
            print(md.cluster_id, sorted(md.brokers))
            """
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 60), as: UTF8.self)
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines), "\(c.clusterId) [1, 2, 3]")
        if let kcat = ["/usr/bin/kcat", "/usr/local/bin/kcat"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            // Every broker's image learns of the others' unfencing within moments.
            let listed = LocalCluster.eventually(10) { () -> Int? in
                guard let r = try? LocalCluster.run(kcat, ["-b", "127.0.0.1:\(c.brokerPorts[2]!)", "-L", "-m", "5"], timeout: 15) else { return nil }
                let n = r.stdout.components(separatedBy: "\n").filter { $0.contains("broker ") && $0.contains(" at 127.0.0.1:") }.count
                return n == 3 ? n : nil
            }
            XCTAssertEqual(listed, 3, "kcat -L did not list 3 brokers")
        }
        // DescribeQuorum at every version (v0 and v1 cannot carry v2's controller endpoints):
        // a raw request each, answered with no error and the quorum's leader.
        let raw = #"""
            import socket, struct, sys
            host, port = sys.argv[1].split(":")
            def uvarint(n):
                out = b""
                while True:
                    b = n & 0x7F; n >>= 7
                    if n: out += bytes([b | 0x80])
                    else: return out + bytes([b])
            for version in (0, 1, 2):
                name = b"__cluster_metadata"
                body = uvarint(2) + uvarint(len(name) + 1) + name + uvarint(2) + struct.pack(">i", 0) + b"\0" + b"\0" + b"\0"
                cid = b"raw"
                req = struct.pack(">hhih", 55, version, 7 + version, len(cid)) + cid + b"\0" + body
                s = socket.create_connection((host, int(port)), timeout=10)
                s.sendall(struct.pack(">i", len(req)) + req)
                def read(n):
                    data = b""
                    while len(data) < n:
                        chunk = s.recv(n - len(data))
                        if not chunk: raise SystemExit(f"v{version}: connection closed")
                        data += chunk
                    return data
                size = struct.unpack(">i", read(4))[0]
                resp = read(size)
                corr, tags, err = struct.unpack(">ibh", resp[:7])
                pos = 7
                if version >= 2:
                    pos += 1  # null ErrorMessage (compact nullable string)
                pos += 1  # one topic
                nlen = resp[pos] - 1; pos += 1 + nlen
                pos += 1  # one partition
                pidx, perr, leader, epoch = struct.unpack(">ihii", resp[pos:pos + 14])
                print(f"v{version} corr={corr} error={err} partitionError={perr} leaderOk={leader >= 0}")
                s.close()
            """#
        let rawOut = LocalCluster.eventually(20) { () -> String? in
            guard let o = try? TestPython.run(raw, args: ["127.0.0.1:\(c.controllerPorts[1]!)"], timeout: 30) else { return nil }
            let text = String(decoding: o, as: UTF8.self)
            return text.contains("leaderOk=False") ? nil : text
        }
        XCTAssertEqual(rawOut?.trimmingCharacters(in: .whitespacesAndNewlines),
                       "v0 corr=7 error=0 partitionError=0 leaderOk=True\nv1 corr=8 error=0 partitionError=0 leaderOk=True\nv2 corr=9 error=0 partitionError=0 leaderOk=True")
        let repl = try c.fjordOutput(["metadata-quorum", "--bootstrap-server", "127.0.0.1:\(c.brokerPorts[3]!)", "describe", "--replication"])
        let rows = repl.split(separator: "\n")
        XCTAssertTrue(rows.first?.hasPrefix("NodeId") == true, repl)
        XCTAssertEqual(rows.filter { $0.hasSuffix("Leader") }.count, 1, repl)
        XCTAssertEqual(rows.filter { $0.hasSuffix("Follower") }.count, 2, repl)
    }

    /// `kill -9` the active controller ten times: a new leader with a higher epoch is
    /// reported within 3 s each time, and the restarted node catches up.
    func testControllerFailoverRepeatedly() throws {
        let c = try LocalCluster(count: 3)
        defer { c.stopAll() }
        try c.startAll()
        func leader(via n: Int32) -> (Int32, Int32)? {
            guard let s = c.quorumStatus(via: n), let l = s["LeaderId"].flatMap(Int32.init), l >= 0,
                  let e = s["LeaderEpoch"].flatMap(Int32.init) else { return nil }
            return (l, e)
        }
        var current = try XCTUnwrap(LocalCluster.eventually(20) { leader(via: 1) }, "no initial leader")
        var worst = 0.0
        for round in 1...10 {
            let (old, epoch) = current
            c.kill9(old)
            let t0 = Date()
            let other = c.nodes.first { $0 != old }!
            let next = LocalCluster.eventually(10) { () -> (Int32, Int32)? in
                guard let (l, e) = leader(via: other), l != old, e > epoch else { return nil }
                return (l, e)
            }
            let elapsed = Date().timeIntervalSince(t0)
            let n = try XCTUnwrap(next, "round \(round): no new leader within 10 s")
            worst = max(worst, elapsed)
            XCTAssertLessThan(elapsed, 3.0, "round \(round): failover took \(elapsed) s")
            try c.start(old)
            // The restarted node rejoins as a follower and catches up (lag 0).
            let caughtUp = LocalCluster.eventually(15) { () -> Bool? in
                guard let out = try? c.fjordOutput(["metadata-quorum", "--bootstrap-controller", "127.0.0.1:\(c.controllerPorts[n.0]!)",
                                                    "describe", "--replication"], timeout: 5) else { return nil }
                let row = out.split(separator: "\n").first { $0.hasPrefix("\(old)") }
                let cols = row?.split(separator: "\t").map { $0.trimmingCharacters(in: .whitespaces) }
                return cols?.count == 7 && cols?[3] == "0" && cols?[6] == "Follower" ? true : nil
            }
            XCTAssertEqual(caughtUp, true, "round \(round): node \(old) did not catch up")
            current = n
        }
        print("worst controller failover over 10 kills: \(Int(worst * 1000)) ms")
    }

    /// Starting a node fails fast, naming the problem: an unformatted directory, another
    /// cluster's directory, a directory in use, a malformed properties file.
    func testStartupFailuresNameTheProblem() throws {
        let c = try LocalCluster(count: 1)
        defer { c.stopAll() }
        let props = c.propertiesPath(1)
        let text = try String(contentsOfFile: props, encoding: .utf8)
        // Unformatted directory.
        let unformatted = "\(c.dir)/unformatted.properties"
        try text.replacingOccurrences(of: "log.dirs=\(c.dir)/data1", with: "log.dirs=\(c.dir)/empty").write(toFile: unformatted, atomically: true, encoding: .utf8)
        var r = try LocalCluster.run(c.fjord, ["server-start", unformatted], timeout: 20)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue((r.stdout + r.stderr).contains("No `meta.properties` found in \(c.dir)/empty"), r.stdout + r.stderr)
        // Malformed properties.
        let bad = "\(c.dir)/bad.properties"
        try (text + "\nnum.partitions=lots\n").write(toFile: bad, atomically: true, encoding: .utf8)
        r = try LocalCluster.run(c.fjord, ["server-start", bad], timeout: 20)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("num.partitions"), r.stderr)
        // Two processes on one directory.
        try c.start(1)
        r = try LocalCluster.run(c.fjord, ["server-start", props], timeout: 20)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("Failed to acquire lock"), r.stderr)
        c.kill9(1)
        // Another cluster's directory.
        let meta = "\(c.dir)/data1/meta.properties"
        let m = try String(contentsOfFile: meta, encoding: .utf8)
        try m.replacingOccurrences(of: "cluster.id=\(c.clusterId)", with: "cluster.id=AAAAAAAAAAAAAAAAAAAAAQ").write(toFile: meta, atomically: true, encoding: .utf8)
        let other = "\(c.dir)/other.properties"
        try (text.replacingOccurrences(of: "log.dirs=\(c.dir)/data1", with: "log.dirs=\(c.dir)/data1,\(c.dir)/data1b")).write(toFile: other, atomically: true, encoding: .utf8)
        _ = try LocalCluster.run(c.fjord, ["storage", "format", "-t", c.clusterId, "-c", other, "--ignore-formatted"], timeout: 20)
        r = try LocalCluster.run(c.fjord, ["server-start", other], timeout: 20)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("Invalid cluster.id"), r.stderr)
    }

    /// KIP-853's bootstrap: controllers configured with controller.quorum.bootstrap.servers
    /// (no controller.quorum.voters) and formatted with --initial-controllers, plus a
    /// broker-only node that learns the quorum from the bootstrap servers. The voters
    /// survive in every snapshot after the bootstrap snapshot is trimmed away.
    func testDynamicQuorumFromInitialControllers() throws {
        let c = try LocalCluster(count: 3, extra: [
            "metadata.log.max.record.bytes.between.snapshots=2048", "metadata.max.retention.bytes=0", "metadata.log.segment.bytes=8192",
        ], dynamicQuorum: true, brokers: 1)
        defer { c.stopAll() }
        try c.startAll()
        let status = LocalCluster.eventually(20) { () -> [String: String]? in
            guard let s = c.quorumStatus(via: 2), let l = s["LeaderId"], l != "-1", s["CurrentObservers"]?.contains("\"id\": 4") == true else { return nil }
            return s
        }
        let s = try XCTUnwrap(status, "no leader, or broker 4 is not an observer")
        let voters = s["CurrentVoters"] ?? ""
        XCTAssertEqual(voters.components(separatedBy: "\"id\":").count, 4, voters)
        XCTAssertFalse(voters.contains("AAAAAAAAAAAAAAAAAAAAAA"), "voters carry their directory ids: \(voters)")
        for i in 1...20 {
            _ = try c.fjordOutput(["topics", "--bootstrap-server", "127.0.0.1:\(c.brokerPorts[4]!)", "--create", "--topic", "dq-\(i)",
                                   "--partitions", "1", "--replication-factor", "3"], timeout: 30)
        }
        let metaDir = "\(c.dir)/data1/__cluster_metadata-0"
        let trimmed = LocalCluster.eventually(20) { () -> [String]? in
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: metaDir)) ?? []).filter { $0.hasSuffix(".checkpoint") }
            return !files.isEmpty && !files.contains("00000000000000000000-0000000000.checkpoint") ? files : nil
        }
        XCTAssertNotNil(trimmed, "the bootstrap snapshot was not replaced by newer ones")
        // A restart reads the voters from the newest snapshot.
        c.kill9(1)
        try c.start(1)
        try c.waitForBroker(1, seconds: 40)
        let after = LocalCluster.eventually(20) { () -> [String: String]? in
            guard let s = c.quorumStatus(via: 1), let l = s["LeaderId"], l != "-1" else { return nil }
            return s
        }
        XCTAssertEqual(after?["CurrentVoters"]?.components(separatedBy: "\"id\":").count, 4, "\(String(describing: after))")
        let listed = try c.fjordOutput(["topics", "--bootstrap-server", "127.0.0.1:\(c.brokerPorts[1]!)", "--list"])
        XCTAssertEqual(listed.split(separator: "\n").filter { $0.hasPrefix("dq-") }.count, 20, listed)
        // A controller of a dynamic quorum cannot be formatted without saying how it joins.
        let r = try LocalCluster.run(c.fjord, ["storage", "format", "-t", c.clusterId, "-c", c.propertiesPath(2)])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--standalone, --initial-controllers, or --no-initial-controllers") || r.stderr.contains("already formatted"), r.stderr)
    }
}
