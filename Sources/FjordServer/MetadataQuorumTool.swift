import FjordClient
import FjordProtocol
import FjordRaft
import FjordWire
import NIOCore
import NIOPosix

/// `fjord metadata-quorum describe --status | --replication`: Kafka's
/// `kafka-metadata-quorum` output from the DescribeQuorum API (and DescribeCluster for the
/// cluster id), against a broker or a controller listener.
public enum MetadataQuorumTool {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Result: Sendable {
        public var clusterId: String
        public var quorum: DescribeQuorumResponse
    }

    /// Asks `host:port`; a node that is not the leader forwards to it.
    public static func query(host: String, port: Int, controller: Bool, timeoutMs: Int64 = 10_000) throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let conn = try KafkaConnection.connect(host: host, port: port, group: group, clientId: "fjord-metadata-quorum",
                                               connectTimeoutMs: timeoutMs).wait()
        defer { conn.close() }
        var dc = DescribeClusterRequest()
        dc.endpointType = controller ? 2 : 1
        let cluster = try conn.send(dc, version: 1, expecting: DescribeClusterResponse.self, timeoutMs: timeoutMs).wait()
        var dq = DescribeQuorumRequest()
        var t = DescribeQuorumRequest.TopicData()
        t.topicName = RaftWire.topicName
        var p = DescribeQuorumRequest.PartitionData()
        p.partitionIndex = 0
        t.partitions = [p]
        dq.topics = [t]
        let q = try conn.send(dq, version: 2, expecting: DescribeQuorumResponse.self, timeoutMs: timeoutMs).wait()
        if q.errorCode != 0 {
            throw Failure(description: "DescribeQuorum failed: \(describe(q.errorCode))\(q.errorMessage.map { " (\($0))" } ?? "")")
        }
        guard let part = q.topics.first?.partitions.first else { throw Failure(description: "DescribeQuorum returned no partition") }
        if part.errorCode != 0 {
            throw Failure(description: "DescribeQuorum failed: \(describe(part.errorCode))\(part.errorMessage.map { " (\($0))" } ?? "")")
        }
        return Result(clusterId: cluster.clusterId, quorum: q)
    }

    static func describe(_ code: Int16) -> String {
        if let e = ErrorCode(rawValue: code) { return "\(e.name): \(e.message)" }
        return "error \(code)"
    }

    /// The `--status` lines (labels padded to 24 columns, as Kafka prints them).
    public static func status(_ r: Result, nowMs: Int64) -> [String] {
        let q = r.quorum
        guard let p = q.topics.first?.partitions.first else { return [] }
        let leaderEnd = p.currentVoters.first { $0.replicaId == p.leaderId }?.logEndOffset ?? p.highWatermark
        let followers = p.currentVoters.filter { $0.replicaId != p.leaderId }
        let maxLag = followers.map { max(0, leaderEnd - $0.logEndOffset) }.max() ?? 0
        let maxLagTime = followers.map { f -> Int64 in
            f.lastCaughtUpTimestamp < 0 ? nowMs : max(0, nowMs - f.lastCaughtUpTimestamp)
        }.max() ?? 0
        func endpoints(_ id: Int32) -> String {
            guard let n = q.nodes.first(where: { $0.nodeId == id }) else { return "[]" }
            return "[" + n.listeners.map { "\"\($0.name)://\($0.host):\($0.port)\"" }.joined(separator: ", ") + "]"
        }
        let voters = "[" + p.currentVoters.map { v in
            "{\"id\": \(v.replicaId), \"directoryId\": \"\(v.replicaDirectoryId)\", \"endpoints\": \(endpoints(v.replicaId))}"
        }.joined(separator: ", ") + "]"
        let observers = "[" + p.observers.map { o in
            "{\"id\": \(o.replicaId), \"directoryId\": \"\(o.replicaDirectoryId)\"}"
        }.joined(separator: ", ") + "]"
        func line(_ label: String, _ value: String) -> String {
            label + String(repeating: " ", count: max(1, 24 - label.count)) + value
        }
        return [
            line("ClusterId:", r.clusterId),
            line("LeaderId:", "\(p.leaderId)"),
            line("LeaderEpoch:", "\(p.leaderEpoch)"),
            line("HighWatermark:", "\(p.highWatermark)"),
            line("MaxFollowerLag:", "\(maxLag)"),
            line("MaxFollowerLagTimeMs:", "\(maxLagTime)"),
            line("CurrentVoters:", voters),
            line("CurrentObservers:", observers),
        ]
    }

    /// The `--replication` table: NodeId DirectoryId LogEndOffset Lag LastFetchTimestamp
    /// LastCaughtUpTimestamp Status, columns padded like Kafka's tool.
    public static func replication(_ r: Result, nowMs: Int64, humanReadable: Bool) -> [String] {
        guard let p = r.quorum.topics.first?.partitions.first else { return [] }
        let leaderEnd = p.currentVoters.first { $0.replicaId == p.leaderId }?.logEndOffset ?? p.highWatermark
        func ts(_ t: Int64) -> String {
            if !humanReadable { return "\(t)" }
            if t < 0 { return "-1" }
            return "\(max(0, nowMs - t)) ms ago"
        }
        var rows: [[String]] = [["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"]]
        let leader = p.currentVoters.filter { $0.replicaId == p.leaderId }
        let followers = p.currentVoters.filter { $0.replicaId != p.leaderId }
        for (v, status) in leader.map({ ($0, "Leader") }) + followers.map({ ($0, "Follower") }) + p.observers.map({ ($0, "Observer") }) {
            rows.append(["\(v.replicaId)", "\(v.replicaDirectoryId)", "\(v.logEndOffset)", "\(max(0, leaderEnd - v.logEndOffset))",
                         ts(v.lastFetchTimestamp), ts(v.lastCaughtUpTimestamp), status])
        }
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { row in
            row.enumerated().map { i, c in i == row.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: "\t")
        }
    }
}
