import FjordServer
import FjordStorage
import FjordTestSupport
import XCTest

final class ServerConfigTests: XCTestCase {
    static let combined = """
        # a combined node
        process.roles=broker,controller
        node.id=1
        controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9095,3@[::1]:9097
        listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
        controller.listener.names=CONTROLLER
        listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
        log.dirs=/tmp/a,/tmp/b
        """

    func testJavaPropertiesSyntax() throws {
        let p = try JavaProperties.parse("""
            # comment
            ! also a comment
            a=1
            b : 2
            c 3
              d=four \\
                five
            e=x\\=y\\:z
            f=
            a=override
            """)
        XCTAssertEqual(p["a"], "override")
        XCTAssertEqual(p["b"], "2")
        XCTAssertEqual(p["c"], "3")
        XCTAssertEqual(p["d"], "four five")
        XCTAssertEqual(p["e"], "x=y:z")
        XCTAssertEqual(p["f"], "")
        XCTAssertThrowsError(try JavaProperties.parse("=novalue"))
    }

    func testCombinedDefaults() throws {
        let c = try ServerConfig(properties: JavaProperties.parse(Self.combined))
        XCTAssertEqual(c.processRoles, [.broker, .controller])
        XCTAssertEqual(c.nodeId, 1)
        XCTAssertEqual(c.voters.map(\.id), [1, 2, 3])
        XCTAssertEqual(c.voters[2].host, "::1")
        XCTAssertEqual(c.logDirs, ["/tmp/a", "/tmp/b"])
        XCTAssertEqual(c.metadataLogDir, "/tmp/a")
        XCTAssertEqual(c.controllerListener?.port, 9093)
        XCTAssertEqual(c.brokerListeners.map(\.listenerName), ["PLAINTEXT"])
        XCTAssertEqual(c.advertisedListeners.map(\.description), ["PLAINTEXT://127.0.0.1:9092"])
        XCTAssertEqual(c.interBrokerListenerName, "PLAINTEXT")
        XCTAssertEqual(c.brokerSessionTimeoutMs, 9000)
        XCTAssertEqual(c.brokerHeartbeatIntervalMs, 2000)
        XCTAssertEqual(c.numPartitions, 1)
        XCTAssertEqual(c.defaultReplicationFactor, 1)
        XCTAssertEqual(c.raft.electionTimeoutMs, 1000)
        XCTAssertEqual(c.raft.fetchTimeoutMs, 2000)
        XCTAssertFalse(c.uncleanLeaderElectionEnable)
        XCTAssertTrue(c.autoCreateTopicsEnable)
        XCTAssertEqual(c.unknownKeys, [])
    }

    func testInvalidValuesNameTheKey() throws {
        func error(_ extra: String) -> String {
            do {
                _ = try ServerConfig(properties: JavaProperties.parse(Self.combined + "\n" + extra))
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(error("num.partitions=many").contains("num.partitions"))
        XCTAssertTrue(error("num.partitions=0").contains("num.partitions"))
        XCTAssertTrue(error("auto.create.topics.enable=yes").contains("auto.create.topics.enable"))
        XCTAssertTrue(error("process.roles=zookeeper").contains("process.roles"))
        XCTAssertTrue(error("node.id=7").contains("controller.quorum.voters"))
        XCTAssertTrue(error("controller.quorum.voters=1@nohost").contains("controller.quorum.voters"))
        XCTAssertTrue(error("controller.listener.names=OTHER").contains("controller.listener.names"))
        XCTAssertTrue(error("listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,EXTERNAL://127.0.0.1:9094").contains("listener.security.protocol.map"))
    }

    func testUnknownKeysAreReported() throws {
        let c = try ServerConfig(properties: JavaProperties.parse(Self.combined + "\nno.such.key=1\nlog.retention.hours=1\n"))
        XCTAssertEqual(c.unknownKeys, ["no.such.key"])
    }

    func testBrokerOnlyMustNotServeControllerListener() throws {
        let text = """
            process.roles=broker
            node.id=4
            controller.quorum.voters=1@127.0.0.1:9093
            listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
            controller.listener.names=CONTROLLER
            listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
            log.dirs=/tmp/x
            """
        XCTAssertThrowsError(try ServerConfig(properties: JavaProperties.parse(text)))
        let ok = text.replacingOccurrences(of: ",CONTROLLER://127.0.0.1:9093\n", with: "\n")
        let c = try ServerConfig(properties: JavaProperties.parse(ok))
        XCTAssertFalse(c.isController)
        XCTAssertTrue(c.isBroker)
    }

    func testFormatInfoAndStartupChecks() throws {
        let dir = try TestPython.temporaryDirectory("fjord-format")
        let text = Self.combined.replacingOccurrences(of: "log.dirs=/tmp/a,/tmp/b", with: "log.dirs=\(dir)/d1,\(dir)/d2\nmetadata.log.dir=\(dir)/meta")
        let config = try ServerConfig(properties: JavaProperties.parse(text))
        XCTAssertThrowsError(try StorageTool.verifyFormatted(config: config)) { e in
            XCTAssertTrue("\(e)".contains("No `meta.properties` found in \(dir)/d1"), "\(e)")
        }
        XCTAssertThrowsError(try StorageTool.format(config: config, clusterId: "not-a-uuid", ignoreFormatted: false))
        let lines = try StorageTool.format(config: config, clusterId: "MkU3OEVBNTcwNTJENDM2Qg", ignoreFormatted: false)
        XCTAssertEqual(lines, [
            "Formatting data directory \(dir)/d1 with metadata.version 3.9-IV0.",
            "Formatting data directory \(dir)/d2 with metadata.version 3.9-IV0.",
            "Formatting metadata directory \(dir)/meta with metadata.version 3.9-IV0.",
        ])
        let meta = try XCTUnwrap(try MetaProperties.read(dir: "\(dir)/d2"))
        XCTAssertEqual(meta.clusterId, "MkU3OEVBNTcwNTJENDM2Qg")
        XCTAssertEqual(meta.nodeId, 1)
        XCTAssertNotNil(meta.directoryId)
        XCTAssertEqual(try StorageTool.readBootstrapMetadataVersion(dir: "\(dir)/meta"), 21)
        XCTAssertEqual(try StorageTool.verifyFormatted(config: config), "MkU3OEVBNTcwNTJENDM2Qg")
        XCTAssertThrowsError(try StorageTool.format(config: config, clusterId: "MkU3OEVBNTcwNTJENDM2Qg", ignoreFormatted: false)) { e in
            XCTAssertTrue("\(e)".contains("already formatted"), "\(e)")
        }
        XCTAssertEqual(try StorageTool.format(config: config, clusterId: "MkU3OEVBNTcwNTJENDM2Qg", ignoreFormatted: true),
                       ["All of the log directories are already formatted."])
        let info = StorageTool.info(config: config)
        XCTAssertTrue(info.ok)
        XCTAssertTrue(info.lines.contains("Found metadata: {cluster.id=MkU3OEVBNTcwNTJENDM2Qg, node.id=1, version=1}"), "\(info.lines)")
        // A directory from another cluster is refused at startup, naming both ids.
        try MetaProperties(clusterId: "AAAAAAAAAAAAAAAAAAAAAQ", nodeId: 1, directoryId: nil).write(dir: "\(dir)/d2", comment: "test")
        XCTAssertThrowsError(try StorageTool.verifyFormatted(config: config)) { e in
            XCTAssertTrue("\(e)".contains("Invalid cluster.id"), "\(e)")
        }
        XCTAssertFalse(StorageTool.info(config: config).ok)
    }
}
