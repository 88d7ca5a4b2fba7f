import FjordWire

/// A topic partition, printed and parsed as Kafka does (`topic-partition`).
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// The partition directory name, `<topic>-<partition>`.
    public var description: String { "\(topic)-\(partition)" }

    /// Parses a partition directory name (the topic may itself contain '-').
    public init?(directoryName: String) {
        guard let dash = directoryName.lastIndex(of: "-"),
              let p = Int32(directoryName[directoryName.index(after: dash)...]), p >= 0
        else { return nil }
        let t = String(directoryName[..<dash])
        guard !t.isEmpty else { return nil }
        self.init(t, p)
    }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }
}

/// Kafka's text format for checkpoint files (`*-checkpoint`): a version line `0`, a count
/// line, then that many entry lines. One reader and writer for all of them.
enum CheckpointFile {
    static let version = "0"

    /// Writes `lines` (one entry each, no newline) atomically and durably.
    static func write(_ path: String, lines: [String]) throws {
        var s = "\(version)\n\(lines.count)\n"
        for l in lines { s += l + "\n" }
        try FileSystem.writeAtomically(path, contents: s)
    }

    /// The entry lines of the checkpoint at `path`; nil if there is no file.
    /// - Throws: if the file is malformed (wrong version, count larger than the lines).
    static func read(_ path: String) throws -> [Substring]? {
        guard FileSystem.exists(path) else { return nil }
        let lines = try FileSystem.readString(path).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 2, lines[0] == version, let n = Int(lines[1]), n >= 0, lines.count >= 2 + n else {
            throw StorageError("malformed checkpoint file \(path)")
        }
        return Array(lines[2..<(2 + n)])
    }
}

/// Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
/// `log-start-offset-checkpoint`, `replication-offset-checkpoint`,
/// `cleaner-offset-checkpoint`): ``CheckpointFile`` with `topic partition offset` lines.
public enum OffsetCheckpointFile {
    public static func write(_ path: String, _ offsets: [TopicPartition: Int64]) throws {
        try CheckpointFile.write(path, lines: offsets.sorted(by: { $0.key < $1.key }).map { tp, off in
            "\(tp.topic) \(tp.partition) \(off)"
        })
    }

    /// Reads a checkpoint; a missing file is empty. A malformed one is an error.
    public static func read(_ path: String) throws -> [TopicPartition: Int64] {
        var out: [TopicPartition: Int64] = [:]
        for l in try CheckpointFile.read(path) ?? [] {
            let parts = l.split(separator: " ")
            guard parts.count == 3, let p = Int32(parts[1]), let o = Int64(parts[2]) else {
                throw StorageError("malformed line '\(l)' in checkpoint file \(path)")
            }
            out[TopicPartition(String(parts[0]), p)] = o
        }
        return out
    }
}

/// `partition.metadata`: the topic id of a partition directory (KIP-516).
public enum PartitionMetadataFile {
    public static let fileName = "partition.metadata"

    public static func write(dir: String, topicId: KafkaUUID) throws {
        try FileSystem.writeAtomically(dir + "/" + fileName, contents: "version: 0\ntopic_id: \(topicId)\n")
    }

    public static func read(dir: String) throws -> KafkaUUID? {
        let path = dir + "/" + fileName
        guard FileSystem.exists(path) else { return nil }
        for l in try FileSystem.readString(path).split(separator: "\n") where l.hasPrefix("topic_id: ") {
            guard let id = KafkaUUID(String(l.dropFirst("topic_id: ".count))) else {
                throw StorageError("malformed topic id in \(path)")
            }
            return id
        }
        throw StorageError("no topic_id in \(path)")
    }
}
