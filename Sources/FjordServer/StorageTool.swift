import FjordMetadata
import FjordProtocol
import FjordRecords
import FjordStorage
import FjordWire
import NIOCore

/// `fjord storage format | info`: Kafka's `kafka-storage` on Fjord's directories.
public enum StorageTool {
    /// The metadata.version written by `format` unless `--release-version` says otherwise.
    public static let defaultMetadataVersion = MetadataVersion.latest
    public static let bootstrapCheckpoint = "bootstrap.checkpoint"

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }

    /// Formats every log directory and the metadata directory of `config`. Returns the lines
    /// Kafka prints. Directories already formatted are an error unless `ignoreFormatted`.
    /// With `initialVoters` (a dynamic quorum's `--standalone` / `--initial-controllers`), the
    /// metadata directory also gets the bootstrap snapshot naming them, and
    /// `metadataDirectoryId` as its directory id (the one the voter set names).
    public static func format(config: ServerConfig, clusterId: String, ignoreFormatted: Bool,
                              releaseVersion: MetadataVersion = defaultMetadataVersion,
                              initialVoters: [QuorumBootstrap.Voter]? = nil, metadataDirectoryId: KafkaUUID? = nil) throws -> [String] {
        guard KafkaUUID(clusterId) != nil else {
            throw Failure("Cluster ID string \(clusterId) does not appear to be a valid UUID: it must be 22 characters of URL-safe base64 (use `fjord storage random-uuid`)")
        }
        var dirs = config.logDirs
        if !dirs.contains(config.metadataLogDir) { dirs.append(config.metadataLogDir) }
        var out: [String] = []
        var toFormat: [String] = []
        for dir in dirs {
            if let existing = try MetaProperties.read(dir: dir) {
                if !ignoreFormatted {
                    throw Failure("Log directory \(dir) is already formatted. Use --ignore-formatted to ignore this directory and format the others.")
                }
                if existing.clusterId != clusterId {
                    out.append("Skipping \(dir): already formatted with cluster.id \(existing.clusterId).")
                }
                continue
            }
            toFormat.append(dir)
        }
        if toFormat.isEmpty {
            return out + ["All of the log directories are already formatted."]
        }
        for dir in toFormat {
            try FileSystem.createDirectory(dir)
            let lock = try DirectoryLock(dir: dir)
            defer { withExtendedLifetime(lock) {} }
            let kind = dir == config.metadataLogDir ? "metadata directory" : "data directory"
            out.append("Formatting \(kind) \(dir) with metadata.version \(releaseVersion.name).")
            if dir == config.metadataLogDir {
                try writeBootstrapCheckpoint(dir: dir, version: releaseVersion)
                if let vs = initialVoters {
                    try QuorumBootstrap.writeInitialVoters(vs, metadataDir: dir)
                    out.append("Bootstrapping the dynamic quorum with voters \(vs.map { "\($0.id)@\($0.host):\($0.port)" }.joined(separator: ",")).")
                }
            }
            let dirId = dir == config.metadataLogDir ? (metadataDirectoryId ?? KafkaUUID.random()) : KafkaUUID.random()
            let meta = MetaProperties(clusterId: clusterId, nodeId: config.nodeId, directoryId: dirId)
            try meta.write(dir: dir, comment: "Written by fjord storage format")
            try FileSystem.syncDirectory(dir)
        }
        return out
    }

    /// `bootstrap.checkpoint`: a snapshot-format file (header, FeatureLevelRecord, footer)
    /// the first active controller replays into the empty metadata log.
    static func writeBootstrapCheckpoint(dir: String, version: MetadataVersion) throws {
        var header = SnapshotHeaderRecord()
        header.version = 0
        header.lastContainedLogTimestamp = 0
        var footer = SnapshotFooterRecord()
        footer.version = 0
        var feature = FeatureLevelRecord()
        feature.name = "metadata.version"
        feature.featureLevel = version.level
        let value = try MetadataRecord.featureLevel(feature).encode()
        var file = ByteBuffer()
        var h = try RecordBatchBuilder.controlBatch(type: .snapshotHeader, value: try header.encoded(version: 0), partitionLeaderEpoch: 0, timestamp: 0).buffer
        file.writeBuffer(&h)
        var b = RecordBatchBuilder(baseOffset: 1, partitionLeaderEpoch: 0)
        b.append(key: nil, value: value, timestamp: 0)
        var data = try b.build().buffer
        file.writeBuffer(&data)
        var f = try RecordBatchBuilder.controlBatch(type: .snapshotFooter, value: try footer.encoded(version: 0), baseOffset: 2, partitionLeaderEpoch: 0, timestamp: 0).buffer
        file.writeBuffer(&f)
        try FileSystem.writeAtomically(dir + "/" + bootstrapCheckpoint, bytes: file)
    }

    /// Reads the metadata.version from `bootstrap.checkpoint` (nil if there is none).
    public static func readBootstrapMetadataVersion(dir: String) throws -> Int16? {
        let path = dir + "/" + bootstrapCheckpoint
        guard FileSystem.exists(path) else { return nil }
        for item in RecordBatchReader(try FileSystem.readBytes(path)) {
            guard case let .batch(batch, _) = item, !batch.isControl else { continue }
            for record in try batch.records() {
                guard let v = record.value else { continue }
                if case let .featureLevel(r) = try MetadataRecord.decode(v), r.name == "metadata.version" { return r.featureLevel }
            }
        }
        return nil
    }

    /// `fjord storage info`: what each directory holds.
    public static func info(config: ServerConfig) -> (lines: [String], ok: Bool) {
        var dirs = config.logDirs
        if !dirs.contains(config.metadataLogDir) { dirs.append(config.metadataLogDir) }
        var lines: [String] = []
        var ok = true
        var unformatted: [String] = []
        var found: [(String, MetaProperties)] = []
        for dir in dirs {
            do {
                if let m = try MetaProperties.read(dir: dir) { found.append((dir, m)) } else { unformatted.append(dir) }
            } catch {
                lines.append("Error reading \(dir): \(error)")
                ok = false
            }
        }
        lines.append("Found log director\(dirs.count == 1 ? "y" : "ies"):")
        for d in dirs { lines.append("  \(d)") }
        lines.append("")
        if let (_, m) = found.first {
            lines.append("Found metadata: {cluster.id=\(m.clusterId), node.id=\(m.nodeId), version=\(m.version)}")
            lines.append("")
        }
        if let v = try? readBootstrapMetadataVersion(dir: config.metadataLogDir) {
            lines.append("Found metadata.version \(MetadataVersion(level: v).name).")
            lines.append("")
        }
        var problems: [String] = []
        for d in unformatted { problems.append("\(d) is not formatted.") }
        let ids = Set(found.map(\.1.clusterId))
        if ids.count > 1 { problems.append("Mismatched cluster.id values across directories: \(ids.sorted().joined(separator: ", ")).") }
        for (d, m) in found where m.nodeId != config.nodeId {
            problems.append("\(d)/meta.properties has node.id \(m.nodeId), but the configuration has node.id \(config.nodeId).")
        }
        if !problems.isEmpty {
            ok = false
            lines.append("Found problem\(problems.count == 1 ? "" : "s"):")
            for p in problems { lines.append("  \(p)") }
        }
        return (lines, ok)
    }

    /// Startup check: every directory is formatted for this node and one cluster; returns the
    /// cluster id. Kafka's messages, so operators recognise them.
    public static func verifyFormatted(config: ServerConfig) throws -> String {
        var dirs = config.logDirs
        if !dirs.contains(config.metadataLogDir) { dirs.append(config.metadataLogDir) }
        var clusterId: String?
        for dir in dirs {
            guard let m = try MetaProperties.read(dir: dir) else {
                throw Failure("No `meta.properties` found in \(dir) (have you run `fjord storage format` to format the directory?)")
            }
            if let c = clusterId, c != m.clusterId {
                throw Failure("Invalid cluster.id in: \(dir)/meta.properties. Expected \(c), but read \(m.clusterId).")
            }
            guard m.nodeId == config.nodeId else {
                throw Failure("Stored node id \(m.nodeId) in \(dir)/meta.properties doesn't match previous node id \(config.nodeId) (node.id in the configuration).")
            }
            clusterId = m.clusterId
        }
        if let expected = config.clusterId, let c = clusterId, expected != c {
            throw Failure("Invalid cluster.id in: \(config.metadataLogDir)/meta.properties. Expected \(expected), but read \(c).")
        }
        return clusterId ?? ""
    }
}

/// `metadata.version` levels (Kafka's MetadataVersion) that Fjord knows by name.
public struct MetadataVersion: Sendable, Equatable {
    public var level: Int16

    public init(level: Int16) { self.level = level }

    static let names: [(String, Int16)] = [
        ("3.3-IV3", 7), ("3.4-IV0", 8), ("3.5-IV2", 11), ("3.6-IV2", 14), ("3.7-IV4", 19),
        ("3.8-IV0", 20), ("3.9-IV0", 21),
    ]
    public static let latest = MetadataVersion(level: 21)

    public init?(name: String) {
        guard let l = Self.names.first(where: { $0.0 == name || $0.0.hasPrefix(name + "-") })?.1 else { return nil }
        level = l
    }

    public var name: String { Self.names.first { $0.1 == level }?.0 ?? "level-\(level)" }
}
