import FjordController
import FjordMetadata
import FjordProtocol
import FjordWire
import XCTest

final class PartitionTests: XCTestCase {
    /// A cluster of brokers 1–3 and topic "t" with one partition on [1, 2, 3], led by 1.
    func cluster(configure: (inout ControllerConfig) -> Void = { _ in }) -> ControllerHarness {
        let h = ControllerHarness(configure: configure)
        h.startBrokers([1, 2, 3])
        h.createTopic("t", assignments: [[1, 2, 3]])
        return h
    }

    func alter(_ h: ControllerHarness, isr: [Int32], broker: Int32 = 1, brokerEpoch: Int64? = nil,
               leaderEpoch: Int32? = nil, partitionEpoch: Int32? = nil, isrEpochs: [Int64]? = nil,
               version: Int16 = 3) -> AlterPartitionResponse {
        let p = h.partition("t", 0)
        var req = AlterPartitionRequest()
        req.brokerId = broker
        req.brokerEpoch = brokerEpoch ?? h.image.brokers[broker]?.epoch ?? -1
        var td = AlterPartitionRequest.TopicData()
        td.topicName = "t"
        td.topicId = h.image.topics["t"]?.id ?? .zero
        var pd = AlterPartitionRequest.PartitionData()
        pd.partitionIndex = 0
        pd.leaderEpoch = leaderEpoch ?? p?.leaderEpoch ?? 0
        pd.partitionEpoch = partitionEpoch ?? p?.partitionEpoch ?? 0
        if version >= 3 {
            pd.newIsrWithEpochs = isr.enumerated().map {
                var s = AlterPartitionRequest.BrokerState()
                s.brokerId = $0.element
                s.brokerEpoch = isrEpochs?[$0.offset] ?? h.image.brokers[$0.element]?.epoch ?? -1
                return s
            }
        } else {
            pd.newIsr = isr
        }
        td.partitions = [pd]
        req.topics = [td]
        return h.run { $0.alterPartition(req, version: version) }.response
    }

    func code(_ r: AlterPartitionResponse) -> ErrorCode {
        ErrorCode(code: r.topics.first?.partitions.first?.errorCode ?? -100)
    }

    func testShrinkAndExpandIsr() throws {
        let h = cluster()
        var r = alter(h, isr: [1, 2])
        XCTAssertEqual(code(r), .noError)
        let pr = try XCTUnwrap(r.topics.first?.partitions.first)
        XCTAssertEqual(pr.isr, [1, 2])
        XCTAssertEqual(pr.leaderId, 1)
        XCTAssertEqual(pr.leaderEpoch, 0, "an ISR change keeps the leader epoch")
        XCTAssertEqual(pr.partitionEpoch, 1)
        XCTAssertEqual(h.partition("t", 0)?.isr, [1, 2])
        r = alter(h, isr: [1, 2, 3])
        XCTAssertEqual(code(r), .noError)
        XCTAssertEqual(h.partition("t", 0)?.partitionEpoch, 2)
        // The same ISR again changes nothing but answers with the state.
        let before = h.log.count
        r = alter(h, isr: [1, 2, 3])
        XCTAssertEqual(code(r), .noError)
        XCTAssertEqual(h.log.count, before)
    }

    func testAlterPartitionRejections() {
        let h = cluster()
        XCTAssertEqual(code(alter(h, isr: [1, 2], leaderEpoch: 5)), .fencedLeaderEpoch)
        XCTAssertEqual(code(alter(h, isr: [1, 2], partitionEpoch: 7)), .invalidUpdateVersion)
        XCTAssertEqual(code(alter(h, isr: [2, 3], broker: 2)), .invalidRequest, "only the leader alters")
        XCTAssertEqual(code(alter(h, isr: [2, 3])), .invalidRequest, "the ISR must keep the leader")
        XCTAssertEqual(code(alter(h, isr: [1, 1])), .invalidRequest)
        XCTAssertEqual(code(alter(h, isr: [1, 9])), .invalidRequest, "not a replica")
        XCTAssertEqual(code(alter(h, isr: [1, 2], isrEpochs: [-1, 999])), .ineligibleReplica, "stale broker epoch of an ISR member")
        XCTAssertEqual(code(alter(h, isr: [1, 2], isrEpochs: [-1, -1])), .noError, "-1 skips the epoch check")
        let resp = alter(h, isr: [1], brokerEpoch: 4242)
        XCTAssertEqual(ErrorCode(code: resp.errorCode), .staleBrokerEpoch)
        XCTAssertTrue(resp.topics.isEmpty)
    }

