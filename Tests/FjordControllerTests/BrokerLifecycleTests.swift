import FjordController
import FjordMetadata
import FjordProtocol
import FjordWire
import XCTest

final class BrokerLifecycleTests: XCTestCase {
    func testBootstrapWritesMetadataVersionOnce() {
        let h = ControllerHarness()
        XCTAssertEqual(h.image.metadataVersion, 21)
        XCTAssertEqual(h.log.count, 1)
        XCTAssertTrue(h.controller.bootstrapRecords().isEmpty, "already bootstrapped")
        let c = QuorumController(config: ControllerConfig(nodeId: 1, clusterId: "x"), seed: 0, nowMs: 0)
        guard case let .featureLevel(f)? = c.bootstrapRecords(metadataVersion: 20).first else { return XCTFail() }
        XCTAssertEqual(f.featureLevel, 20)
    }

    func testRegistrationAssignsTheRecordOffsetAsEpochAndStartsFenced() {
        let h = ControllerHarness()
        let offset = h.controller.nextWriteOffset
        let resp = h.register(1)
        XCTAssertEqual(ErrorCode(code: resp.errorCode), .noError)
        XCTAssertEqual(resp.brokerEpoch, offset)
        let b = h.image.brokers[1]
        XCTAssertEqual(b?.epoch, offset)
        XCTAssertEqual(b?.fenced, true)
        XCTAssertEqual(b?.endpoints.first?.host, "broker1")
        XCTAssertEqual(b?.logDirs.count, 1)
    }

    func testRegistrationChecks() {
        let h = ControllerHarness()
        var req = h.registrationRequest(1)
        req.clusterId = "other"
        XCTAssertEqual(ErrorCode(code: h.run { $0.registerBroker(req, nowMs: 0) }.response.errorCode), .inconsistentClusterId)
        req = h.registrationRequest(1, mv: 1...20)
        XCTAssertEqual(ErrorCode(code: h.run { $0.registerBroker(req, nowMs: 0) }.response.errorCode), .unsupportedVersion)
        req = h.registrationRequest(1)
        req.features = []
        XCTAssertEqual(ErrorCode(code: h.run { $0.registerBroker(req, nowMs: 0) }.response.errorCode), .unsupportedVersion,
                       "a broker must declare the finalized metadata.version")
        req = h.registrationRequest(1)
        req.logDirs = [KafkaUUID(high: 0, low: 1)]
        XCTAssertEqual(ErrorCode(code: h.run { $0.registerBroker(req, nowMs: 0) }.response.errorCode), .invalidRegistration)
        h.register(2)
        req = h.registrationRequest(1)
        req.logDirs = h.registrationRequest(2).logDirs
        XCTAssertEqual(ErrorCode(code: h.run { $0.registerBroker(req, nowMs: 0) }.response.errorCode), .invalidRegistration,
                       "a directory belongs to one broker")
        XCTAssertNil(h.image.brokers[1])
    }

    func testDuplicateRegistrationWhileTheSessionIsAlive() {
        let h = ControllerHarness()
        h.startBrokers([1])
        let other = KafkaUUID(high: 0x999, low: 1)
        XCTAssertEqual(ErrorCode(code: h.register(1, incarnation: other).errorCode), .duplicateBrokerRegistration)
        // The same incarnation may re-register (a retry).
        XCTAssertEqual(ErrorCode(code: h.register(1).errorCode), .noError)
        h.heartbeat(1)
        XCTAssertEqual(ErrorCode(code: h.register(1, incarnation: other).errorCode), .duplicateBrokerRegistration)
        // Once the session has expired, a new incarnation may take the id.
        h.tick(to: 20_000)
        XCTAssertEqual(h.image.brokers[1]?.fenced, true)
        XCTAssertEqual(ErrorCode(code: h.register(1, incarnation: other).errorCode), .noError)
    }

    func testHeartbeatUnfencesOnceCaughtUpWithItsRegistration() {
        let h = ControllerHarness()
        let epoch = h.register(1).brokerEpoch
        var resp = h.heartbeat(1, offset: epoch - 1)
        XCTAssertTrue(resp.isFenced)
        XCTAssertFalse(resp.isCaughtUp)
        XCTAssertEqual(h.image.brokers[1]?.fenced, true)
        resp = h.heartbeat(1, offset: epoch)
        XCTAssertFalse(resp.isFenced)
        XCTAssertTrue(resp.isCaughtUp)
        XCTAssertFalse(resp.shouldShutDown)
        XCTAssertEqual(h.image.brokers[1]?.fenced, false)
        resp = h.heartbeat(1, epoch: epoch - 1)
        XCTAssertEqual(ErrorCode(code: resp.errorCode), .staleBrokerEpoch)
        resp = h.heartbeat(7, epoch: 3)
        XCTAssertEqual(ErrorCode(code: resp.errorCode), .staleBrokerEpoch, "unregistered")
    }

