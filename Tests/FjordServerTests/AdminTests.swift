import FjordTestSupport
import Foundation
import XCTest

/// confluent-kafka's AdminClient against a three-node cluster: topics are created with
/// leaders spread over the brokers, grown, refused a decrease, configured and deleted; a
/// killed broker loses its leaderships to ISR members within the session timeout.
final class AdminTests: XCTestCase {
    func testTopicLifecycleWithConfluentAdmin() throws {
        // librdkafka asks for its known topics with auto-creation allowed; keep the deleted one deleted.
        let c = try LocalCluster(count: 3, extra: ["auto.create.topics.enable=false"])
        defer { c.stopAll() }
        try c.startAll()
        let script = #"""
            import sys, time
            from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource
            from confluent_kafka import KafkaException
            a = AdminClient({"bootstrap.servers": sys.argv[1]})
            deadline = time.time() + 30
            while len(a.list_topics(timeout=5).brokers) < 3:
                assert time.time() < deadline, "brokers did not register"
                time.sleep(0.2)
            a.create_topics([NewTopic("orders", 6, 3, config={"retention.ms": "3600000"})])["orders"].result(15)
            # Creating it again is TOPIC_ALREADY_EXISTS.
            try:
                a.create_topics([NewTopic("orders", 1, 1)])["orders"].result(15); raise SystemExit("duplicate create accepted")
            except KafkaException as e:
                assert e.args[0].name() == "TOPIC_ALREADY_EXISTS", e
            # RF above the broker count is INVALID_REPLICATION_FACTOR.
            try:
                a.create_topics([NewTopic("wide", 1, 4)])["wide"].result(15); raise SystemExit("rf 4 accepted")
            except KafkaException as e:
                assert e.args[0].name() == "INVALID_REPLICATION_FACTOR", e
            def describe():
                for _ in range(100):
                    t = a.list_topics("orders", timeout=5).topics["orders"]
                    if t.error is None and all(p.leader >= 0 for p in t.partitions.values()): return t
                    time.sleep(0.1)
                raise SystemExit("orders has no leaders")
            t = describe()
            assert len(t.partitions) == 6, t.partitions
            leaders = [p.leader for p in t.partitions.values()]
            assert sorted(set(leaders)) == [1, 2, 3], leaders
            assert all(leaders.count(b) == 2 for b in (1, 2, 3)), leaders
            assert all(sorted(p.replicas) == [1, 2, 3] and sorted(p.isrs) == [1, 2, 3] for p in t.partitions.values())
            a.create_partitions([NewPartitions("orders", 8)])["orders"].result(15)
            # Brokers learn of the new partitions as they follow the metadata log, each at its
            # own pace: wait for three answers in a row (from any brokers) to show all eight.
            seen8 = 0
            for _ in range(200):
                seen8 = seen8 + 1 if len(a.list_topics("orders", timeout=5).topics["orders"].partitions) == 8 else 0
                if seen8 == 3: break
                time.sleep(0.05)
            assert seen8 == 3, a.list_topics("orders", timeout=5).topics["orders"].partitions
            try:
                a.create_partitions([NewPartitions("orders", 4)])["orders"].result(15); raise SystemExit("decrease accepted")
            except KafkaException as e:
                assert e.args[0].name() == "INVALID_PARTITIONS", e
                print("decrease refused:", e.args[0].str())
            r = ConfigResource("topic", "orders", set_config={"retention.ms": "7200000"})
            a.alter_configs([r])[r].result(15)
            a.delete_topics(["orders"])["orders"].result(15)
            # A fresh client: librdkafka keeps refreshing topics it has handles for.
            b = AdminClient({"bootstrap.servers": sys.argv[1]})
            # Every broker's image catches up: absent in three answers in a row.
            gone = 0
            for _ in range(200):
                gone = gone + 1 if "orders" not in b.list_topics(timeout=5).topics else 0
                if gone == 3: break
                time.sleep(0.05)
            assert gone == 3, b.list_topics(timeout=5).topics
            print("ok")
            """#
        let out = String(decoding: try TestPython.run(script, args: [c.bootstrap], timeout: 120), as: UTF8.self)
        XCTAssertTrue(out.contains("ok"), out)
        XCTAssertTrue(out.contains("decrease refused"), out)
    }

    func testKilledBrokerLosesLeadershipToIsr() throws {
        let c = try LocalCluster(count: 3, extra: ["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500"])
        defer { c.stopAll() }
        try c.startAll()
        let setup = #"""
            import sys, time
            from confluent_kafka.admin import AdminClient, NewTopic
            a = AdminClient({"bootstrap.servers": sys.argv[1]})
            deadline = time.time() + 30
            while len(a.list_topics(timeout=5).brokers) < 3:
                assert time.time() < deadline, "brokers did not register"
                time.sleep(0.2)
            a.create_topics([NewTopic("t", 6, 3)])["t"].result(15)
            print("created")
            """#
        _ = try TestPython.run(setup, args: [c.bootstrap], timeout: 60)
        c.kill9(3)
        let t0 = Date()
        let check = #"""
            import sys, time
            from confluent_kafka.admin import AdminClient
            a = AdminClient({"bootstrap.servers": sys.argv[1]})
            deadline = time.time() + float(sys.argv[2])
            while True:
                t = a.list_topics("t", timeout=5).topics["t"]
                ps = list(t.partitions.values())
                if all(p.leader in (1, 2) and 3 not in p.isrs for p in ps): break
                assert time.time() < deadline, [(p.id, p.leader, p.isrs) for p in ps]
                time.sleep(0.1)
            print("moved")
            """#
        _ = try TestPython.run(check, args: ["127.0.0.1:\(c.brokerPorts[1]!)", "8"], timeout: 60)
        let elapsed = Date().timeIntervalSince(t0)
        XCTAssertLessThan(elapsed, 3.0 + 2.0 + 1.0, "leaders moved after \(elapsed) s")
        // Restarted, it catches up and rejoins every ISR; a preferred election gives it back
        // the partitions whose first replica it is.
        try c.start(3)
        try c.waitForBroker(3)
        let back = #"""
            import sys, time
            from confluent_kafka import TopicPartition, ElectionType
            from confluent_kafka.admin import AdminClient
            a = AdminClient({"bootstrap.servers": sys.argv[1]})
            deadline = time.time() + 30
            while True:
                ps = list(a.list_topics("t", timeout=5).topics["t"].partitions.values())
                if all(sorted(p.isrs) == [1, 2, 3] for p in ps): break
                assert time.time() < deadline, [(p.id, p.leader, p.isrs) for p in ps]
                time.sleep(0.2)
            pref = [TopicPartition("t", p.id) for p in ps if p.replicas[0] == 3]
            assert pref, "broker 3 is the preferred leader of no partition"
            a.elect_leaders(ElectionType.PREFERRED, pref).result(15)
            deadline = time.time() + 15
            while True:
                ps = a.list_topics("t", timeout=5).topics["t"].partitions
                if all(ps[tp.partition].leader == 3 for tp in pref): break
                assert time.time() < deadline, [(p.id, p.leader, p.replicas) for p in ps.values()]
                time.sleep(0.2)
            print("preferred leaders restored", len(pref))
            """#
        let out = String(decoding: try TestPython.run(back, args: [c.bootstrap], timeout: 90), as: UTF8.self)
        XCTAssertTrue(out.contains("preferred leaders restored"), out)
    }
}
