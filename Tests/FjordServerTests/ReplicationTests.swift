import FjordTestSupport
import Foundation
import XCTest

/// Replication factor 3 on three real processes, with `kill -9`.
final class ReplicationTests: XCTestCase {
    /// An idempotent acks=all producer keeps writing while the partition leader is killed
    /// and restarted, twice: every acknowledged record is read back exactly once, in order.
    func testAcksAllSurvivesLeaderKills() throws {
        // Kafka's default session and heartbeat settings: a killed leader's partitions move
        // at once because its heartbeat connection closes (or its controller port refuses).
        let c = try LocalCluster(count: 3, extra: ["replica.lag.time.max.ms=10000"])
        defer { c.stopAll() }
        try c.startAll()
        let script = #"""
            import sys, time, os, signal, threading, json
            from confluent_kafka import Producer, Consumer, TopicPartition
            from confluent_kafka.admin import AdminClient, NewTopic
            bs, ctl = sys.argv[1], sys.argv[2]
            a = AdminClient({"bootstrap.servers": bs})
            a.create_topics([NewTopic("r", 1, 3, config={"min.insync.replicas": "2"})])["r"].result(20)
            def leader():
                for _ in range(100):
                    try:
                        p = a.list_topics("r", timeout=5).topics["r"].partitions[0]
                        if p.leader >= 0: return p.leader, p.isrs
                    except Exception: pass
                    time.sleep(0.1)
                raise SystemExit("no leader")
            # All three replicas join the ISR.
            t0 = time.time()
            while len(leader()[1]) < 3:
                assert time.time() - t0 < 30, leader()
                time.sleep(0.2)
            N = 10000; acked = []; errors = []
            p = Producer({"bootstrap.servers": bs, "acks": "all", "enable.idempotence": True, "linger.ms": 2, "message.timeout.ms": 60000})
            def cb(err, msg):
                if err is None: acked.append(int(msg.value()))
                else: errors.append(str(err))
            gaps = []
            def killer():
                for k in range(2):
                    time.sleep(2.0)
                    l, _ = leader()
                    print("kill", l, flush=True)
                    sys.stdout.flush()
                    with open(ctl, "w") as f: f.write(f"kill {l}\n")
                    t0 = time.time(); n0 = len(acked)
                    while len(acked) == n0 and time.time() - t0 < 30: time.sleep(0.01)
                    gaps.append(time.time() - t0)
                    while os.path.exists(ctl): time.sleep(0.05)
            th = threading.Thread(target=killer); th.start()
            # A steady stream (about 5000 records/s) for as long as the kills go on.
            i = 0
            while th.is_alive() or i < N:
                while True:
                    try: p.produce("r", value=b"%d" % i, on_delivery=cb); break
                    except BufferError: p.poll(0.05)
                i += 1
                if i % 100 == 0: p.poll(0); time.sleep(0.02)
            N = i
            th.join(); assert p.flush(90) == 0
            c = Consumer({"bootstrap.servers": bs, "group.id": "r", "enable.auto.commit": False})
            c.assign([TopicPartition("r", 0, 0)]); seen = []; t = time.time()
            while time.time() - t < 60 and len(seen) < len(acked):
                m = c.poll(1.0)
                if m is None or m.error(): continue
                seen.append(int(m.value()))
            lost = len(set(acked) - set(seen)); dups = len(seen) - len(set(seen))
            sys.stderr.write(json.dumps({"acked": len(acked), "errors": errors[:3], "lost": lost, "dups": dups, "n": N, "gaps_ms": [int(g * 1000) for g in gaps]}) + "\n")
            print(json.dumps({"acked": len(acked), "errors": len(errors), "lost": lost, "dups": dups, "ordered": seen == sorted(seen),
                              "gaps_ms": [int(g * 1000) for g in gaps]}))
            sys.exit(0 if lost == 0 and dups == 0 and seen == sorted(seen) and len(acked) == N else 1)
            """#
        // The script asks for kills through a control file; this side kills and restarts.
        let ctl = c.dir + "/kill.ctl"
        let watcher = Thread {
            while !Thread.current.isCancelled {
                if let s = try? String(contentsOfFile: ctl, encoding: .utf8), let id = Int32(s.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") {
                    c.kill9(id)
                    try? c.start(id)
                    try? FileManager.default.removeItem(atPath: ctl)
                }
                usleep(20_000)
            }
        }
        watcher.start()
        defer { watcher.cancel() }
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap, ctl], timeout: 240), as: UTF8.self)
        print(out)
        XCTAssertTrue(out.contains("\"lost\": 0"), out)
    }
}
