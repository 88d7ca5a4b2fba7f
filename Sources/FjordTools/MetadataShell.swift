import FjordMetadata
import FjordProtocol
import FjordRecords
import FjordWire
import NIOCore

/// `fjord metadata-shell`: Kafka's `kafka-metadata-shell.sh`. It loads a metadata snapshot
/// (`%020d-%010d.checkpoint`) into a `MetadataImage` and shows it as a file tree with
/// Kafka's layout — `/image/features`, `/image/cluster/brokers/<id>`,
/// `/image/topics/byName/<topic>/<partition>`, `/image/topics/byId/<id>`,
/// `/image/configs/<type>/<name>/<key>`, `/image/producerIds`, `/image/provenance` — to
/// browse with `ls`, `cd`, `pwd`, `cat`, `tree` and `find`.
public struct MetadataShell {
    /// A node of the tree: a directory of named children or a file with text.
    public indirect enum Node {
        case dir([(String, Node)])
        case file(String)

        func child(_ name: String) -> Node? {
            guard case let .dir(children) = self else { return nil }
            return children.first { $0.0 == name }?.1
        }
    }

    public let root: Node
    public private(set) var cwd: [String] = []

    /// What a snapshot file holds.
    public struct Snapshot {
        public var image: MetadataImage
        public var endOffset: Int64
        public var epoch: Int32
        public var lastContainedLogTimeMs: Int64
        public var recordCount: Int
    }

    public enum ShellError: Error, CustomStringConvertible {
        case unreadable(String)
        public var description: String {
            switch self {
            case let .unreadable(s): return s
            }
        }
    }

    /// Reads and checks a snapshot file's bytes: every batch's CRC, a header first and a
    /// footer last. The end offset and epoch come from the file name when it has Kafka's
    /// form (else from the batches).
    public static func loadSnapshot(_ bytes: ByteBuffer, fileName: String) throws -> Snapshot {
        var records: [MetadataRecord] = []
        var header = false
        var footer = false
        var epoch: Int32 = -1
        var timeMs: Int64 = -1
        for item in RecordBatchReader(bytes) {
            guard case let .batch(batch, _) = item else {
                throw ShellError.unreadable("\(fileName): the snapshot is truncated or corrupt after \(records.count) records")
            }
            try batch.validate()
            epoch = batch.partitionLeaderEpoch
            if batch.isControl {
                for r in try batch.records() {
                    let t = try r.controlRecordType()
                    if t == .snapshotHeader {
                        header = true
                        if var v = r.value, let h = try? SnapshotHeaderRecord(from: &v, version: 0) { timeMs = h.lastContainedLogTimestamp }
                    }
                    if t == .snapshotFooter { footer = true }
                }
                continue
            }
            for r in try batch.records() {
                guard let v = r.value else { continue }
                records.append(try MetadataRecord.decode(v))
            }
        }
        guard header, footer else {
            throw ShellError.unreadable("\(fileName): not a complete metadata snapshot (no \(header ? "footer" : "header") record)")
        }
        var endOffset = Int64(records.count)
        let base = fileName.split(separator: "/").last.map(String.init) ?? fileName
        if base.hasSuffix(".checkpoint") {
            let parts = base.dropLast(".checkpoint".count).split(separator: "-")
            if parts.count == 2, let o = Int64(parts[0]), let e = Int32(parts[1]) {
                endOffset = o
                epoch = e
            }
        }
        return Snapshot(image: MetadataImage(snapshotRecords: records, endOffset: endOffset), endOffset: endOffset, epoch: epoch,
                        lastContainedLogTimeMs: timeMs, recordCount: records.count)
    }

    /// Reads a snapshot file from disk.
    public static func loadSnapshot(path: String) throws -> Snapshot {
        let f = try SegmentFile(path: path)
        defer { f.close() }
        var bytes = ByteBuffer()
        try f.read(at: 0, count: f.size, into: &bytes)
        return try loadSnapshot(bytes, fileName: path)
    }

    public init(snapshot s: Snapshot) {
        root = Self.tree(s)
    }

    // MARK: the tree

