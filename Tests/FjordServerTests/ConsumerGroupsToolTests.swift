import FjordTestSupport
import Foundation
import XCTest

/// `fjord consumer-groups` against a live group: lag while a producer is ahead, reset of an
/// inactive group, refusal for an active one, delete.
final class ConsumerGroupsToolTests: XCTestCase {
    func testDescribeLagResetAndDelete() throws {
        let c = try LocalCluster(count: 1, extra: ["group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        let bs = c.bootstrap
        // A group consumes 100 of 300 records and commits, then stays in the group.
        let script = #"""
            import sys, time
            from confluent_kafka import Producer, Consumer
            from confluent_kafka.admin import AdminClient, NewTopic
            bs, phase = sys.argv[1], sys.argv[2]
            if phase == "setup":
                a = AdminClient({"bootstrap.servers": bs})
                a.create_topics([NewTopic("cg", 1, 1)])["cg"].result(15)
                p = Producer({"bootstrap.servers": bs})
                for i in range(300): p.produce("cg", value=b"%d" % i)
                assert p.flush(15) == 0
                sys.exit(0)
            c = Consumer({"bootstrap.servers": bs, "group.id": "tool", "auto.offset.reset": "earliest", "enable.auto.commit": False})
            c.subscribe(["cg"]); n = 0; t = time.time(); first = None
            while time.time() - t < 30:
                m = c.poll(0.5)
                if m is None or m.error(): continue
                if first is None: first = int(m.value())
                n += 1
                if phase == "consume" and n == 100:
                    c.commit(m, asynchronous=False)
                    print("committed", flush=True)
                    time.sleep(float(sys.argv[3]))
                    break
                if phase == "reread": break
            c.close()
            print("first", first, flush=True)
            """#
        _ = try TestPython.run(script, args: [bs, "setup"], timeout: 60)
        // Hold the group active in the background while the tool describes it.
        let holder = Thread { _ = try? TestPython.run(script, args: [bs, "consume", "12"], timeout: 60) }
        holder.start()
        let desc = LocalCluster.eventually(20) { () -> String? in
            guard let out = try? c.fjordOutput(["consumer-groups", "--bootstrap-server", bs, "--describe", "--group", "tool"]),
                  out.contains(" 100 ") else { return nil }
            return out
        }
        let d = try XCTUnwrap(desc, "describe never showed the committed offset")
        let header = try XCTUnwrap(d.split(separator: "\n").first { $0.hasPrefix("GROUP") })
        XCTAssertEqual(header.split(separator: " ").map(String.init),
                       ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"])
        let row = try XCTUnwrap(d.split(separator: "\n").first { $0.hasPrefix("tool ") }).split(separator: " ").map(String.init)
        XCTAssertEqual(Array(row[0...5]), ["tool", "cg", "0", "100", "300", "200"], d)
        XCTAssertNotEqual(row[6], "-", "an active member owns the partition: \(d)")
        // Active group: reset is refused with Kafka's message.
        let refused = try LocalCluster.run(c.fjord, ["consumer-groups", "--bootstrap-server", bs, "--reset-offsets", "--group", "tool",
                                                     "--topic", "cg", "--to-earliest", "--execute"], timeout: 20)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("Assignments can only be reset if the group 'tool' is inactive, but the current state is Stable."), refused.stderr)
        holder.cancel()
        // Once the member has left: reset to earliest, and the next consumer re-reads from 0.
        let reset = LocalCluster.eventually(30) { () -> String? in
            let r = try? LocalCluster.run(c.fjord, ["consumer-groups", "--bootstrap-server", bs, "--reset-offsets", "--group", "tool",
                                                    "--topic", "cg", "--to-earliest", "--execute"], timeout: 20)
            return r?.status == 0 ? r?.stdout : nil
        }
        let rs = try XCTUnwrap(reset, "reset never succeeded")
        XCTAssertTrue(rs.contains("NEW-OFFSET"), rs)
        let reread = String(decoding: try TestPython.run(script, args: [bs, "reread"], timeout: 60), as: UTF8.self)
        XCTAssertTrue(reread.contains("first 0"), reread)
        // The other ways to pick targets on the inactive group: a partition list, every
        // committed partition, a shift, a time with a zone; --dry-run changes nothing.
        func resetGroup(_ args: [String]) throws -> (Int32, String, String) {
            let r = try LocalCluster.run(c.fjord, ["consumer-groups", "--bootstrap-server", bs, "--reset-offsets", "--group", "tool"] + args, timeout: 20)
            return (r.status, r.stdout, r.stderr)
        }
        func newOffset(_ out: String) -> String? {
            out.split(separator: "\n").first { $0.hasPrefix("tool ") }?.split(separator: " ").last.map(String.init)
        }
        let dry = try resetGroup(["--topic", "cg:0", "--to-offset", "50", "--dry-run"])
        XCTAssertEqual(dry.0, 0, dry.2)
        XCTAssertEqual(newOffset(dry.1), "50", dry.1)
        // Kafka's "%-30s %-30s %-10s %-15s".
        let resetHeader = "GROUP" + String(repeating: " ", count: 26) + "TOPIC" + String(repeating: " ", count: 26) + "PARTITION  NEW-OFFSET"
        XCTAssertTrue(dry.1.contains(resetHeader), dry.1)
        let toOffset = try resetGroup(["--topic", "cg", "--to-offset", "50", "--execute"])
        XCTAssertEqual(newOffset(toOffset.1), "50", toOffset.1 + toOffset.2)
        let shifted = try resetGroup(["--all-topics", "--shift-by", "-10", "--execute"])
        XCTAssertEqual(newOffset(shifted.1), "40", shifted.1 + shifted.2)
        let future = try resetGroup(["--topic", "cg", "--to-datetime", "2999-01-01T00:00:00.000Z", "--execute"])
        XCTAssertEqual(newOffset(future.1), "300", "a time after every record resets to the end: " + future.1 + future.2)
        let past = try resetGroup(["--topic", "cg", "--to-datetime", "2000-01-01T00:00:00.000+02:00", "--execute"])
        XCTAssertEqual(newOffset(past.1), "0", past.1 + past.2)
        let noPartition = try resetGroup(["--topic", "cg:7", "--to-earliest", "--dry-run"])
        XCTAssertEqual(noPartition.0, 1)
        XCTAssertTrue(noPartition.2.contains("Topic 'cg' has no partition 7."), noPartition.2)

        let list = try c.fjordOutput(["consumer-groups", "--bootstrap-server", bs, "--list"])
        XCTAssertTrue(list.split(separator: "\n").contains("tool"), list)
        let del = LocalCluster.eventually(20) { () -> String? in
            let r = try? LocalCluster.run(c.fjord, ["consumer-groups", "--bootstrap-server", bs, "--delete", "--group", "tool"], timeout: 20)
            return r?.status == 0 ? r?.stdout : nil
        }
        XCTAssertEqual(del?.trimmingCharacters(in: .whitespacesAndNewlines), "Deletion of requested consumer groups ('tool') was successful.")
    }
}
