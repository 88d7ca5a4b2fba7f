import FjordWire

/// `meta.properties` of a KRaft log directory (version 1): which cluster and node the
/// directory belongs to, and the directory's own id. Written by `fjord storage format`.
public struct MetaProperties: Equatable, Sendable {
    public static let fileName = "meta.properties"
    public var version: Int = 1
    public var clusterId: String
    public var nodeId: Int32
    public var directoryId: KafkaUUID?

    public init(clusterId: String, nodeId: Int32, directoryId: KafkaUUID?) {
        self.clusterId = clusterId
        self.nodeId = nodeId
        self.directoryId = directoryId
    }

    /// Java-properties text, as Kafka writes it (a comment line, then sorted keys).
    public func render(comment: String) -> String {
        var lines = ["#", "#\(comment)", "cluster.id=\(clusterId)"]
        if let directoryId { lines.append("directory.id=\(directoryId)") }
        lines.append("node.id=\(nodeId)")
        lines.append("version=\(version)")
        return lines.joined(separator: "\n") + "\n"
    }

    public static func parse(_ text: String, path: String) throws -> MetaProperties {
        var kv: [String: String] = [:]
        for raw in text.split(separator: "\n") {
            let l = raw.drop(while: { $0 == " " })
            if l.hasPrefix("#") || l.hasPrefix("!") || l.isEmpty { continue }
            guard let eq = l.firstIndex(where: { $0 == "=" || $0 == ":" }) else { continue }
            kv[String(l[..<eq]).filter { $0 != " " }] = String(l[l.index(after: eq)...]).filter { $0 != " " }
        }
        guard kv["version"] == "1" else {
            throw StorageError("\(path): unsupported meta.properties version \(kv["version"] ?? "(none)"); expected 1 (KRaft)")
        }
        guard let cid = kv["cluster.id"], !cid.isEmpty else { throw StorageError("\(path): no cluster.id") }
        guard let nid = kv["node.id"].flatMap(Int32.init) else { throw StorageError("\(path): no valid node.id") }
        var dirId: KafkaUUID? = nil
        if let d = kv["directory.id"] {
            guard let u = KafkaUUID(d) else { throw StorageError("\(path): invalid directory.id \(d)") }
            dirId = u
        }
        return MetaProperties(clusterId: cid, nodeId: nid, directoryId: dirId)
    }

    public static func read(dir: String) throws -> MetaProperties? {
        let path = dir + "/" + fileName
        guard FileSystem.exists(path) else { return nil }
        return try parse(try FileSystem.readString(path), path: path)
    }

    public func write(dir: String, comment: String) throws {
        try FileSystem.writeAtomically(dir + "/" + Self.fileName, contents: render(comment: comment))
    }
}