    func testFencedBrokerCannotJoinTheIsr() {
        let h = cluster()
        XCTAssertEqual(code(alter(h, isr: [1, 2])), .noError)
        XCTAssertEqual(code(alter(h, isr: [1, 3])), .noError)
        _ = h.heartbeat(2, wantFence: true)
        XCTAssertEqual(code(alter(h, isr: [1, 2, 3])), .ineligibleReplica)
        XCTAssertEqual(code(alter(h, isr: [1, 2, 3], version: 1)), .operationNotAttempted)
        _ = h.heartbeat(3, wantShutDown: true)
        XCTAssertEqual(h.partition("t", 0)?.isr, [1], "shutting down leaves the ISR")
    }

    func testVersionsAddressTopicsByNameOrId() {
        let h = cluster()
        XCTAssertEqual(code(alter(h, isr: [1, 2], version: 1)), .noError)
        XCTAssertEqual(code(alter(h, isr: [1, 2, 3], version: 2)), .noError)
        var req = AlterPartitionRequest()
        req.brokerId = 1
        req.brokerEpoch = h.image.brokers[1]?.epoch ?? -1
        var td = AlterPartitionRequest.TopicData()
        td.topicId = KafkaUUID(high: 1, low: 1)
        td.topicName = "nope"
        var pd = AlterPartitionRequest.PartitionData()
        pd.partitionIndex = 0
        td.partitions = [pd]
        req.topics = [td]
        XCTAssertEqual(code(h.run { $0.alterPartition(req, version: 2) }.response), .unknownTopicId)
        XCTAssertEqual(code(h.run { $0.alterPartition(req, version: 1) }.response), .unknownTopicOrPartition)
    }

    func elect(_ h: ControllerHarness, type: Int8, _ partitions: [Int32]? ) -> ElectLeadersResponse {
        var req = ElectLeadersRequest()
        req.electionType = type
        if let ps = partitions {
            var tp = ElectLeadersRequest.TopicPartitions()
            tp.topic = "t"
            tp.partitions = ps
            req.topicPartitions = [tp]
        } else {
            req.topicPartitions = nil
        }
        return h.run { $0.electLeaders(req) }.response
    }

    func testPreferredElection() throws {
        let h = cluster()
        var r = elect(h, type: 0, [0])
        XCTAssertEqual(ErrorCode(code: r.replicaElectionResults[0].partitionResult[0].errorCode), .electionNotNeeded)
        // Broker 1 goes away and comes back: 2 leads, 1 rejoins the ISR.
        _ = h.heartbeat(1, wantFence: true)
        XCTAssertEqual(h.partition("t", 0)?.leader, 2)
        _ = h.heartbeat(1)
        XCTAssertEqual(h.partition("t", 0)?.isr, [2, 3])
        r = elect(h, type: 0, [0])
        XCTAssertEqual(ErrorCode(code: r.replicaElectionResults[0].partitionResult[0].errorCode), .preferredLeaderNotAvailable,
                       "the preferred replica is not in the ISR")
        var req = AlterPartitionRequest()
        req.brokerId = 2
        req.brokerEpoch = h.image.brokers[2]?.epoch ?? -1
        var td = AlterPartitionRequest.TopicData()
        td.topicId = h.image.topics["t"]?.id ?? .zero
        var pd = AlterPartitionRequest.PartitionData()
        let p = try XCTUnwrap(h.partition("t", 0))
        pd.leaderEpoch = p.leaderEpoch
        pd.partitionEpoch = p.partitionEpoch
        pd.newIsr = [2, 3, 1]
        td.partitions = [pd]
        req.topics = [td]
        XCTAssertEqual(code(h.run { $0.alterPartition(req, version: 2) }.response), .noError)
        r = elect(h, type: 0, [0, 7])
        XCTAssertEqual(r.replicaElectionResults[0].partitionResult.map { ErrorCode(code: $0.errorCode) },
                       [.noError, .unknownTopicOrPartition])
        XCTAssertNil(r.replicaElectionResults[0].partitionResult[0].errorMessage)
        let after = try XCTUnwrap(h.partition("t", 0))
        XCTAssertEqual(after.leader, 1)
        XCTAssertEqual(after.leaderEpoch, p.leaderEpoch + 1)
        // All partitions: only those needing an election are reported.
        XCTAssertTrue(elect(h, type: 0, nil).replicaElectionResults.isEmpty)
    }

