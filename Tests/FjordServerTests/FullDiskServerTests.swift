#if canImport(Glibc)
import Glibc
#endif
import FjordTestSupport
import Foundation
import XCTest

/// A broker whose log directory fills up (a small tmpfs) while an idempotent acks=all
/// producer writes: the broker asks to be fenced, so leaderships move away and it leaves
/// every ISR instead of holding acks=all back; when space returns it is unfenced and rejoins
/// the ISRs; every acknowledged record is read back exactly once.
final class FullDiskServerTests: XCTestCase {
    func testFullDiskFencesTheBrokerUntilSpaceReturns() throws {
        // Small index files, so three partitions fit on a 40 MiB filesystem; ISR shrinking
        // by lag alone would take replica.lag.time.max.ms (30 s), longer than the checks wait.
        let c = try LocalCluster(count: 3, extra: ["log.index.size.max.bytes=65536", "broker.heartbeat.interval.ms=500"])
        let mnt = c.dir + "/tmpfs3"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        guard mount("tmpfs", mnt, "tmpfs", 0, "size=40m") == 0 else {
            throw XCTSkip("cannot mount a tmpfs here (errno \(errno)); the fault suite's disk-full nemesis covers this as root")
        }
        defer {
            c.stopAll()
            _ = umount2(mnt, 2)
        }
        // Node 3 keeps its metadata log where it was and stores partitions on the tmpfs.
        let props = try String(contentsOfFile: c.propertiesPath(3), encoding: .utf8)
            .replacingOccurrences(of: "log.dirs=\(c.dir)/data3", with: "log.dirs=\(mnt)/data\nmetadata.log.dir=\(c.dir)/data3")
        try props.write(toFile: c.propertiesPath(3), atomically: true, encoding: .utf8)
        _ = try c.fjordOutput(["storage", "format", "-t", c.clusterId, "-c", c.propertiesPath(3), "--ignore-formatted"])
        try c.startAll()

        let script = #"""
            import os, sys, time, json
            from confluent_kafka import Producer, Consumer, TopicPartition
            from confluent_kafka.admin import AdminClient, NewTopic
            bootstrap, mnt = sys.argv[1], sys.argv[2]
            a = AdminClient({"bootstrap.servers": bootstrap})
            deadline = time.time() + 30
            while len(a.list_topics(timeout=5).brokers) < 3:
                assert time.time() < deadline, "brokers did not register"
                time.sleep(0.2)
            a.create_topics([NewTopic("fd", 3, 3)])["fd"].result(30)

            def isrs():
                md = a.list_topics("fd", timeout=5).topics["fd"]
                return {p: (x.leader, sorted(x.isrs)) for p, x in md.partitions.items()}

            deadline = time.time() + 30
            while not (len(isrs()) == 3 and all(len(i) == 3 for _, i in isrs().values())):
                assert time.time() < deadline, f"ISRs never complete: {isrs()}"
                time.sleep(0.2)

            acked, errors = {}, []
            def report(err, msg):
                if err is None:
                    acked[msg.value().decode().rstrip(".")] = (msg.partition(), msg.offset())
                else:
                    errors.append(str(err))
            p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                          "linger.ms": 5, "request.timeout.ms": 5000, "message.timeout.ms": 120000})
            n = 0
            def produce(count, seconds):
                global n
                end = time.time() + seconds
                for _ in range(count):
                    p.produce("fd", value=f"v{n:06d}".encode() + b"." * 1000, partition=n % 3, on_delivery=report)
                    n += 1
                    p.poll(0)
                    time.sleep(max(0, (end - time.time()) / max(1, count)))
                p.poll(0)

            produce(600, 3)
            assert p.flush(60) == 0, "first records not acknowledged"
            # Fill node 3's filesystem.
            filler = os.path.join(mnt, "filler")
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * (1 << 20)); f.flush()
                except OSError:
                    pass
            produce(600, 4)
            # Node 3 fails to write, asks to be fenced: it leads nothing and leaves every ISR.
            deadline = time.time() + 20
            while True:
                s = isrs()
                if all(l != 3 and 3 not in i for l, i in s.values()):
                    break
                assert time.time() < deadline, f"node 3 still leads or is in an ISR with a full disk: {s}"
                produce(20, 0.5)
            print("fenced out", flush=True)
            produce(300, 3)
            os.remove(filler)
            # Space is back: node 3 is unfenced, catches up and rejoins every ISR.
            deadline = time.time() + 40
            while not all(3 in i for _, i in isrs().values()):
                assert time.time() < deadline, f"node 3 never rejoined the ISRs: {isrs()}"
                produce(20, 0.5)
            print("rejoined", flush=True)
            produce(300, 2)
            assert p.flush(120) == 0, "records left unacknowledged"
            assert not errors, f"delivery errors: {errors[:5]}"

            c = Consumer({"bootstrap.servers": bootstrap, "group.id": "fd-check", "enable.auto.commit": False})
            c.assign([TopicPartition("fd", i, 0) for i in range(3)])
            seen = {}
            deadline = time.time() + 60
            while len(seen) < len(acked) and time.time() < deadline:
                for m in c.consume(1000, timeout=1):
                    if m.error(): continue
                    v = m.value().decode().rstrip(".")
                    seen.setdefault(v, []).append((m.partition(), m.offset()))
            dups = {v: o for v, o in seen.items() if len(o) > 1}
            lost = [v for v in acked if v not in seen]
            wrong = [v for v, po in acked.items() if v in seen and seen[v][0] != po]
            print(json.dumps({"acked": len(acked), "produced": n, "lost": len(lost), "duplicates": len(dups),
                              "wrongOffset": len(wrong), "example": (lost[:3], list(dups.items())[:3], wrong[:3]), "errors": errors[:3]}))
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap, mnt], timeout: 300), as: UTF8.self)
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("fenced out"), out)
        XCTAssertTrue(lines.contains("rejoined"), out)
        let summary = try XCTUnwrap(lines.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }, out)
        XCTAssertEqual(summary["acked"] as? Int, summary["produced"] as? Int, out)
        XCTAssertEqual(summary["lost"] as? Int, 0, out)
        XCTAssertEqual(summary["duplicates"] as? Int, 0, out)
        XCTAssertEqual(summary["wrongOffset"] as? Int, 0, out)
        let log = try String(contentsOfFile: c.logPath(3), encoding: .utf8)
        XCTAssertTrue(log.contains("asking the controller to fence this broker"), "node 3 never asked to be fenced")
        XCTAssertTrue(log.contains("asking the controller to unfence this broker"), "node 3 never asked to be unfenced")
    }
}