    static func tree(_ s: Snapshot) -> Node {
        let image = s.image
        let features: [(String, Node)] = image.features.keys.sorted().map { name in
            (name == MetadataImage.metadataVersionFeature ? "metadataVersion" : name, .file("\(image.features[name] ?? 0)"))
        }
        let brokers: [(String, Node)] = image.brokers.keys.sorted().map { id in
            let b = image.brokers[id]!
            let eps = b.endpoints.map { "Endpoint(listenerName='\($0.name)', securityProtocol=\(protocolName($0.securityProtocol)), host='\($0.host)', port=\($0.port))" }
            let feats = b.supportedFeatures.keys.sorted().map { "\($0): \(b.supportedFeatures[$0]!.min)-\(b.supportedFeatures[$0]!.max)" }
            return ("\(id)", .file("BrokerRegistration(id=\(b.id), epoch=\(b.epoch), incarnationId=\(b.incarnationId), "
                + "listeners=[\(eps.joined(separator: ", "))], supportedFeatures={\(feats.joined(separator: ", "))}, "
                + "rack=\(b.rack.map { "Optional[\($0)]" } ?? "Optional.empty"), fenced=\(b.fenced), "
                + "inControlledShutdown=\(b.inControlledShutdown), isMigratingZkBroker=false, "
                + "directories=[\(b.logDirs.map { "\($0)" }.joined(separator: ", "))])"))
        }
        let controllers: [(String, Node)] = image.controllers.keys.sorted().map { id in
            let c = image.controllers[id]!
            let eps = c.endpoints.map { "Endpoint(listenerName='\($0.name)', securityProtocol=\(protocolName($0.securityProtocol)), host='\($0.host)', port=\($0.port))" }
            return ("\(id)", .file("ControllerRegistration(id=\(c.id), incarnationId=\(c.incarnationId), zkMigrationReady=\(c.zkMigrationReady), "
                + "listeners=[\(eps.joined(separator: ", "))])"))
        }
        func partitions(_ t: TopicImage) -> [(String, Node)] {
            t.sortedPartitionIds.map { pid in
                let p = t.partitions[pid]!
                return ("\(pid)", .file("PartitionRegistration(replicas=\(list(p.replicas)), directories=[\(p.directories.map { "\($0)" }.joined(separator: ", "))], "
                    + "isr=\(list(p.isr)), removingReplicas=\(list(p.removingReplicas)), addingReplicas=\(list(p.addingReplicas)), "
                    + "elr=[], lastKnownElr=[], leader=\(p.leader), leaderRecoveryState=\(p.leaderRecoveryState == 0 ? "RECOVERED" : "RECOVERING"), "
                    + "leaderEpoch=\(p.leaderEpoch), partitionEpoch=\(p.partitionEpoch))"))
            }
        }
        let byName: [(String, Node)] = image.topics.keys.sorted().map { name in
            let t = image.topics[name]!
            return (name, .dir([("id", .file("\(t.id)")), ("name", .file(name))] + partitions(t)))
        }
        let byId: [(String, Node)] = image.topics.values.sorted { "\($0.id)" < "\($1.id)" }.map { t in
            ("\(t.id)", .dir([("id", .file("\(t.id)")), ("name", .file(t.name))] + partitions(t)))
        }
        func configDirs(_ map: [String: [String: String]]) -> [(String, Node)] {
            map.keys.sorted().map { resource in
                let entries = map[resource] ?? [:]
                return (resource, .dir(entries.keys.sorted().map { ($0, .file(entries[$0] ?? "")) }))
            }
        }
        var configs: [(String, Node)] = []
        if !image.brokerConfigs.isEmpty { configs.append(("BROKER", .dir(configDirs(image.brokerConfigs)))) }
        if !image.topicConfigs.isEmpty { configs.append(("TOPIC", .dir(configDirs(image.topicConfigs)))) }
        let imageDir: Node = .dir([
            ("cluster", .dir([("brokers", .dir(brokers)), ("controllers", .dir(controllers))])),
            ("configs", .dir(configs)),
            ("features", .dir(features)),
            ("producerIds", .dir([("nextProducerId", .file("\(image.nextProducerId)"))])),
            ("provenance", .dir([
                ("lastContainedEpoch", .file("\(s.epoch)")),
                ("lastContainedLogTimeMs", .file("\(s.lastContainedLogTimeMs)")),
                ("lastContainedOffset", .file("\(s.endOffset - 1)")),
            ])),
            ("topics", .dir([("byId", .dir(byId)), ("byName", .dir(byName))])),
        ])
        return .dir([("image", imageDir), ("local", .dir([("version", .file("fjord"))]))])
    }