    func testUncleanElection() throws {
        let h = cluster()
        XCTAssertEqual(code(alter(h, isr: [1])), .noError)
        _ = h.heartbeat(1, wantFence: true)
        var p = try XCTUnwrap(h.partition("t", 0))
        XCTAssertEqual(p.leader, -1, "no clean candidate and unclean election is off")
        XCTAssertEqual(p.isr, [1])
        var r = elect(h, type: 0, [0])
        XCTAssertEqual(ErrorCode(code: r.replicaElectionResults[0].partitionResult[0].errorCode), .preferredLeaderNotAvailable)
        r = elect(h, type: 1, [0])
        XCTAssertEqual(ErrorCode(code: r.replicaElectionResults[0].partitionResult[0].errorCode), .noError)
        p = try XCTUnwrap(h.partition("t", 0))
        XCTAssertEqual(p.leader, 2)
        XCTAssertEqual(p.isr, [2])
        XCTAssertEqual(p.leaderRecoveryState, 1)
        r = elect(h, type: 1, [0])
        XCTAssertEqual(ErrorCode(code: r.replicaElectionResults[0].partitionResult[0].errorCode), .electionNotNeeded)
        // The new leader reports recovery done.
        var req = AlterPartitionRequest()
        req.brokerId = 2
        req.brokerEpoch = h.image.brokers[2]?.epoch ?? -1
        var td = AlterPartitionRequest.TopicData()
        td.topicId = h.image.topics["t"]?.id ?? .zero
        var pd = AlterPartitionRequest.PartitionData()
        pd.leaderEpoch = p.leaderEpoch
        pd.partitionEpoch = p.partitionEpoch
        pd.newIsr = [2]
        pd.leaderRecoveryState = 0
        td.partitions = [pd]
        req.topics = [td]
        XCTAssertEqual(code(h.run { $0.alterPartition(req, version: 2) }.response), .noError)
        XCTAssertEqual(h.partition("t", 0)?.leaderRecoveryState, 0)
    }

    func testUncleanElectionByTopicConfigOnTick() throws {
        let h = cluster()
        XCTAssertEqual(code(alter(h, isr: [1])), .noError)
        _ = h.heartbeat(1, wantFence: true)
        XCTAssertEqual(h.partition("t", 0)?.leader, -1)
        var req = IncrementalAlterConfigsRequest()
        var res = IncrementalAlterConfigsRequest.AlterConfigsResource()
        res.resourceType = ConfigResourceType.topic.rawValue
        res.resourceName = "t"
        var c = IncrementalAlterConfigsRequest.AlterableConfig()
        c.name = "unclean.leader.election.enable"
        c.value = "true"
        res.configs = [c]
        req.resources = [res]
        h.run { $0.incrementalAlterConfigs(req) }
        h.tick(to: 1)
        let p = try XCTUnwrap(h.partition("t", 0))
        XCTAssertEqual(p.leader, 2)
        XCTAssertEqual(p.leaderRecoveryState, 1)
    }

    func testAutomaticPreferredLeaderRebalance() throws {
        let h = cluster { $0.leaderImbalanceCheckIntervalMs = 60_000 }
        _ = h.heartbeat(1, wantFence: true)
        _ = h.heartbeat(1)
        var req = AlterPartitionRequest()
        req.brokerId = 2
        req.brokerEpoch = h.image.brokers[2]?.epoch ?? -1
        var td = AlterPartitionRequest.TopicData()
        td.topicId = h.image.topics["t"]?.id ?? .zero
        var pd = AlterPartitionRequest.PartitionData()
        let p = try XCTUnwrap(h.partition("t", 0))
        pd.leaderEpoch = p.leaderEpoch
        pd.partitionEpoch = p.partitionEpoch
        pd.newIsr = [2, 3, 1]
        td.partitions = [pd]
        req.topics = [td]
        XCTAssertEqual(code(h.run { $0.alterPartition(req, version: 2) }.response), .noError)
        XCTAssertEqual(h.partition("t", 0)?.leader, 2)
        h.now = 59_000
        for b: Int32 in [1, 2, 3] { _ = h.heartbeat(b) }
        XCTAssertTrue(h.tick(to: 59_000).isEmpty, "not due yet")
        h.now = 60_000
        for b: Int32 in [1, 2, 3] { _ = h.heartbeat(b) }
        XCTAssertFalse(h.tick(to: 60_000).isEmpty)
        XCTAssertEqual(h.partition("t", 0)?.leader, 1)
    }
}