    func testSessionTimeoutFencesAndMovesLeadership() throws {
        let h = ControllerHarness()
        h.startBrokers([1, 2, 3])
        h.createTopic("t", partitions: 3, rf: 3)
        let ledBy1 = h.image.partitionsLed(by: 1)
        XCTAssertEqual(ledBy1.count, 1)
        // Brokers 2 and 3 keep heartbeating; 1 goes silent.
        h.now = 5_000
        h.heartbeat(2)
        h.heartbeat(3)
        XCTAssertTrue(h.tick(to: 9_000).isEmpty, "not yet past the session timeout")
        h.now = 9_001
        h.heartbeat(2)
        h.heartbeat(3)
        let records = h.tick(to: 9_001)
        XCTAssertEqual(h.image.brokers[1]?.fenced, true)
        guard case .brokerRegistrationChange? = records.last else { return XCTFail("the fence record comes last: \(records)") }
        XCTAssertTrue(h.image.partitionsLed(by: 1).isEmpty)
        for (_, _, p) in h.image.allPartitions() {
            XCTAssertFalse(p.isr.contains(1))
            XCTAssertTrue(p.isr.contains(p.leader))
        }
        let moved = try XCTUnwrap(h.image.partition(topicId: ledBy1[0].topicId, partition: ledBy1[0].partition))
        XCTAssertEqual(moved.leaderEpoch, 1)
    }

    func testLastIsrMemberStaysWhenFencedAndLeadsAgainWhenBack() throws {
        let h = ControllerHarness()
        h.startBrokers([1])
        h.createTopic("t", partitions: 1, rf: 1)
        h.tick(to: 10_000)
        var p = try XCTUnwrap(h.partition("t", 0))
        XCTAssertEqual(p.leader, -1)
        XCTAssertEqual(p.isr, [1], "the ISR never becomes empty")
        XCTAssertEqual(p.leaderEpoch, 1)
        h.heartbeat(1)
        p = try XCTUnwrap(h.partition("t", 0))
        XCTAssertEqual(p.leader, 1, "unfencing elects the broker where it is in the ISR")
        XCTAssertEqual(p.leaderEpoch, 2)
    }

    func testControlledShutdown() throws {
        let h = ControllerHarness()
        h.startBrokers([1, 2])
        h.createTopic("t", partitions: 2, rf: 2)
        XCTAssertEqual(h.image.partitionsLed(by: 1).count, 1)
        // Broker 2 has not reported an offset to this controller past the shutdown records yet.
        var resp = h.heartbeat(1, wantShutDown: true)
        XCTAssertFalse(resp.shouldShutDown)
        XCTAssertFalse(resp.isFenced)
        XCTAssertEqual(h.image.brokers[1]?.inControlledShutdown, true)
        XCTAssertTrue(h.image.partitionsLed(by: 1).isEmpty, "leaderships moved away first")
        XCTAssertTrue(h.image.partitions(inIsrOf: 1).isEmpty)
        let shutdownRecordsEnd = h.lastOffset
        h.heartbeat(2, offset: shutdownRecordsEnd - 1)
        resp = h.heartbeat(1, wantShutDown: true)
        XCTAssertFalse(resp.shouldShutDown, "broker 2 has not replayed the leadership changes")
        h.heartbeat(2, offset: shutdownRecordsEnd)
        resp = h.heartbeat(1, wantShutDown: true)
        XCTAssertTrue(resp.shouldShutDown)
        XCTAssertTrue(resp.isFenced)
        XCTAssertEqual(h.image.brokers[1]?.fenced, true)
        // A fenced broker asking to shut down may at once.
        XCTAssertTrue(h.heartbeat(1, wantShutDown: true).shouldShutDown)
    }

    func testControlledShutdownOfTheOnlyReplicaLeavesThePartitionLeaderless() throws {
        let h = ControllerHarness()
        h.startBrokers([1])
        h.createTopic("t", partitions: 1, rf: 1)
        _ = h.heartbeat(1, wantShutDown: true)
        let p = try XCTUnwrap(h.partition("t", 0))
        XCTAssertEqual(p.leader, -1)
        XCTAssertEqual(p.isr, [1])
        XCTAssertTrue(h.heartbeat(1, wantShutDown: true).shouldShutDown)
    }

    func testWantFence() {
        let h = ControllerHarness()
        h.startBrokers([1])
        XCTAssertTrue(h.heartbeat(1, wantFence: true).isFenced)
        XCTAssertEqual(h.image.brokers[1]?.fenced, true)
        XCTAssertTrue(h.heartbeat(1, wantFence: true).isFenced, "stays fenced while it wants to")
    }

