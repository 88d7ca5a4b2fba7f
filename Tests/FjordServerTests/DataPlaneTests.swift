import FjordTestSupport
import Foundation
import XCTest

/// Produce and consume with every client library against real Fjord processes.
final class DataPlaneTests: XCTestCase {
    func kcatPath() -> String? {
        ["/usr/bin/kcat", "/usr/local/bin/kcat"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// kcat (Debian's librdkafka): keys, headers and every compression, read back exactly.
    func testKcatRoundTripAllCompressions() throws {
        guard let kcat = kcatPath() else { throw XCTSkip("kcat not installed") }
        let c = try LocalCluster(count: 1)
        defer { c.stopAll() }
        try c.startAll()
        let bs = c.bootstrap
        var expected: [String] = []
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let lines = (0..<50).map { "k\($0)-\(codec):value \($0) \(codec)" }
            let input = c.dir + "/in-\(codec).txt"
            try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
            let r = try LocalCluster.run("/bin/sh", ["-c", "\(kcat) -b \(bs) -P -t kc -K: -z \(codec) -H h1=\(codec) -H h2=x < \(input)"], timeout: 30)
            XCTAssertEqual(r.status, 0, r.stderr)
            expected += lines.map { l in
                let parts = l.split(separator: ":", maxSplits: 1)
                return "\(parts[0])|\(parts[1])|h1=\(codec),h2=x"
            }
        }
        let r = try LocalCluster.run(kcat, ["-b", bs, "-C", "-t", "kc", "-o", "beginning", "-e", "-q", "-f", "%k|%s|%h|%o\\n"], timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(got.map { $0.split(separator: "|").prefix(3).joined(separator: "|") }, expected)
        XCTAssertEqual(got.map { Int($0.split(separator: "|").last ?? "") ?? -1 }, Array(0..<expected.count))
    }

    /// confluent-kafka (bundled librdkafka 2.x): acks 0/1/all, idempotence, each compression;
    /// consumer with assign, seek and offsets_for_times; exact keys, values, headers,
    /// timestamps and offsets.
    func testConfluentKafkaProducerAndConsumer() throws {
        let c = try LocalCluster(count: 1)
        defer { c.stopAll() }
        try c.startAll()
        let script = #"""
            import sys, time
            from confluent_kafka import Producer, Consumer, TopicPartition, KafkaException
            from confluent_kafka.admin import AdminClient, NewTopic
            bs = sys.argv[1]
            a = AdminClient({"bootstrap.servers": bs})
            a.create_topics([NewTopic("cf", 2, 1)])["cf"].result(15)
            sent = []
            base_ts = 1700000000000
            for i, (acks, codec, idem) in enumerate([("0", "none", False), ("1", "gzip", False), ("all", "snappy", True), ("all", "lz4", True), ("1", "zstd", False)]):
                p = Producer({"bootstrap.servers": bs, "acks": acks, "compression.type": codec, "enable.idempotence": idem, "linger.ms": 5})
                for j in range(100):
                    k = f"{codec}-{j}".encode(); v = f"value-{i}-{j}".encode() * 3; ts = base_ts + i * 1000 + j
                    part = j % 2
                    p.produce("cf", key=k, value=v, partition=part, timestamp=ts, headers=[("n", str(j).encode()), ("codec", codec.encode())])
                    sent.append((part, k, v, ts, [("n", str(j).encode()), ("codec", codec.encode())]))
                assert p.flush(30) == 0
                if acks == "0":
                    # Nothing acknowledges an acks=0 produce: wait until its records are in the
                    # log, so the next producer's cannot overtake them (the check below wants
                    # the order of production).
                    w = Consumer({"bootstrap.servers": bs, "group.id": "watermarks"})
                    t0 = time.time()
                    while sum(w.get_watermark_offsets(TopicPartition("cf", q), timeout=5)[1] for q in (0, 1)) < len(sent) and time.time() - t0 < 15:
                        time.sleep(0.05)
                    w.close()
            c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False, "auto.offset.reset": "earliest"})
            got = {0: [], 1: []}
            c.assign([TopicPartition("cf", 0, 0), TopicPartition("cf", 1, 0)])
            deadline = time.time() + 30
            while sum(len(v) for v in got.values()) < len(sent) and time.time() < deadline:
                m = c.poll(1.0)
                if m is None or m.error(): continue
                got[m.partition()].append((m.offset(), m.key(), m.value(), m.timestamp()[1], m.headers()))
            for part in (0, 1):
                exp = [s for s in sent if s[0] == part]
                g = got[part]
                offs = [o for o, *_ in g]
                assert offs == list(range(len(exp))), (part, len(offs), len(exp), [o for o in offs if o not in range(len(exp))][:10], sorted(set(range(len(exp))) - set(offs))[:10])
                assert [(k, v, ts, h) for _, k, v, ts, h in g] == [(k, v, ts, h) for _, k, v, ts, h in exp]
            # seek back and offsets_for_times
            c.seek(TopicPartition("cf", 0, 10))
            m = None
            while m is None or m.error(): m = c.poll(5.0)
            assert m.offset() == 10 and m.partition() == 0, (m.partition(), m.offset())
            want = base_ts + 3 * 1000 + 40   # the 41st record of the 4th producer
            res = c.offsets_for_times([TopicPartition("cf", 0, want)], timeout=10)
            exp_off = next(i for i, s in enumerate([s for s in sent if s[0] == 0]) if s[3] >= want)
            assert res[0].offset == exp_off, (res[0].offset, exp_off)
            lo, hi = c.get_watermark_offsets(TopicPartition("cf", 1), timeout=10)
            assert (lo, hi) == (0, len([s for s in sent if s[0] == 1])), (lo, hi)
            print("ok", len(sent))
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 120), as: UTF8.self)
        XCTAssertTrue(out.contains("ok 500"), out)
    }

    /// kafka-python and aiokafka: produce with one, consume with the other.
    func testKafkaPythonAndAiokafka() throws {
        let c = try LocalCluster(count: 1)
        defer { c.stopAll() }
        try c.startAll()
        let script = #"""
            import sys, asyncio
            from kafka import KafkaProducer, KafkaConsumer, TopicPartition
            from aiokafka import AIOKafkaProducer, AIOKafkaConsumer
            from aiokafka.structs import TopicPartition as ATP
            bs = sys.argv[1]
            p = KafkaProducer(bootstrap_servers=bs, acks="all", compression_type="gzip")
            futs = [p.send("kp", key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"%d" % i)], timestamp_ms=1700000000000 + i) for i in range(200)]
            p.flush(); offs = [f.get(timeout=10).offset for f in futs]; p.close()
            assert offs == list(range(200)), offs[:5]
            async def main():
                c = AIOKafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False)
                await c.start()
                try:
                    tp = ATP("kp", 0); c.assign([tp]); await c.seek_to_beginning(tp)
                    got = []
                    while len(got) < 200:
                        batch = await c.getmany(timeout_ms=2000)
                        for msgs in batch.values(): got += msgs
                    assert [(m.offset, m.key, m.value, m.timestamp, list(m.headers)) for m in got] == \
                        [(i, b"k%d" % i, b"v%d" % i, 1700000000000 + i, [("h", b"%d" % i)]) for i in range(200)]
                finally:
                    await c.stop()
                ap = AIOKafkaProducer(bootstrap_servers=bs, acks="all", compression_type="lz4")
                await ap.start()
                try:
                    for i in range(100): await ap.send_and_wait("ap", key=b"a%d" % i, value=b"b%d" % i)
                finally:
                    await ap.stop()
            asyncio.run(main())
            kc = KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False, consumer_timeout_ms=5000)
            kc.assign([TopicPartition("ap", 0)]); kc.seek_to_beginning()
            got = [(m.offset, m.key, m.value) for m in kc]
            assert got == [(i, b"a%d" % i, b"b%d" % i) for i in range(100)], got[:3]
            print("ok")
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 120), as: UTF8.self)
        XCTAssertTrue(out.contains("ok"), out)
    }

    /// queued.max.requests=1 and one network thread: a pipelining client (librdkafka keeps
    /// several requests in flight) is slowed by backpressure, never stuck or reordered.
    func testBackpressureWithOneQueuedRequest() throws {
        let c = try LocalCluster(count: 1, extra: ["queued.max.requests=1", "num.network.threads=1"])
        defer { c.stopAll() }
        try c.startAll()
        let script = #"""
            import sys, time
            from confluent_kafka import Producer, Consumer, TopicPartition
            bs = sys.argv[1]
            p = Producer({"bootstrap.servers": bs, "linger.ms": 0, "batch.num.messages": 1, "max.in.flight": 5})
            for i in range(3000): p.produce("bp", value=b"%d" % i, partition=0)
            assert p.flush(60) == 0
            c = Consumer({"bootstrap.servers": bs, "group.id": "bp", "enable.auto.commit": False})
            c.assign([TopicPartition("bp", 0, 0)])
            got, deadline = [], time.time() + 60
            while len(got) < 3000 and time.time() < deadline:
                m = c.poll(1.0)
                if m is not None and not m.error(): got.append(int(m.value()))
            assert got == list(range(3000)), (len(got), got[:5])
            print("ok")
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 120), as: UTF8.self)
        XCTAssertTrue(out.contains("ok"), out)
    }
}
