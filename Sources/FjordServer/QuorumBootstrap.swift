import FjordClient
import FjordProtocol
import FjordRaft
import FjordRaftRuntime
import FjordRecords
import FjordStorage
import FjordWire
import Logging
import NIOCore
import NIOPosix

/// The voter set of a quorum configured with `controller.quorum.bootstrap.servers` instead
/// of a static `controller.quorum.voters` (KIP-853's bootstrap).
///
/// `fjord storage format --standalone` or `--initial-controllers` writes the initial voters
/// as a `VotersRecord` (with `kraft.version` 1) in the snapshot that starts the metadata log,
/// `__cluster_metadata-0/00000000000000000000-0000000000.checkpoint`; every later snapshot
/// carries the same record, so a node reads its voters from its newest snapshot. A node
/// without one (a broker, or a controller formatted with `--no-initial-controllers`) asks
/// the bootstrap servers with DescribeQuorum. Fjord does not yet change the voter set
/// afterwards (AddRaftVoter/RemoveRaftVoter): the initial voters stay the voters.
public enum QuorumBootstrap {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }

    /// A voter with the directory id of its metadata log directory.
    public struct Voter: Sendable, Equatable {
        public var id: Int32
        public var directoryId: KafkaUUID
        public var host: String
        public var port: Int
        public var listenerName: String

        public init(id: Int32, directoryId: KafkaUUID, host: String, port: Int, listenerName: String) {
            self.id = id
            self.directoryId = directoryId
            self.host = host
            self.port = port
            self.listenerName = listenerName
        }
    }

    /// The `VotersRecord` control record value for `voters`.
    public static func votersRecord(_ voters: [Voter]) throws -> ByteBuffer {
        var r = VotersRecord()
        r.version = 0
        r.voters = voters.map { v in
            var x = VotersRecord.Voter()
            x.voterId = v.id
            x.voterDirectoryId = v.directoryId
            var e = VotersRecord.Endpoint()
            e.name = v.listenerName
            e.host = v.host
            e.port = UInt16(clamping: v.port)
            x.endpoints = [e]
            x.kRaftVersionFeature.minSupportedVersion = 0
            x.kRaftVersionFeature.maxSupportedVersion = 1
            return x
        }
        return try r.encoded(version: 0)
    }

    /// The control batches a snapshot carries for a dynamic quorum: `KRaftVersionRecord`
    /// (kraft.version 1) and the `VotersRecord`.
    public static func controlRecords(_ voters: [Voter]) throws -> [(ControlRecordType, ByteBuffer)] {
        var kv = KRaftVersionRecord()
        kv.version = 0
        kv.kRaftVersion = 1
        return [(.kraftVersion, try kv.encoded(version: 0)), (.kraftVoters, try votersRecord(voters))]
    }

    /// Writes the bootstrap snapshot (0-0) with the initial voters into `metadataDir`.
    public static func writeInitialVoters(_ voters: [Voter], metadataDir: String) throws {
        let dir = metadataDir + "/__cluster_metadata-0"
        try FileSystem.createDirectory(dir)
        let id = SnapshotId(endOffset: 0, epoch: 0)
        let bytes = try SnapshotFile.encode([], id: id, lastContainedLogTimestamp: 0, control: try controlRecords(voters))
        try SnapshotFile.write(bytes, id: id, dir: dir)
    }

    /// The voters in the newest snapshot of `metadataDir` that names any, or nil.
    public static func readVoters(metadataDir: String) throws -> [Voter]? {
        let dir = metadataDir + "/__cluster_metadata-0"
        guard FileSystem.isDirectory(dir) else { return nil }
        for id in try SnapshotFile.list(dir: dir).reversed() {
            let bytes = try FileSystem.readBytes(dir + "/" + id.fileName)
            for item in RecordBatchReader(bytes) {
                guard case let .batch(batch, _) = item else { break }
                guard batch.isControl else { continue }
                for r in try batch.records() where (try? r.controlRecordType()) == .kraftVoters {
                    guard var v = r.value else { continue }
                    let rec = try VotersRecord(from: &v, version: 0)
                    return rec.voters.map { x in
                        let e = x.endpoints.first
                        return Voter(id: x.voterId, directoryId: x.voterDirectoryId, host: e?.host ?? "", port: Int(e?.port ?? 0),
                                     listenerName: e?.name ?? "CONTROLLER")
                    }
                }
            }
        }
        return nil
    }

    /// Parses `--initial-controllers`: `id@host:port:directoryId,...` (Kafka's form).
    public static func parseInitialControllers(_ text: String, listenerName: String) throws -> [Voter] {
        var out: [Voter] = []
        for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            guard let at = entry.firstIndex(of: "@"), let id = Int32(entry[..<at]) else {
                throw Failure("Invalid --initial-controllers entry \"\(entry)\": expected id@host:port:directoryId")
            }
            let rest = entry[entry.index(after: at)...]
            let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count >= 3, let port = Int(parts[parts.count - 2]), let dirId = KafkaUUID(String(parts[parts.count - 1])) else {
                throw Failure("Invalid --initial-controllers entry \"\(entry)\": expected id@host:port:directoryId")
            }
            let host = parts.dropLast(2).joined(separator: ":")
            if out.contains(where: { $0.id == id }) { throw Failure("Controller \(id) is listed twice in --initial-controllers") }
            out.append(Voter(id: id, directoryId: dirId, host: host, port: port, listenerName: listenerName))
        }
        guard !out.isEmpty else { throw Failure("--initial-controllers names no controllers") }
        return out
    }

    /// The voters for a node without `controller.quorum.voters`: from its snapshots, else by
    /// asking the bootstrap servers (retrying until one answers with a leader, logging
    /// every failure).
    public static func resolve(_ config: ServerConfig, logger: Logger) throws -> [QuorumVoter] {
        if let vs = try readVoters(metadataDir: config.metadataLogDir) {
            return vs.map { QuorumVoter(id: $0.id, host: $0.host, port: $0.port) }
        }
        if config.isController {
            logger.warning("this controller has no initial voters (formatted with --no-initial-controllers): it joins as an observer; Fjord cannot add voters yet")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        var attempt = 0
        while true {
            for (host, port) in config.bootstrapServers {
                do {
                    let voters = try describeVoters(host: host, port: port, group: group)
                    if !voters.isEmpty {
                        logger.info("learned the controller quorum from the bootstrap servers",
                                    metadata: ["voters": "\(voters.map { "\($0.id)@\($0.host):\($0.port)" }.joined(separator: ","))"])
                        return voters
                    }
                } catch {
                    if attempt % 10 == 0 {
                        logger.warning("cannot reach a bootstrap controller yet", metadata: ["server": "\(host):\(port)", "error": "\(error)"])
                    }
                }
            }
            attempt += 1
            usleep(500_000)
        }
    }

    static func describeVoters(host: String, port: Int, group: EventLoopGroup) throws -> [QuorumVoter] {
        let conn = try KafkaConnection.connect(host: host, port: port, group: group, clientId: "fjord-quorum-bootstrap",
                                               connectTimeoutMs: 2000).wait()
        defer { conn.close() }
        var t = DescribeQuorumRequest.TopicData()
        t.topicName = RaftWire.topicName
        var p = DescribeQuorumRequest.PartitionData()
        p.partitionIndex = 0
        t.partitions = [p]
        var r = DescribeQuorumRequest()
        r.topics = [t]
        guard let resp = try conn.send(r, version: 2, timeoutMs: 5000).wait() as? DescribeQuorumResponse else { return [] }
        guard let part = resp.topics.first?.partitions.first, part.errorCode == 0, part.leaderId >= 0 else { return [] }
        let ids = Set(part.currentVoters.map(\.replicaId))
        return resp.nodes.filter { ids.contains($0.nodeId) }.compactMap { n in
            guard let l = n.listeners.first else { return nil }
            return QuorumVoter(id: n.nodeId, host: l.host, port: Int(l.port))
        }
    }
}
