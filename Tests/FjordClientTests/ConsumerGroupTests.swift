import FjordClient
import FjordTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import XCTest

/// The classic group protocol from the client side: range assignment, two members sharing a
/// topic through a rebalance, committed offsets surviving the members.
final class ConsumerGroupTests: XCTestCase {
    func testRangeAssignor() {
        let plan = ConsumerGroup.rangeAssign(subscriptions: ["b": ["t", "u"], "a": ["t"], "c": ["u"]],
                                             partitionCounts: ["t": 5, "u": 2])
        XCTAssertEqual(plan["a"], [TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)])
        XCTAssertEqual(plan["b"], [TopicPartition("t", 3), TopicPartition("t", 4), TopicPartition("u", 0)])
        XCTAssertEqual(plan["c"], [TopicPartition("u", 1)])
    }

    func testTwoMembersShareTopicAndCommitOffsets() throws {
        let c = try LocalCluster(count: 1, extra: ["offsets.topic.replication.factor=1", "offsets.topic.num.partitions=3",
                                                  "group.initial.rebalance.delay.ms=0"])
        defer { c.stopAll() }
        try c.startAll()
        let bs = try BootstrapAddress.parseList(c.bootstrap)
        let client = KafkaClient(config: ClientConfig(bootstrap: bs))
        defer { client.close() }
        _ = try client.awaitMetadata(topics: [], timeoutMs: 30_000) { $0.brokers.count == 1 }.wait()
        _ = try KafkaAdmin(client: client).createTopic(NewTopic(name: "shared", partitions: 3, replicationFactor: 1)).wait()

        let a = ConsumerGroup(client: KafkaClient(config: ClientConfig(bootstrap: bs)), groupId: "g", topics: ["shared"])
        a.heartbeatIntervalMs = 200
        a.autoCommitIntervalMs = nil
        let first = try a.join()
        XCTAssertEqual(first.keys.sorted(), [TopicPartition("shared", 0), TopicPartition("shared", 1), TopicPartition("shared", 2)])
        XCTAssertTrue(first.values.allSatisfy { $0 == nil }, "nothing committed yet")
        XCTAssertTrue(a.isLeader)
        try a.commit([TopicPartition("shared", 0): 5, TopicPartition("shared", 2): 7])

        // B joins: A learns of the rebalance from its heartbeat and rejoins.
        let b = ConsumerGroup(client: KafkaClient(config: ClientConfig(bootstrap: bs)), groupId: "g", topics: ["shared"])
        let bResult = NIOLockedValueBox<Result<[TopicPartition: Int64?], Error>?>(nil)
        let t = Thread { bResult.withLockedValue { $0 = Result { try b.join() } } }
        t.start()
        var rejoined: [TopicPartition: Int64?]? = nil
        let deadline = Date().addingTimeInterval(30)
        while rejoined == nil && Date() < deadline {
            if try a.poll(positions: { [:] }) == .rebalance { rejoined = try a.join() }
            usleep(50_000)
        }
        while bResult.withLockedValue({ $0 }) == nil && Date() < deadline { usleep(50_000) }
        let bAssigned = try XCTUnwrap(bResult.withLockedValue { $0 }).get()
        let aAssigned = try XCTUnwrap(rejoined)
        XCTAssertEqual(Set(aAssigned.keys).union(bAssigned.keys).count, 3)
        XCTAssertTrue(Set(aAssigned.keys).isDisjoint(with: bAssigned.keys))
        XCTAssertEqual(a.generationId, b.generationId)
        // Committed offsets come back to whoever owns the partition now.
        let all = aAssigned.merging(bAssigned) { x, _ in x }
        XCTAssertEqual(all[TopicPartition("shared", 0)]!, 5)
        XCTAssertEqual(all[TopicPartition("shared", 2)]!, 7)
        XCTAssertNil(all[TopicPartition("shared", 1)]!)
        b.leave()
        a.leave()
        a.client.close()
        b.client.close()
    }
}
