import FjordBroker
import FjordTestSupport
import Foundation
import XCTest

/// Consumer groups with real clients: assignment, commits, rebalances, coordinator failover.
final class GroupTests: XCTestCase {
    static let groupScript = #"""
        import sys, time, threading
        from confluent_kafka import Producer, Consumer, KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic
        bs, strategy, gid, N = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
        a = AdminClient({"bootstrap.servers": bs})
        topic = "t-" + gid
        a.create_topics([NewTopic(topic, 6, 1)])[topic].result(15)
        p = Producer({"bootstrap.servers": bs})
        for i in range(N): p.produce(topic, key=b"%d" % i, value=b"%d" % i)
        assert p.flush(30) == 0
        seen = []; assigns = {}; lock = threading.Lock(); errors = []
        def run(idx, stop):
            c = Consumer({"bootstrap.servers": bs, "group.id": gid, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                          "partition.assignment.strategy": strategy, "session.timeout.ms": 10000})
            c.subscribe([topic])
            while not stop[idx].is_set():
                m = c.poll(0.2)
                assigns[idx] = sorted(tp.partition for tp in c.assignment())
                if m is None or m.error(): continue
                with lock: seen.append(int(m.value()))
                try: c.commit(m, asynchronous=False)
                except KafkaException as e: errors.append(e.args[0].name())
            c.close()
            assigns.pop(idx, None)
        stops = [threading.Event() for _ in range(3)]
        ts = [threading.Thread(target=run, args=(i, stops)) for i in range(3)]
        [t.start() for t in ts]
        t0 = time.time(); balanced = None
        while time.time() - t0 < 40:
            if sorted(len(v) for v in assigns.values()) == [2, 2, 2] and balanced is None: balanced = dict(assigns)
            if balanced and len(set(seen)) == N: break
            time.sleep(0.1)
        # One member leaves: the other two take over its partitions.
        stops[2].set(); ts[2].join()
        t1 = time.time()
        while time.time() - t1 < 30 and sorted(len(v) for v in assigns.values()) != [3, 3]: time.sleep(0.1)
        after_leave = sorted(len(v) for v in assigns.values())
        stops[0].set(); stops[1].set(); [t.join() for t in ts]
        sys.stderr.write(repr({"balanced": sorted(len(v) for v in (balanced or {}).values()), "after_leave": after_leave, "consumed": len(set(seen)), "dups": len(seen) - len(set(seen)), "errs": errors[:3]}) + "\n")
        print({"balanced": sorted(len(v) for v in (balanced or {}).values()), "after_leave": after_leave,
               "consumed": len(set(seen)), "dups": len(seen) - len(set(seen)), "commit_errors": len(errors)})
        # Exactly once while every commit succeeds; a commit refused mid-rebalance
        # (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, as Kafka answers too) may redeliver the
        # few records consumed since that partition's last successful commit.
        dups = len(seen) - len(set(seen))
        ok = balanced is not None and after_leave == [3, 3] and len(set(seen)) == N and dups <= 20 * len(errors)
        sys.exit(0 if ok else 1)
        """#

    func testConfluentGroupsRangeRoundRobinAndCooperativeSticky() throws {
        let c = try LocalCluster(count: 1, extra: ["group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        for (strategy, gid) in [("range", "gr"), ("roundrobin", "grr"), ("cooperative-sticky", "gc")] {
            let out = String(decoding: try TestPython.run(Self.groupScript, args: [c.bootstrap, strategy, gid, "3000"], timeout: 120), as: UTF8.self)
            XCTAssertTrue(out.contains("'consumed': 3000"), "\(strategy): \(out)")
        }
    }

    /// Groups of the Python clients on one topic: two kafka-python consumers (sticky
    /// assignor), two kafka-python consumers (roundrobin) and two aiokafka consumers
    /// (roundrobin), each group on its own group id: every group splits the 4 partitions 2/2
    /// and reads every record exactly once, committing after each batch.
    func testKafkaPythonAndAiokafkaGroupsShareATopic() throws {
        let c = try LocalCluster(count: 1, extra: ["group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        let script = #"""
            import sys, time, threading, asyncio
            from confluent_kafka import Producer
            from confluent_kafka.admin import AdminClient, NewTopic
            from kafka import KafkaConsumer
            from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
            from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
            from aiokafka import AIOKafkaConsumer
            from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor as AioRoundRobin
            bs = sys.argv[1]; N = 2000
            adm = AdminClient({"bootstrap.servers": bs})
            adm.create_topics([NewTopic("shared", 4, 1)])["shared"].result(15)
            def produce():
                p = Producer({"bootstrap.servers": bs})
                for i in range(N): p.produce("shared", value=b"%d" % i, partition=i % 4)
                assert p.flush(30) == 0
            produced = threading.Event()
            def kafka_python_group(gid, assignor):
                seen, sizes, lock, stop = [], {}, threading.Lock(), threading.Event()
                def run(idx):
                    k = KafkaConsumer("shared", bootstrap_servers=bs, group_id=gid, enable_auto_commit=False,
                                      auto_offset_reset="earliest", partition_assignment_strategy=[assignor])
                    while not stop.is_set():
                        batch = k.poll(timeout_ms=300)
                        sizes[idx] = len(k.assignment())
                        for msgs in batch.values():
                            with lock: seen.extend(int(m.value) for m in msgs)
                        if batch: k.commit()
                    k.close()
                ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
                [t.start() for t in ts]
                t0 = time.time()
                while sorted(sizes.values()) != [2, 2] and time.time() - t0 < 30: time.sleep(0.1)
                balanced = sorted(sizes.values())
                if not produced.is_set(): produce(); produced.set()
                while len(set(seen)) < N and time.time() - t0 < 60: time.sleep(0.1)
                stop.set(); [t.join() for t in ts]
                return {"balanced": balanced, "consumed": len(set(seen)), "dups": len(seen) - len(set(seen))}
            async def aiokafka_group(gid):
                cs = [AIOKafkaConsumer("shared", bootstrap_servers=bs, group_id=gid, enable_auto_commit=False,
                                       auto_offset_reset="earliest", partition_assignment_strategy=(AioRoundRobin,)) for _ in range(2)]
                for x in cs: await x.start()
                seen = []; t0 = time.time(); balanced = None
                try:
                    while len(set(seen)) < N and time.time() - t0 < 60:
                        for x in cs:
                            r = await x.getmany(timeout_ms=200)
                            for msgs in r.values(): seen.extend(int(m.value) for m in msgs)
                            if r: await x.commit()
                        sizes = sorted(len(x.assignment()) for x in cs)
                        if sizes == [2, 2] and balanced is None: balanced = sizes
                finally:
                    for x in cs: await x.stop()
                return {"balanced": balanced, "consumed": len(set(seen)), "dups": len(seen) - len(set(seen))}
            res = {"kafka-python sticky": kafka_python_group("kp-sticky", StickyPartitionAssignor),
                   "kafka-python roundrobin": kafka_python_group("kp-rr", RoundRobinPartitionAssignor),
                   "aiokafka roundrobin": asyncio.run(aiokafka_group("aio-rr"))}
            print(res)
            ok = all(v["balanced"] == [2, 2] and v["consumed"] == N and v["dups"] == 0 for v in res.values())
            sys.exit(0 if ok else 1)
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 240), as: UTF8.self)
        XCTAssertTrue(out.contains("'consumed': 2000"), out)
    }

    /// A restarted consumer resumes from its committed offset; auto commit; kafka-python and
    /// aiokafka in groups, each resuming where another library committed.
    func testCommittedOffsetsAcrossClientLibraries() throws {
        let c = try LocalCluster(count: 1, extra: ["group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        let script = #"""
            import sys, time, asyncio
            from confluent_kafka import Producer, Consumer
            from kafka import KafkaConsumer
            from aiokafka import AIOKafkaConsumer
            bs = sys.argv[1]
            p = Producer({"bootstrap.servers": bs})
            for i in range(300): p.produce("x", value=b"%d" % i)
            assert p.flush(30) == 0
            # confluent-kafka with auto commit reads 100 and closes (committing).
            c = Consumer({"bootstrap.servers": bs, "group.id": "mixed", "auto.offset.reset": "earliest",
                          "enable.auto.commit": True, "auto.commit.interval.ms": 100})
            c.subscribe(["x"]); got = []
            t = time.time()
            while len(got) < 100 and time.time() - t < 30:
                m = c.poll(0.5)
                if m is not None and not m.error(): got.append(int(m.value()))
            c.commit(asynchronous=False); c.close()
            assert got == list(range(100)), got[:5]
            # kafka-python resumes at 100, reads 100 more, commits.
            k = KafkaConsumer("x", bootstrap_servers=bs, group_id="mixed", enable_auto_commit=False, auto_offset_reset="earliest", consumer_timeout_ms=15000)
            got = []
            for m in k:
                got.append(int(m.value))
                if len(got) == 100: break
            k.commit(); k.close()
            assert got == list(range(100, 200)), got[:5]
            # aiokafka resumes at 200.
            async def rest():
                a = AIOKafkaConsumer("x", bootstrap_servers=bs, group_id="mixed", enable_auto_commit=False, auto_offset_reset="earliest")
                await a.start()
                try:
                    got = []
                    while len(got) < 100:
                        r = await a.getmany(timeout_ms=2000)
                        for msgs in r.values(): got += [int(m.value) for m in msgs]
                    await a.commit()
                    return got
                finally:
                    await a.stop()
            got = asyncio.run(rest())
            assert got[:100] == list(range(200, 300)), got[:5]
            # The committed offset is visible to a fresh consumer.
            c = Consumer({"bootstrap.servers": bs, "group.id": "mixed"})
            from confluent_kafka import TopicPartition
            off = c.committed([TopicPartition("x", 0)], timeout=10)[0].offset
            c.close()
            assert off == 300, off
            print("ok")
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 150), as: UTF8.self)
        XCTAssertTrue(out.contains("ok"), out)
    }

    /// Python helpers for tests that speak the group APIs on a raw socket: `send(api,
    /// version, body)` returns the response body after the correlation id.
    static let rawWirePrelude = #"""
        import sys, time, socket, struct
        bs = sys.argv[1]
        host, port = bs.split(",")[0].split(":")
        sock = socket.create_connection((host, int(port)), timeout=30)
        corr = [0]
        def s16(x): b = x.encode() if isinstance(x, str) else x; return struct.pack(">h", len(b)) + b
        def b32(x): return struct.pack(">i", len(x)) + x
        def send_on(sk, api, ver, body):
            corr[0] += 1; mine = corr[0]
            p = struct.pack(">hhi", api, ver, mine) + s16("raw-group-test") + body
            sk.sendall(struct.pack(">i", len(p)) + p)
            n = struct.unpack(">i", sk.recv(4, socket.MSG_WAITALL))[0]
            data = b""
            while len(data) < n: data += sk.recv(n - len(data))
            assert struct.unpack(">i", data[:4])[0] == mine
            return data[4:]
        def send(api, ver, body): return send_on(sock, api, ver, body)

        """#

    /// Bad group input gets Kafka's error codes and the coordinator keeps serving.
    func testBadGroupInput() throws {
        let c = try LocalCluster(count: 1, extra: ["group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        let script = Self.rawWirePrelude + #"""
            from confluent_kafka import Consumer
            def join(group, session=10000, member="", meta=b""):
                body = s16(group) + struct.pack(">ii", session, 10000) + s16(member) + s16("consumer") + struct.pack(">i", 1) + s16("range") + b32(meta)
                r = send(11, 1, body)
                err, gen = struct.unpack(">hi", r[:6]); off = 6
                proto_len = struct.unpack(">h", r[off:off+2])[0]; off += 2 + proto_len
                leader_len = struct.unpack(">h", r[off:off+2])[0]; off += 2 + leader_len
                mlen = struct.unpack(">h", r[off:off+2])[0]; mid = r[off+2:off+2+mlen].decode()
                return err, gen, mid
            def heartbeat(group, gen, member):
                return struct.unpack(">h", send(12, 0, s16(group) + struct.pack(">i", gen) + s16(member))[:2])[0]
            def sync(group, gen, member):
                body = s16(group) + struct.pack(">i", gen) + s16(member) + struct.pack(">i", 1) + s16(member) + b32(b"")
                return struct.unpack(">h", send(14, 0, body)[:2])[0]
            # FindCoordinator v0 until the offsets topic exists and has a leader.
            for _ in range(100):
                if struct.unpack(">h", send(10, 0, s16("probe"))[:2])[0] == 0: break
                time.sleep(0.2)
            # The coordinator loads its offsets partition just after it becomes leader: real
            # clients retry COORDINATOR_LOAD_IN_PROGRESS (14) / NOT_COORDINATOR (16); so does this.
            for _ in range(100):
                if heartbeat("probe", 1, "nobody") not in (14, 15, 16): break
                time.sleep(0.1)
            res = {}
            res["empty group id"] = join("")[0] == 24
            res["unknown member"] = heartbeat("probe", 1, "nobody") == 25
            err, gen, member = join("probe", meta=b"x" * 10)
            res["join v1 ok"] = err == 0
            res["stale generation"] = heartbeat("probe", gen + 5, member) == 22
            res["sync ok"] = sync("probe", gen, member) == 0
            res["heartbeat ok"] = heartbeat("probe", gen, member) == 0
            res["huge group id and metadata"] = join("g" * 10000, meta=b"y" * 100000)[0] in (0, 15, 16)
            res["session timeout too small"] = join("probe", session=1)[0] == 26
            # Still serving: a real consumer group works.
            from confluent_kafka.admin import AdminClient, NewTopic
            adm = AdminClient({"bootstrap.servers": bs})
            adm.create_topics([NewTopic("after-topic", 1, 1)])["after-topic"].result(15)
            c = Consumer({"bootstrap.servers": bs, "group.id": "after", "auto.offset.reset": "earliest"})
            c.subscribe(["after-topic"]); t = time.time(); assigned = False
            while time.time() - t < 20 and not assigned:
                c.poll(0.5); assigned = len(c.assignment()) > 0
            c.close()
            res["group works after"] = assigned
            print(res)
            sys.stderr.write(repr(res) + "\n")
            sys.exit(0 if all(res.values()) else 1)
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 120), as: UTF8.self)
        XCTAssertFalse(out.contains("False"), out)
    }

    /// The coordinator partition is Kafka's `Utils.abs(groupId.hashCode) % partitions`
    /// (Math.abs, not a sign-bit mask, for negative hash codes).
    func testCoordinatorPartitionIsKafkasFormula() {
        XCTAssertEqual(GroupCoordinator.partition(for: "payments-consumer", partitions: 50), 26)  // hashCode -242238826
        XCTAssertEqual(GroupCoordinator.partition(for: "my-group", partitions: 50), 12)  // hashCode -1906497762
        XCTAssertEqual(GroupCoordinator.partition(for: "readers", partitions: 50), 28)
        XCTAssertEqual(GroupCoordinator.partition(for: "", partitions: 50), 0)
    }

    /// Static membership (KIP-345) and Kafka's group error codes, on the wire: a restarted
    /// static member takes over its instance id without a rebalance and keeps its
    /// assignment, its old incarnation is fenced (FENCED_INSTANCE_ID) on every API, offsets
    /// of subscribed topics cannot be deleted, a member id handed out with MEMBER_ID_REQUIRED
    /// that never joins stops holding up the join after its session timeout, and the empty
    /// group id works for the offset APIs.
    func testStaticMembershipFencingAndGroupErrors() throws {
        let c = try LocalCluster(count: 1, extra: ["group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        let script = Self.rawWirePrelude + #"""
            def ns16(x): return struct.pack(">h", -1) if x is None else s16(x)
            def i32(*xs): return struct.pack(">" + "i" * len(xs), *xs)
            class R:
                def __init__(s, d): s.d, s.o = d, 0
                def take(s, fmt):
                    v = struct.unpack_from(">" + fmt, s.d, s.o); s.o += struct.calcsize(">" + fmt); return v[0] if len(v) == 1 else v
                def str(s):
                    n = s.take("h")
                    if n < 0: return None
                    v = s.d[s.o:s.o+n].decode(); s.o += n; return v
                def bytes(s):
                    n = s.take("i")
                    if n < 0: return None
                    v = s.d[s.o:s.o+n]; s.o += n; return v
            raw_send = send
            def send(api, ver, body): return R(raw_send(api, ver, body))
            def subscription(*topics):  # ConsumerProtocolSubscription v0
                return struct.pack(">h", 0) + i32(len(topics)) + b"".join(s16(t) for t in topics) + i32(-1)
            def join(group, member="", instance=None, session=10000, rebalance=10000, meta=None, ver=5):
                meta = subscription("topic-a") if meta is None else meta
                body = s16(group) + i32(session, rebalance) + s16(member) + (ns16(instance) if ver >= 5 else b"")                     + s16("consumer") + i32(1) + s16("range") + b32(meta)
                r = send(11, ver, body); r.take("i")
                err, gen = r.take("h"), r.take("i"); r.str(); leader = r.str(); mid = r.str()
                return err, gen, mid, leader
            def heartbeat(group, gen, member, instance=None):
                r = send(12, 3, s16(group) + i32(gen) + s16(member) + ns16(instance)); r.take("i"); return r.take("h")
            def sync(group, gen, member, instance=None, assignments=()):
                body = s16(group) + i32(gen) + s16(member) + ns16(instance) + i32(len(assignments))                     + b"".join(s16(m) + b32(a) for m, a in assignments)
                r = send(14, 3, body); r.take("i"); return r.take("h"), r.bytes()
            def commit(group, gen, member, instance=None, topic="topic-b", ver=7):
                body = s16(group) + i32(gen) + s16(member) + (ns16(instance) if ver >= 7 else b"") + (struct.pack(">q", -1) if 2 <= ver <= 4 else b"")                     + i32(1) + s16(topic) + i32(1) + i32(0) + struct.pack(">q", 42) + (i32(-1) if ver >= 6 else b"") + ns16("")
                r = send(8, ver, body)
                if ver >= 3: r.take("i")
                r.take("i"); r.str(); r.take("i"); r.take("i"); return r.take("h")
            def offset_delete(group, topic):
                r = send(47, 0, s16(group) + i32(1) + s16(topic) + i32(1) + i32(0))
                err = r.take("h"); r.take("i")
                if r.take("i") == 0: return err, None
                r.str(); r.take("i"); r.take("i"); return err, r.take("h")
            def offset_fetch(group):
                r = send(9, 1, s16(group) + i32(1) + s16("topic-b") + i32(1) + i32(0))
                r.take("i"); r.str(); r.take("i"); r.take("i"); off = r.take("q"); r.str(); return r.take("h"), off
            def leave_by_instance(group, instance):
                r = send(13, 3, s16(group) + i32(1) + s16("") + ns16(instance)); r.take("i")
                err = r.take("h"); n = r.take("i"); r.str(); r.str(); return err, n, r.take("h")
            for _ in range(100):
                if send(10, 0, s16("s")).take("h") == 0: break
                time.sleep(0.2)
            for _ in range(100):
                if heartbeat("s", 1, "nobody") not in (14, 15, 16): break
                time.sleep(0.1)
            res = {}
            # A static member's first join needs no MEMBER_ID_REQUIRED round.
            err, gen, m1, leader = join("s", instance="i1")
            res["static join"] = err == 0 and leader == m1
            err, assignment = sync("s", gen, m1, "i1", [(m1, b"assignment-of-i1")])
            res["sync"] = err == 0 and assignment == b"assignment-of-i1"
            res["commit as member"] = commit("s", gen, m1, "i1") == 0 and commit("s", gen, m1, "i1", topic="topic-a") == 0
            # The same instance restarts: a new member id, the same generation, no rebalance.
            err, gen2, m2, leader2 = join("s", instance="i1")
            res["static rejoin keeps the generation"] = err == 0 and gen2 == gen and m2 != m1 and leader2 == m2
            res["old heartbeat fenced"] = heartbeat("s", gen, m1, "i1") == 82
            res["old sync fenced"] = sync("s", gen, m1, "i1")[0] == 82
            res["old commit fenced"] = commit("s", gen, m1, "i1") == 82
            res["old join fenced"] = join("s", member=m1, instance="i1")[0] == 82
            res["new heartbeat"] = heartbeat("s", gen, m2, "i1") == 0
            err, assignment = sync("s", gen, m2, "i1")
            res["assignment kept"] = err == 0 and assignment == b"assignment-of-i1"
            # Offsets of a topic a member subscribes to stay; others may go.
            res["offset delete subscribed"] = offset_delete("s", "topic-a") == (0, 86)
            res["offset delete other"] = offset_delete("s", "topic-b") == (0, 0)
            res["commit without generation on a live group"] = commit("s", -1, "", ver=2) == 25
            res["commit to an unknown group with a generation"] = commit("nosuchgroup", 3, "someone", ver=2) == 22
            res["empty group id commit"] = commit("", -1, "", ver=2) == 0
            res["empty group id fetch"] = offset_fetch("") == (0, 42)
            # Admin removal by instance id empties the group.
            res["leave by instance id"] = leave_by_instance("s", "i1") == (0, 1, 0)
            res["heartbeat after removal"] = heartbeat("s", gen, m2, "i1") == 25
            # A member id handed out but never used holds the join up only for its session.
            err, _, pending, _ = join("p", ver=4, session=6000, rebalance=60000)
            res["member id required"] = err == 79 and pending
            err, _, mid, _ = join("p", ver=4, session=10000, rebalance=60000)
            t = time.time()
            err, gen, _, _ = join("p", member=mid, ver=4, session=10000, rebalance=60000)
            waited = time.time() - t
            res["join completes after the pending id expires"] = err == 0 and waited < 20
            sys.stderr.write(repr(res) + " waited %.1f s\n" % waited)
            print(res)
            sys.exit(0 if all(res.values()) else 1)
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 150), as: UTF8.self)
        XCTAssertFalse(out.contains("False"), out)
    }

    /// OffsetFetch v0/v1 have no top-level error code: a broker that does not coordinate the
    /// group answers NOT_COORDINATOR on every requested partition (an answer without the
    /// partitions reads as "nothing committed"; the fault suite's groups monitor read -1 for
    /// every partition that way during a coordinator change).
    func testOffsetFetchV1ErrorsRideOnThePartitions() throws {
        let c = try LocalCluster(count: 3, extra: ["group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        let script = Self.rawWirePrelude + #"""
            def i32(*xs): return struct.pack(">" + "i" * len(xs), *xs)
            ports = [int(x.split(":")[1]) for x in bs.split(",")]
            # The coordinator of the group (FindCoordinator v0), once the offsets topic exists.
            coord = None
            for _ in range(100):
                r = send(10, 0, s16("fetch-v1"))
                err, node = struct.unpack(">hi", r[:6])
                if err == 0: coord = node; break
                time.sleep(0.2)
            assert coord is not None
            # Ask every broker; all but the coordinator answer NOT_COORDINATOR (16) per partition.
            # (Until the coordinator has loaded the group's partition it answers
            # COORDINATOR_LOAD_IN_PROGRESS, 14, which clients retry; so does this.)
            def ask_all():
                return {p: ask(p) for p in ports}
            def ask(p):
                s = socket.create_connection((host, p), timeout=10)
                data = send_on(s, 9, 1, s16("fetch-v1") + i32(1) + s16("t") + i32(2) + i32(0, 1))
                s.close()
                off = 0
                (nt,) = struct.unpack_from(">i", data, off); off += 4
                parts = []
                for _ in range(nt):
                    (ln,) = struct.unpack_from(">h", data, off); off += 2 + ln
                    (np,) = struct.unpack_from(">i", data, off); off += 4
                    for _ in range(np):
                        idx, o = struct.unpack_from(">iq", data, off); off += 12
                        (ml,) = struct.unpack_from(">h", data, off); off += 2 + max(ml, 0)
                        (e,) = struct.unpack_from(">h", data, off); off += 2
                        parts.append((idx, o, e))
                return parts
            for _ in range(75):
                codes = ask_all()
                if sum(v == [(0, -1, 0), (1, -1, 0)] for v in codes.values()) == 1: break
                time.sleep(0.2)
            print(coord, codes); sys.stderr.write("coordinator %s: %r\n" % (coord, codes))
            others = [v for p, v in codes.items() if v != [(0, -1, 0), (1, -1, 0)]]
            ok = len(others) == 2 and all(v == [(0, -1, 16), (1, -1, 16)] for v in others)
            sys.exit(0 if ok else 1)
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 120), as: UTF8.self)
        XCTAssertTrue(out.contains(", 16)"), out)
    }

    /// Between JoinGroup and SyncGroup nobody has the new generation's assignment, so a
    /// member's commit (sent just behind its JoinGroup, with the old generation or the new)
    /// is taken for the partitions it owned in the previous generation, and only for those;
    /// a member that owned nothing gets REBALANCE_IN_PROGRESS, as in Kafka; once the group is
    /// Stable the old generation gets ILLEGAL_GENERATION.
    func testCommitsWhileTheNextGenerationIsBeingAssigned() throws {
        let c = try LocalCluster(count: 1, extra: ["group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        let script = Self.rawWirePrelude + #"""
            import threading
            sock2 = socket.create_connection((host, int(port)), timeout=30)
            def i32(*xs): return struct.pack(">" + "i" * len(xs), *xs)
            def subscription(): return struct.pack(">h", 0) + i32(1) + s16("topic-a") + i32(-1)
            def assignment(*parts): return struct.pack(">h", 0) + i32(1) + s16("topic-a") + i32(len(parts)) + i32(*parts) + i32(-1)
            def join(sk, instance, member=""):
                body = s16("cg") + i32(10000, 10000) + s16(member) + s16(instance) + s16("consumer") + i32(1) + s16("range") + b32(subscription())
                r = send_on(sk, 11, 5, body)
                err, gen = struct.unpack(">hi", r[4:10]); off = 10
                n = struct.unpack(">h", r[off:off+2])[0]; off += 2 + n
                n = struct.unpack(">h", r[off:off+2])[0]; off += 2 + n
                n = struct.unpack(">h", r[off:off+2])[0]; mid = r[off+2:off+2+n].decode()
                return err, gen, mid
            def sync(sk, gen, member, instance, assignments=()):
                body = s16("cg") + i32(gen) + s16(member) + s16(instance) + i32(len(assignments)) + b"".join(s16(m) + b32(a) for m, a in assignments)
                return struct.unpack(">h", send_on(sk, 14, 3, body)[4:6])[0]
            def commit(sk, gen, member, instance, partition):
                body = s16("cg") + i32(gen) + s16(member) + s16(instance) + i32(1) + s16("topic-a") + i32(1) + i32(partition) + struct.pack(">q", 7) + i32(-1) + s16("")
                r = send_on(sk, 8, 7, body)
                return struct.unpack(">h", r[4 + 4 + 2 + len("topic-a") + 4 + 4:][:2])[0]
            for _ in range(100):
                if struct.unpack(">h", send(10, 0, s16("cg"))[:2])[0] == 0: break
                time.sleep(0.2)
            for _ in range(100):
                if struct.unpack(">h", send(12, 0, s16("cg") + i32(1) + s16("nobody"))[:2])[0] not in (14, 15, 16): break
                time.sleep(0.1)
            res = {}
            err, g1, a = join(sock, "iA")
            res["A joins"] = err == 0
            res["A syncs"] = sync(sock, g1, a, "iA", [(a, assignment(0, 1))]) == 0
            # B joins on its own connection; the join completes when A rejoins.
            out = {}
            t = threading.Thread(target=lambda: out.update(b=join(sock2, "iB"))); t.start()
            time.sleep(1.0)
            err, g2, _ = join(sock, "iA", member=a)
            t.join(20)
            err_b, g2b, b = out.get("b", (-1, -1, ""))
            res["generation 2 formed"] = err == 0 and err_b == 0 and g2 == g1 + 1 == g2b
            res["old generation, owned partition"] = commit(sock, g1, a, "iA", 0) == 0
            res["new generation, owned partition"] = commit(sock, g2, a, "iA", 1) == 0
            res["old generation, partition not owned"] = commit(sock, g1, a, "iA", 2) == 22
            res["new member before sync"] = commit(sock2, g2, b, "iB", 0) == 27
            res["leader syncs"] = sync(sock, g2, a, "iA", [(a, assignment(0)), (b, assignment(1))]) == 0
            res["stable: old generation refused"] = commit(sock, g1, a, "iA", 0) == 22
            res["stable: new generation"] = commit(sock2, g2, b, "iB", 1) == 0
            print(res)
            sys.exit(0 if all(res.values()) else 1)
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 120), as: UTF8.self)
        XCTAssertFalse(out.contains("False"), out)
    }

    /// Three nodes: kill the group coordinator while the group consumes and commits; the
    /// group moves, committed offsets survive, everything is consumed.
    func testCoordinatorFailover() throws {
        let c = try LocalCluster(count: 3, extra: ["group.initial.rebalance.delay.ms=0", "offsets.topic.num.partitions=6"])
        defer { c.stopAll() }
        try c.startAll()
        let script = #"""
            import sys, time, threading
            from confluent_kafka import Producer, Consumer, KafkaException
            from confluent_kafka.admin import AdminClient, NewTopic
            bs, ctl = sys.argv[1], sys.argv[2]
            a = AdminClient({"bootstrap.servers": bs})
            a.create_topics([NewTopic("gf", 6, 3)])["gf"].result(20)
            p = Producer({"bootstrap.servers": bs, "acks": "all"})
            N = 6000
            for i in range(N): p.produce("gf", value=b"%d" % i)
            assert p.flush(60) == 0
            seen = []; lock = threading.Lock()
            def run(stop):
                c = Consumer({"bootstrap.servers": bs, "group.id": "gfo", "auto.offset.reset": "earliest", "enable.auto.commit": False,
                              "session.timeout.ms": 10000})
                c.subscribe(["gf"])
                while not stop.is_set():
                    m = c.poll(0.2)
                    if m is None or m.error(): continue
                    with lock: seen.append(int(m.value()))
                    try: c.commit(m, asynchronous=False)
                    except KafkaException: pass
                    time.sleep(0.0005)
                c.close()
            stop = threading.Event(); ts = [threading.Thread(target=run, args=(stop,)) for _ in range(2)]
            [t.start() for t in ts]
            t0 = time.time()
            while len(seen) < 1000 and time.time() - t0 < 30: time.sleep(0.1)
            def describe():
                for attempt in range(4):   # the admin call can be slow on a loaded machine
                    try:
                        # A new client each time, as an operator's tool: one created before the
                        # kill may keep waiting on its cached coordinator, the killed node.
                        admin = AdminClient({"bootstrap.servers": bs})
                        return admin.describe_consumer_groups(["gfo"])["gfo"].result(20)
                    except Exception as e:
                        sys.stderr.write(f"describe_consumer_groups attempt {attempt}: {e!r}\n")
                raise SystemExit("the group could not be described")
            coord = describe().coordinator.id
            open(ctl, "w").write(f"kill {coord}\n")
            t1 = time.time()
            while len(set(seen)) < N and time.time() - t1 < 90: time.sleep(0.2)
            stop.set(); [t.join() for t in ts]
            g = describe()
            res = {"consumed": len(set(seen)), "dups": len(seen) - len(set(seen)), "old": coord, "new": g.coordinator.id, "state": str(g.state)}
            print(res); sys.stderr.write("RESULT " + repr(res) + "\n")
            sys.exit(0 if len(set(seen)) == N and len(seen) - len(set(seen)) < 500 and g.coordinator.id != coord else 1)
            """#
        let ctl = c.dir + "/kill.ctl"
        let watcher = Thread {
            while !Thread.current.isCancelled {
                if let s = try? String(contentsOfFile: ctl, encoding: .utf8), let id = Int32(s.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") {
                    c.kill9(id)
                    try? FileManager.default.removeItem(atPath: ctl)
                }
                usleep(20_000)
            }
        }
        watcher.start()
        defer { watcher.cancel() }
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap, ctl], timeout: 200), as: UTF8.self)
        XCTAssertTrue(out.contains("'consumed': 6000"), out)
    }

    /// offsets.retention: an empty group's committed offsets expire (and the group is
    /// deleted) once it has been empty for the retention; a live group's never do.
    func testCommittedOffsetsExpireAfterRetention() throws {
        let c = try LocalCluster(count: 1, extra: ["group.initial.rebalance.delay.ms=0", "fjord.offsets.retention.ms=3000",
                                                   "offsets.retention.check.interval.ms=300"])
        defer { c.stopAll() }
        try c.startAll()
        let script = #"""
            import sys, time
            from confluent_kafka import Producer, Consumer, TopicPartition
            from confluent_kafka.admin import AdminClient, NewTopic
            bs = sys.argv[1]
            a = AdminClient({"bootstrap.servers": bs})
            a.create_topics([NewTopic("exp", 1, 1)])["exp"].result(15)
            p = Producer({"bootstrap.servers": bs})
            for i in range(10): p.produce("exp", value=b"%d" % i)
            assert p.flush(15) == 0
            def consume(group):
                c = Consumer({"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
                c.subscribe(["exp"])
                n, deadline = 0, time.time() + 30
                while n < 10 and time.time() < deadline:
                    m = c.poll(0.5)
                    if m is None or m.error(): continue
                    n += 1
                    c.commit(m, asynchronous=False)
                return c
            def committed(group):
                c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
                o = c.committed([TopicPartition("exp", 0)], timeout=10)[0].offset
                c.close()
                return o
            live = consume("live")           # stays a member throughout
            # An offset of a topic the live group does not subscribe to (KIP-496).
            live.commit(offsets=[TopicPartition("other", 0, 5)], asynchronous=False)
            def committed_other(group):
                c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
                o = c.committed([TopicPartition("other", 0)], timeout=10)[0].offset
                c.close()
                return o
            gone = consume("gone")
            gone.close()                     # leaves: the group is empty from now
            assert committed("gone") == 10, committed("gone")
            t0 = time.time()
            while committed("gone") != -1001 and time.time() - t0 < 20: time.sleep(0.5)
            waited = time.time() - t0
            assert committed("gone") == -1001, "the empty group's offsets did not expire"
            assert waited > 1.5, f"expired after {waited:.1f}s, before the 3 s retention"
            groups = [g.group_id for g in a.list_consumer_groups().result(10).valid]
            assert "gone" not in groups, groups
            # The live group keeps heartbeating: its offsets of the topic it consumes stay;
            # the one of a topic none of its members subscribes to expires.
            t0 = time.time()
            while committed_other("live") != -1001 and time.time() - t0 < 20: live.poll(0.5)
            assert committed_other("live") == -1001, "an unsubscribed topic's offset did not expire in a stable group"
            live.poll(0.5)
            assert committed("live") == 10, committed("live")
            live.close()
            # OffsetCommit v2 with a retention of its own (1 s) against one with -1 (the
            # broker's 3 s): standalone commits, raw requests to the coordinator (node 1).
            import socket, struct
            def commit_v2(group, retention_ms):
                def s16(x): return struct.pack(">h", len(x)) + x
                body = s16(group.encode()) + struct.pack(">i", -1) + s16(b"") + struct.pack(">q", retention_ms)
                body += struct.pack(">i", 1) + s16(b"exp") + struct.pack(">i", 1) + struct.pack(">iq", 0, 7) + s16(b"")
                req = struct.pack(">hhi", 8, 2, 42) + s16(b"raw") + body
                host, port = bs.split(",")[0].split(":")
                sock = socket.create_connection((host, int(port)), timeout=10)
                sock.sendall(struct.pack(">i", len(req)) + req)
                size = struct.unpack(">i", sock.recv(4))[0]
                resp = b""
                while len(resp) < size: resp += sock.recv(size - len(resp))
                sock.close()
                # corr, [topic name, [partition, error]]
                err = struct.unpack(">h", resp[-2:])[0]
                assert err == 0, f"OffsetCommit v2 error {err}"
            commit_v2("short", 1000)
            commit_v2("long", -1)
            assert committed("short") == 7 and committed("long") == 7
            t0 = time.time()
            while committed("short") != -1001 and time.time() - t0 < 10: time.sleep(0.2)
            short_gone = time.time() - t0
            assert committed("short") == -1001, "the commit's own retention was ignored"
            assert committed("long") == 7, f"the broker's retention applied to a commit with retention -1 after {short_gone:.1f}s"
            while committed("long") != -1001 and time.time() - t0 < 15: time.sleep(0.2)
            assert committed("long") == -1001
            print("ok", round(waited, 1))
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 120), as: UTF8.self)
        XCTAssertTrue(out.contains("ok"), out)
        XCTAssertTrue(try String(contentsOfFile: c.logPath(1), encoding: .utf8).contains("expiring committed offsets"))
    }
}