    /// A broker restarted (a new incarnation) once its old session ran out, before the
    /// controller fenced it: its new registration takes it out of ISRs and leaderships,
    /// fenced. (Within the session a new incarnation is a duplicate registration.)
    func testReRegistrationTakesTheBrokerOutOfIsrsAndLeaderships() throws {
        let h = ControllerHarness()
        h.startBrokers([1, 2])
        h.createTopic("t", partitions: 2, rf: 2)
        XCTAssertEqual(h.register(1, incarnation: KafkaUUID(high: 0x200, low: 1)).errorCode, ErrorCode.duplicateBrokerRegistration.rawValue)
        h.now += 20_000
        let old = try XCTUnwrap(h.image.brokers[1]?.epoch)
        let r = h.register(1, incarnation: KafkaUUID(high: 0x200, low: 1))
        XCTAssertGreaterThan(r.brokerEpoch, old)
        XCTAssertTrue(h.image.partitionsLed(by: 1).isEmpty)
        XCTAssertTrue(h.image.partitions(inIsrOf: 1).isEmpty)
        XCTAssertEqual(h.image.brokers[1]?.fenced, true)
    }

    /// The same incarnation registering again (a retried or duplicated request) keeps its
    /// epoch, its state, its ISRs and leaderships (Kafka amends the registration); before,
    /// each retry bumped the epoch and a broker whose retries crossed could stay fenced for
    /// good (the controller simulation found it, seed 200559).
    func testTheSameIncarnationRegisteringAgainKeepsItsEpoch() throws {
        let h = ControllerHarness()
        h.startBrokers([1, 2])
        h.createTopic("t", partitions: 2, rf: 2)
        let before = try XCTUnwrap(h.image.brokers[1])
        let led = h.image.partitionsLed(by: 1).count
        let r = h.register(1, incarnation: h.incarnations[1])
        XCTAssertEqual(r.errorCode, 0)
        XCTAssertEqual(r.brokerEpoch, before.epoch)
        XCTAssertEqual(h.image.brokers[1]?.epoch, before.epoch)
        XCTAssertEqual(h.image.brokers[1]?.fenced, false)
        XCTAssertEqual(h.image.partitionsLed(by: 1).count, led)
        XCTAssertFalse(h.heartbeat(1).isFenced, "heartbeats with the epoch it had still count")
    }

    func testUnregister() throws {
        let h = ControllerHarness()
        h.startBrokers([1, 2])
        h.createTopic("t", partitions: 2, rf: 2)
        var req = UnregisterBrokerRequest()
        req.brokerId = 1
        let resp = h.run { $0.unregisterBroker(req) }
        XCTAssertEqual(ErrorCode(code: resp.response.errorCode), .noError)
        XCTAssertNil(h.image.brokers[1])
        XCTAssertTrue(h.image.partitions(inIsrOf: 1).isEmpty)
        guard case .unregisterBroker? = resp.records.last else { return XCTFail() }
        let again = h.run { $0.unregisterBroker(req) }.response
        XCTAssertEqual(ErrorCode(code: again.errorCode), .brokerIdNotRegistered)
        XCTAssertEqual(again.errorMessage, "Broker ID 1 is not currently registered")
    }

    func testAllocateProducerIds() {
        let h = ControllerHarness()
        h.startBrokers([1])
        var req = AllocateProducerIdsRequest()
        req.brokerId = 1
        req.brokerEpoch = h.image.brokers[1]?.epoch ?? -1
        var resp = h.run { $0.allocateProducerIds(req) }.response
        XCTAssertEqual(resp.producerIdStart, 0)
        XCTAssertEqual(resp.producerIdLen, 1000)
        resp = h.run { $0.allocateProducerIds(req) }.response
        XCTAssertEqual(resp.producerIdStart, 1000)
        XCTAssertEqual(h.image.nextProducerId, 2000)
        req.brokerEpoch = 12345
        XCTAssertEqual(ErrorCode(code: h.run { $0.allocateProducerIds(req) }.response.errorCode), .staleBrokerEpoch)
    }

    func testRegisterController() {
        let h = ControllerHarness()
        var req = ControllerRegistrationRequest()
        req.controllerId = 3000
        req.incarnationId = KafkaUUID(high: 1, low: 1)
        var l = ControllerRegistrationRequest.Listener()
        l.name = "CONTROLLER"
        l.host = "c"
        l.port = 9093
        req.listeners = [l]
        let resp = h.run { $0.registerController(req) }.response
        XCTAssertEqual(ErrorCode(code: resp.errorCode), .noError)
        XCTAssertEqual(h.image.controllers[3000]?.endpoints.first?.port, 9093)
    }

    func testFailoverControllerStartsSessionsAfresh() {
        let h = ControllerHarness()
        h.startBrokers([1])
        // A new active controller built from the committed image at t=50s does not fence
        // broker 1 before it has had a full session to heartbeat.
        let c = QuorumController(config: h.controller.config, image: h.image, seed: 9, nowMs: 50_000)
        XCTAssertTrue(c.tick(nowMs: 55_000).isEmpty)
        XCTAssertFalse(c.tick(nowMs: 59_001).isEmpty)
    }
}
