import FjordController
import FjordMetadata
import FjordProtocol
import FjordWire
import XCTest

final class ConfigTests: XCTestCase {
    typealias Op = (name: String, op: Int8, value: String?)

    func incremental(_ h: ControllerHarness, _ type: ConfigResourceType, _ name: String, _ ops: [Op],
                     validateOnly: Bool = false) -> IncrementalAlterConfigsResponse.AlterConfigsResourceResponse {
        var req = IncrementalAlterConfigsRequest()
        var res = IncrementalAlterConfigsRequest.AlterConfigsResource()
        res.resourceType = type.rawValue
        res.resourceName = name
        res.configs = ops.map {
            var c = IncrementalAlterConfigsRequest.AlterableConfig()
            c.name = $0.name
            c.configOperation = $0.op
            c.value = $0.value
            return c
        }
        req.resources = [res]
        req.validateOnly = validateOnly
        return h.run { $0.incrementalAlterConfigs(req) }.response.responses[0]
    }

    func cluster() -> ControllerHarness {
        let h = ControllerHarness()
        h.startBrokers([1])
        h.createTopic("t", partitions: 1, rf: 1)
        return h
    }

    func testTopicSetDeleteAppendSubtract() {
        let h = cluster()
        var r = incremental(h, .topic, "t", [("retention.ms", 0, "1000"), ("cleanup.policy", 2, "compact")])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        XCTAssertNil(r.errorMessage)
        XCTAssertEqual(h.image.topicConfigs["t"], ["retention.ms": "1000", "cleanup.policy": "delete,compact"],
                       "APPEND starts from the default")
        r = incremental(h, .topic, "t", [("cleanup.policy", 3, "delete"), ("retention.ms", 1, nil)])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        XCTAssertEqual(h.image.topicConfigs["t"], ["cleanup.policy": "compact"])
        let before = h.log.count
        r = incremental(h, .topic, "t", [("cleanup.policy", 0, "compact")])
        XCTAssertEqual(h.log.count, before, "an unchanged topic value writes nothing")
    }

    func testTopicErrors() {
        let h = cluster()
        var r = incremental(h, .topic, "nope", [("retention.ms", 0, "1")])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .unknownTopicOrPartition)
        XCTAssertEqual(r.errorMessage, "The topic 'nope' does not exist.")
        r = incremental(h, .topic, "t", [("retention.ms", 0, "soon")])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidConfig)
        r = incremental(h, .topic, "t", [("bogus", 0, "1")])
        XCTAssertEqual(r.errorMessage, "Unknown topic config name: bogus")
        r = incremental(h, .topic, "t", [("retention.ms", 2, "1")])
        XCTAssertEqual(r.errorMessage, "Can't APPEND to key retention.ms because its type is not LIST.")
        r = incremental(h, .topic, "t", [("retention.ms", 0, "1"), ("retention.ms", 1, nil)])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidRequest)
        r = incremental(h, .topic, "t", [("retention.ms", 0, nil)])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidRequest)
        r = incremental(h, .topic, "t", [("retention.ms", 9, "1")])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidRequest)
        XCTAssertNil(h.image.topicConfigs["t"])
        r = incremental(h, .topic, "t", [("retention.ms", 0, "1")], validateOnly: true)
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        XCTAssertNil(h.image.topicConfigs["t"], "validate only")
    }

    func testBrokerConfigs() {
        let h = cluster()
        var r = incremental(h, .broker, "", [("log.retention.ms", 0, "5000")])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        r = incremental(h, .broker, "1", [("log.cleaner.threads", 0, "2")])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .noError)
        XCTAssertEqual(h.image.brokerConfigs, ["": ["log.retention.ms": "5000"], "1": ["log.cleaner.threads": "2"]])
        let before = h.log.count
        _ = incremental(h, .broker, "1", [("log.cleaner.threads", 0, "2")])
        XCTAssertEqual(h.log.count, before + 1, "broker configs are rewritten even when unchanged (brokers may reload)")
        r = incremental(h, .broker, "x", [("a", 0, "1")])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidRequest)
        XCTAssertEqual(r.errorMessage, "Invalid broker name x")
        r = incremental(h, .brokerLogger, "1", [("a", 0, "1")])
        XCTAssertEqual(ErrorCode(code: r.errorCode), .invalidRequest)
        // The cluster default feeds topics' effective configs.
        let entries = h.image.effectiveTopicConfigs(topic: "t") ?? []
        XCTAssertEqual(entries.first { $0.name == "retention.ms" }?.value, "5000")
    }

    func testLegacyAlterConfigsReplacesTheSet() {
        let h = cluster()
        _ = incremental(h, .topic, "t", [("retention.ms", 0, "1000"), ("segment.ms", 0, "2000")])
        var req = AlterConfigsRequest()
        var res = AlterConfigsRequest.AlterConfigsResource()
        res.resourceType = ConfigResourceType.topic.rawValue
        res.resourceName = "t"
        var c = AlterConfigsRequest.AlterableConfig()
        c.name = "segment.ms"
        c.value = "3000"
        res.configs = [c]
        req.resources = [res]
        let resp = h.run { $0.alterConfigs(req) }.response
        XCTAssertEqual(ErrorCode(code: resp.responses[0].errorCode), .noError)
        XCTAssertEqual(h.image.topicConfigs["t"], ["segment.ms": "3000"])
        req.resources = [res, res]
        let dup = h.run { $0.alterConfigs(req) }.response
        XCTAssertEqual(dup.responses.map { ErrorCode(code: $0.errorCode) }, [.invalidRequest, .invalidRequest])
    }
}
