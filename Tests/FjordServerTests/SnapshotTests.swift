import FjordTestSupport
import Foundation
import XCTest

/// Metadata snapshots (KIP-630) with real processes: nodes snapshot their image and trim the
/// metadata log behind it; a node that was down while the log was trimmed catches up with
/// FetchSnapshot; a restarted node starts from its own snapshot; `fjord metadata-shell`
/// reads a snapshot file.
final class SnapshotTests: XCTestCase {
    func testLaggingNodeCatchesUpFromTheLeadersSnapshot() throws {
        // Tiny thresholds: a snapshot every ~2 KB of records, the log trimmed behind every
        // snapshot, small metadata segments so whole segments are deleted.
        let c = try LocalCluster(count: 3, extra: [
            "metadata.log.max.record.bytes.between.snapshots=2048", "metadata.max.retention.bytes=0",
            "metadata.log.segment.bytes=8192", "broker.session.timeout.ms=4000", "broker.heartbeat.interval.ms=500",
        ])
        defer { c.stopAll() }
        try c.startAll()
        for n in c.nodes { try c.waitForBroker(n) }
        func topics(_ range: ClosedRange<Int>) throws {
            for i in range {
                _ = try c.fjordOutput(["topics", "--bootstrap-server", c.bootstrap, "--create", "--topic", "snap-\(i)",
                                       "--partitions", "2", "--replication-factor", "2"], timeout: 30)
            }
        }
        try topics(1...5)
        c.kill9(3)
        // While node 3 is down the others write far more than a snapshot's worth and trim.
        try topics(6...30)
        let metaDir = { (n: Int32) in "\(c.dir)/data\(n)/__cluster_metadata-0" }
        func checkpoints(_ n: Int32) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: metaDir(n))) ?? []).filter { $0.hasSuffix(".checkpoint") }.sorted()
        }
        func logStart(_ n: Int32) -> Int64? {
            let segs = ((try? FileManager.default.contentsOfDirectory(atPath: metaDir(n))) ?? []).filter { $0.hasSuffix(".log") }
            return segs.compactMap { Int64($0.dropLast(4)) }.min()
        }
        let trimmed = LocalCluster.eventually(20) { () -> Bool? in
            (!checkpoints(1).isEmpty && (logStart(1) ?? 0) > 0) ? true : nil
        }
        XCTAssertEqual(trimmed, true, "node 1 wrote no snapshot or kept its first segment: \(checkpoints(1)) start \(String(describing: logStart(1)))")
        let n3Start = try XCTUnwrap(logStart(3))
        XCTAssertEqual(n3Start, 0)

        // Node 3 comes back behind the leader's log start: it must load the snapshot.
        try c.start(3)
        try c.waitForBroker(3, seconds: 40)
        let log3 = try String(contentsOfFile: c.logPath(3), encoding: .utf8)
        XCTAssertTrue(log3.contains("installed a metadata snapshot from the leader"), "node 3 did not fetch a snapshot")
        // Its broker knows every topic, and its replica of the metadata log is caught up.
        let listed = LocalCluster.eventually(20) { () -> Int? in
            guard let out = try? c.fjordOutput(["topics", "--bootstrap-server", "127.0.0.1:\(c.brokerPorts[3]!)", "--list"]) else { return nil }
            let n = out.split(separator: "\n").filter { $0.hasPrefix("snap-") }.count
            return n == 30 ? n : nil
        }
        XCTAssertEqual(listed, 30)
        let lag = LocalCluster.eventually(20) { () -> String? in
            guard let out = try? c.fjordOutput(["metadata-quorum", "--bootstrap-controller", "127.0.0.1:\(c.controllerPorts[1]!)",
                                                "describe", "--replication"]) else { return nil }
            let row = out.split(separator: "\n").first { $0.hasPrefix("3 ") }
            let cols = row?.split(whereSeparator: { $0 == " " || $0 == "\t" }) ?? []
            return cols.count > 3 && cols[3] == "0" ? String(row!) : nil
        }
        XCTAssertNotNil(lag, "node 3's metadata replica did not catch up")
        // Topics created after its return reach it too (it fetches on from the snapshot).
        try topics(31...32)
        XCTAssertNotNil(LocalCluster.eventually(20) { () -> Bool? in
            let out = try? c.fjordOutput(["topics", "--bootstrap-server", "127.0.0.1:\(c.brokerPorts[3]!)", "--list"])
            return out?.contains("snap-32") == true ? true : nil
        })

        // The snapshot files read back with the metadata shell.
        let snap = try XCTUnwrap(checkpoints(1).last)
        let ls = try c.fjordOutput(["metadata-shell", "--snapshot", metaDir(1) + "/" + snap, "ls", "/image/topics/byName"])
        XCTAssertTrue(ls.contains("snap-1\n"), ls)
        let partition = try c.fjordOutput(["metadata-shell", "--snapshot", metaDir(1) + "/" + snap, "cat", "/image/topics/byName/snap-1/0"])
        XCTAssertTrue(partition.hasPrefix("PartitionRegistration(replicas=["), partition)
        let brokers = try c.fjordOutput(["metadata-shell", "--snapshot", metaDir(1) + "/" + snap, "ls", "/image/cluster/brokers"])
        XCTAssertEqual(brokers.split(separator: "\n"), ["1", "2", "3"])
        // Controllers register themselves (ControllerRegistration) with their listener.
        let controllers = try c.fjordOutput(["metadata-shell", "--snapshot", metaDir(1) + "/" + snap, "tree", "/image/cluster/controllers"])
        XCTAssertEqual(controllers.components(separatedBy: "ControllerRegistration(id=").count, 4, controllers)
        XCTAssertTrue(controllers.contains("listenerName='CONTROLLER'"), controllers)

        // A restart loads the node's own newest snapshot first.
        c.kill9(2)
        try c.start(2)
        try c.waitForBroker(2, seconds: 40)
        let log2 = try String(contentsOfFile: c.logPath(2), encoding: .utf8)
        XCTAssertTrue(log2.contains("loaded the metadata snapshot"), "node 2 did not start from its snapshot")
    }
}