    static func list(_ xs: [Int32]) -> String { "[" + xs.map(String.init).joined(separator: ", ") + "]" }

    static func protocolName(_ p: Int16) -> String {
        switch p {
        case 1: return "SSL"
        case 2: return "SASL_PLAINTEXT"
        case 3: return "SASL_SSL"
        default: return "PLAINTEXT"
        }
    }

    // MARK: commands

    func resolve(_ path: String?) -> [String] {
        guard let path, !path.isEmpty else { return cwd }
        var parts = path.hasPrefix("/") ? [] : cwd
        for c in path.split(separator: "/") {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(String(c))
        }
        return parts
    }

    func node(at parts: [String]) -> Node? {
        var n: Node? = root
        for p in parts { n = n?.child(p) }
        return n
    }

    static func pathString(_ parts: [String]) -> String { "/" + parts.joined(separator: "/") }

    /// Runs one command line; returns its output lines, and whether the shell should exit.
    public mutating func run(_ line: String) -> (output: [String], exit: Bool) {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let cmd = words.first else { return ([], false) }
        let args = Array(words.dropFirst())
        switch cmd {
        case "exit", "quit":
            return ([], true)
        case "help":
            return ([
                "Welcome to the Fjord metadata shell.",
                "  cat [paths...]   Show the contents of metadata files.",
                "  cd [path]        Set the current working directory.",
                "  exit             Exit the metadata shell.",
                "  find [paths...]  Search for nodes in the directory hierarchy.",
                "  help             Display this help message.",
                "  ls [paths...]    List metadata nodes.",
                "  pwd              Print the current working directory.",
                "  tree [paths...]  Print the tree of metadata nodes.",
            ], false)
        case "pwd":
            return ([Self.pathString(cwd)], false)
        case "cd":
            let target = resolve(args.first ?? "/")
            guard let n = node(at: target) else { return (["cd: \(args.first ?? "/"): no such directory"], false) }
            guard case .dir = n else { return (["cd: \(args.first ?? "/"): not a directory"], false) }
            cwd = target
            return ([], false)
        case "ls":
            var out: [String] = []
            let paths: [String?] = args.isEmpty ? [nil] : args.map { Optional($0) }
            for (i, p) in paths.enumerated() {
                let target = resolve(p)
                guard let n = node(at: target) else { out.append("ls: \(p ?? "."): no such file or directory"); continue }
                switch n {
                case let .file(_): out.append(target.last ?? "/")
                case let .dir(children):
                    if paths.count > 1 { if i > 0 { out.append("") }; out.append("\(p ?? "."):") }
                    out.append(contentsOf: children.map(\.0))
                }
            }
            return (out, false)
        case "cat":
            var out: [String] = []
            for p in args {
                guard let n = node(at: resolve(p)) else { out.append("cat: \(p): no such file or directory"); continue }
                switch n {
                case let .file(text): out.append(text)
                case .dir: out.append("cat: \(p): is a directory")
                }
            }
            return (out, false)
        case "tree", "find":
            var out: [String] = []
            let paths: [String?] = args.isEmpty ? [nil] : args.map { Optional($0) }
            for p in paths {
                let target = resolve(p)
                guard let n = node(at: target) else { out.append("\(cmd): \(p ?? "."): no such file or directory"); continue }
                if cmd == "tree" {
                    Self.tree(n, name: target.last ?? "/", indent: "", into: &out)
                } else {
                    Self.find(n, path: target, into: &out)
                }
            }
            return (out, false)
        default:
            return (["Unknown command \(cmd). Type help for a list of commands."], false)
        }
    }

    static func tree(_ n: Node, name: String, indent: String, into out: inout [String]) {
        switch n {
        case let .file(text): out.append("\(indent)\(name): \(text)")
        case let .dir(children):
            out.append("\(indent)\(name):")
            for (c, child) in children { tree(child, name: c, indent: indent + "  ", into: &out) }
        }
    }

    static func find(_ n: Node, path: [String], into out: inout [String]) {
        out.append(pathString(path))
        if case let .dir(children) = n {
            for (c, child) in children { find(child, path: path + [c], into: &out) }
        }
    }
}
