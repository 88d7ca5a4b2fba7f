#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FjordClient
import FjordServer
import FjordWire
import Foundation

/// `fjord dev-cluster`: a local multi-node cluster on loopback ports for learning and demos.
struct DevClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-cluster",
        abstract: "Run a local multi-node cluster in the background: start, watch, kill and restart nodes.",
        discussion: """
            Examples:
              fjord dev-cluster up --nodes 3                 # 3 combined broker+controller nodes
              fjord dev-cluster up --nodes 3 --mode split    # 3 controllers + 3 brokers
              fjord dev-cluster status                       # quorum leader, nodes, partition leaders
              fjord dev-cluster status --output json
              fjord dev-cluster status --get bootstrap       # just the bootstrap servers, for scripts
              fjord dev-cluster kill 2                       # SIGKILL node 2, then show where leadership went
              fjord dev-cluster start 2                      # restart it
              fjord dev-cluster stop 2                       # graceful stop (SIGTERM)
              fjord dev-cluster down                         # stop everything (--delete removes the directory)

            The directory (default $FJORD_DEV_CLUSTER_DIR or /tmp/fjord-dev-cluster) holds
            cluster.json, node<N>.properties, node<N>.log, node<N>.pid and the data.
            """,
        subcommands: [Up.self, Status.self, Kill.self, Stop.self, Start.self, Down.self]
    )

    struct DirOption: ParsableArguments {
        @Option(name: .customLong("dir"), help: "The cluster directory (default $FJORD_DEV_CLUSTER_DIR or /tmp/fjord-dev-cluster).")
        var dir: String?

        var path: String {
            let d = dir ?? ProcessInfo.processInfo.environment["FJORD_DEV_CLUSTER_DIR"] ?? "/tmp/fjord-dev-cluster"
            return URL(fileURLWithPath: d).standardizedFileURL.path
        }
    }

    // MARK: up

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "up",
            abstract: "Format storage with a fresh cluster id and start the nodes in the background.",
            discussion: """
                Examples:
                  fjord dev-cluster up --nodes 3
                  fjord dev-cluster up --nodes 3 --mode split --controllers 3 --dir /tmp/demo
                Combined mode: every node is a broker and a controller (node ids 1..N).
                Split mode: controller-only nodes 1..C, then broker-only nodes C+1..C+N.
                Running `up` again on a stopped cluster restarts it with its data.
                """
        )
        @OptionGroup var dir: DirOption
        @Option(name: .customLong("nodes"), help: "Number of nodes (brokers in split mode).") var nodes: Int = 3
        @Option(name: .customLong("mode"), help: "combined (default) or split.") var mode: String = "combined"
        @Option(name: .customLong("controllers"), help: "Split mode: number of controllers (default 3, or 1 with 1 broker).") var controllers: Int?
        @Option(name: .customLong("timeout"), help: "Seconds to wait for the brokers to serve.") var timeout: Double = 60
        @Option(name: .customLong("override"), help: "An extra server property for every node, key=value (repeatable).") var overrides: [String] = []

        func validate() throws {
            if nodes < 1 || nodes > 9 { throw ValidationError("--nodes must be between 1 and 9") }
            if mode != "combined" && mode != "split" { throw ValidationError("--mode must be combined or split") }
            if let c = controllers, c < 1 || c > 9 { throw ValidationError("--controllers must be between 1 and 9") }
            if controllers != nil && mode != "split" { throw ValidationError("--controllers applies to --mode split") }
        }

        func run() throws {
            try ToolRun.run {
                let d = dir.path
                if let existing = try? DevCluster.load(dir: d) {
                    let alive = existing.nodes.filter { DevCluster.pid(dir: d, node: $0.id).map(DevCluster.isAlive) ?? false }
                    if !alive.isEmpty {
                        throw ToolFailure("a cluster is already running in \(d) (nodes \(alive.map { String($0.id) }.joined(separator: ","))): see `fjord dev-cluster status --dir \(d)`, or stop it with `fjord dev-cluster down --dir \(d)`")
                    }
                    print("Restarting the stopped cluster in \(d) (cluster id \(existing.clusterId)); for a fresh one run `fjord dev-cluster down --delete --dir \(d)` first.")
                    for n in existing.nodes { try DevCluster.startNode(existing, dir: d, id: n.id) }
                    try DevCluster.waitReady(existing, dir: d, timeout: timeout)
                    try DevCluster.printStatus(existing, dir: d, json: false)
                    return
                }
                var extra: [(String, String)] = []
                for (k, v) in try ToolSupport.keyValues(overrides, option: "--override") { extra.append((k, v)) }
                let cluster = try DevCluster.create(dir: d, brokers: nodes, split: mode == "split",
                                                    controllers: controllers ?? (nodes == 1 ? 1 : 3), extra: extra)
                print("Formatted \(cluster.nodes.count) node\(cluster.nodes.count == 1 ? "" : "s") in \(d) with cluster id \(cluster.clusterId).")
                for n in cluster.nodes { try DevCluster.startNode(cluster, dir: d, id: n.id) }
                try DevCluster.waitReady(cluster, dir: d, timeout: timeout)
                try DevCluster.printStatus(cluster, dir: d, json: false)
                print("")
                print("Try: fjord topics --bootstrap-server \(cluster.bootstrap) --create --topic demo --partitions 3 --replication-factor \(min(3, cluster.brokerIds.count))")
            }
        }
    }

    // MARK: status

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show the quorum leader, each node's roles/pid/liveness and every partition's leader.",
            discussion: """
                Examples:
                  fjord dev-cluster status
                  fjord dev-cluster status --output json
                  fjord dev-cluster status --get bootstrap
                  fjord dev-cluster status --get controller-leader
                  fjord dev-cluster status --get leader --topic demo --partition 0
                """
        )
        @OptionGroup var dir: DirOption
        @Option(name: .customLong("output"), help: "text (default) or json.") var output: String = "text"
        @Option(name: .customLong("get"), help: "Print one value: bootstrap, controller-leader, leader-epoch, or leader (with --topic and --partition).")
        var get: String?
        @Option(name: .customLong("topic"), help: "With --get leader.") var topic: String?
        @Option(name: .customLong("partition"), help: "With --get leader.") var partition: Int32?

        func validate() throws {
            if output != "text" && output != "json" { throw ValidationError("--output must be text or json") }
            if let g = get, !["bootstrap", "controller-leader", "leader-epoch", "leader"].contains(g) {
                throw ValidationError("--get must be bootstrap, controller-leader, leader-epoch or leader")
            }
            if get == "leader" && (topic == nil || partition == nil) { throw ValidationError("--get leader needs --topic and --partition") }
        }

        func run() throws {
            try ToolRun.run {
                let d = dir.path
                let cluster = try DevCluster.load(dir: d)
                if let g = get {
                    switch g {
                    case "bootstrap":
                        print(cluster.bootstrap)
                    case "controller-leader", "leader-epoch":
                        guard let q = DevCluster.quorum(cluster, dir: d) else { throw ToolFailure("no controller answered: is a majority of the controllers running?") }
                        print(g == "controller-leader" ? "\(q.leader)" : "\(q.epoch)")
                    default:
                        let snap = DevCluster.snapshot(cluster, dir: d)
                        guard let md = snap.metadata, let t = md.topics[topic!], let p = t.partitions.first(where: { $0.partition == partition! }) else {
                            throw ToolFailure("partition \(topic!)-\(partition!) not found (no broker answered, or no such partition)")
                        }
                        print(p.leader >= 0 ? "\(p.leader)" : "none")
                    }
                    return
                }
                try DevCluster.printStatus(cluster, dir: d, json: output == "json")
            }
        }
    }

    // MARK: kill, stop, start, down

    struct Kill: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kill",
            abstract: "SIGKILL a node (a crash), then show where its leaderships went.",
            discussion: "Example:\n  fjord dev-cluster kill $(fjord dev-cluster status --get controller-leader)"
        )
        @OptionGroup var dir: DirOption
        @Argument(help: "The node id.") var node: Int32

        func run() throws {
            try ToolRun.run {
                let d = dir.path
                let cluster = try DevCluster.load(dir: d)
                try DevCluster.kill(cluster, dir: d, id: node, graceful: false)
            }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stop",
            abstract: "Stop a node gracefully (SIGTERM: controlled shutdown), SIGKILL after 30 s.",
            discussion: "Example:\n  fjord dev-cluster stop 2"
        )
        @OptionGroup var dir: DirOption
        @Argument(help: "The node id.") var node: Int32

        func run() throws {
            try ToolRun.run {
                let d = dir.path
                let cluster = try DevCluster.load(dir: d)
                try DevCluster.kill(cluster, dir: d, id: node, graceful: true)
            }
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start",
            abstract: "Start a stopped or killed node again and wait until it serves.",
            discussion: "Example:\n  fjord dev-cluster start 2"
        )
        @OptionGroup var dir: DirOption
        @Argument(help: "The node id.") var node: Int32
        @Option(name: .customLong("timeout"), help: "Seconds to wait for the node to serve and rejoin its ISRs.") var timeout: Double = 60

        func run() throws {
            try ToolRun.run {
                let d = dir.path
                let cluster = try DevCluster.load(dir: d)
                guard let n = cluster.nodes.first(where: { $0.id == node }) else {
                    throw ToolFailure("no node \(node) in \(d): the nodes are \(cluster.nodes.map { String($0.id) }.joined(separator: ", "))")
                }
                if let pid = DevCluster.pid(dir: d, node: node), DevCluster.isAlive(pid) {
                    throw ToolFailure("node \(node) is already running (pid \(pid))")
                }
                let started = Date()
                try DevCluster.startNode(cluster, dir: d, id: node)
                try DevCluster.waitNode(cluster, dir: d, node: n, timeout: timeout)
                print("Node \(node) is serving.")
                guard n.isBroker else { return }
                // A restarted broker rejoins the ISRs once it has caught up; until then a
                // topic with min.insync.replicas=2 cannot take acks=all writes if another
                // node goes down. Wait for it, so a script's next kill is safe.
                let deadline = started.addingTimeInterval(timeout)
                var lagging = -1
                while Date() < deadline {
                    if let md = DevCluster.metadata(cluster, dir: d, timeoutMs: 3000) {
                        let parts = md.topics.values.flatMap(\.partitions).filter { $0.replicas.contains(node) }
                        lagging = parts.filter { !$0.isr.contains(node) }.count
                        if lagging == 0 {
                            print("Node \(node) is in the ISR of all \(parts.count) partition\(parts.count == 1 ? "" : "s") it replicates.")
                            return
                        }
                    }
                    usleep(200_000)
                }
                print("Warning: node \(node) is not yet in the ISR of \(lagging < 0 ? "its" : "\(lagging)") partition\(lagging == 1 ? "" : "s") after \(Int(timeout)) s; it is still catching up (see `fjord dev-cluster status`).")
            }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "down",
            abstract: "Stop every node (brokers first); --delete also removes the directory.",
            discussion: "Examples:\n  fjord dev-cluster down\n  fjord dev-cluster down --delete"
        )
        @OptionGroup var dir: DirOption
        @Flag(name: .customLong("delete"), help: "Remove the cluster directory (data, logs, configs) afterwards.") var delete = false
        @Flag(name: .customLong("kill"), help: "SIGKILL instead of a graceful stop.") var hard = false

        func run() throws {
            try ToolRun.run {
                let d = dir.path
                guard let cluster = try? DevCluster.load(dir: d) else {
                    if delete, FileManager.default.fileExists(atPath: d) {
                        throw ToolFailure("\(d) has no cluster.json: not removing a directory fjord did not create")
                    }
                    print("No cluster in \(d).")
                    return
                }
                let order = cluster.nodes.filter { $0.isBroker && !$0.isController } + cluster.nodes.filter { $0.isController }
                var stopped = 0
                // Stop in parallel: signal all, then wait.
                var pending: [(Int32, pid_t)] = []
                for n in order {
                    guard let pid = DevCluster.pid(dir: d, node: n.id), DevCluster.isAlive(pid) else {
                        try? FileManager.default.removeItem(atPath: DevCluster.pidPath(d, n.id))
                        continue
                    }
                    Glibc.kill(pid, hard ? SIGKILL : SIGTERM)
                    pending.append((n.id, pid))
                }
                for (id, pid) in pending {
                    if !DevCluster.waitExit(pid, seconds: hard ? 5 : 30) {
                        Glibc.kill(pid, SIGKILL)
                        _ = DevCluster.waitExit(pid, seconds: 5)
                    }
                    try? FileManager.default.removeItem(atPath: DevCluster.pidPath(d, id))
                    stopped += 1
                }
                print("Stopped \(stopped) node\(stopped == 1 ? "" : "s").")
                if delete {
                    try FileManager.default.removeItem(atPath: d)
                    print("Removed \(d).")
                }
            }
        }
    }
}

/// The state of a dev cluster (`cluster.json`) and the operations on it.
struct DevCluster: Codable {
    struct Node: Codable {
        var id: Int32
        var roles: [String]
        var brokerPort: Int?
        var controllerPort: Int?
        var isBroker: Bool { roles.contains("broker") }
        var isController: Bool { roles.contains("controller") }
    }

    var clusterId: String
    var mode: String
    var fjord: String
    var nodes: [Node]

    var brokerIds: [Int32] { nodes.filter(\.isBroker).map(\.id) }
    var bootstrap: String { nodes.compactMap { $0.brokerPort.map { "127.0.0.1:\($0)" } }.joined(separator: ",") }

    static func statePath(_ dir: String) -> String { dir + "/cluster.json" }
    static func pidPath(_ dir: String, _ id: Int32) -> String { dir + "/node\(id).pid" }
    static func logPath(_ dir: String, _ id: Int32) -> String { dir + "/node\(id).log" }
    static func propsPath(_ dir: String, _ id: Int32) -> String { dir + "/node\(id).properties" }

    static func load(dir: String) throws -> DevCluster {
        guard let data = FileManager.default.contents(atPath: statePath(dir)) else {
            throw ToolFailure("no dev cluster in \(dir): start one with `fjord dev-cluster up --nodes 3\(dir == "/tmp/fjord-dev-cluster" ? "" : " --dir \(dir)")`")
        }
        return try JSONDecoder().decode(DevCluster.self, from: data)
    }

    func save(dir: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(self).write(to: URL(fileURLWithPath: Self.statePath(dir)))
    }

    /// This executable's path (nodes run the same build).
    static func executablePath() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 { return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return CommandLine.arguments[0]
    }

    /// Free loopback ports (all bound at once so they differ).
    static func freePorts(_ count: Int) throws -> [Int] {
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw ToolFailure("socket() failed: \(String(cString: strerror(errno)))") }
            fds.append(fd)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
            guard ok == 0 else { throw ToolFailure("cannot bind a loopback port: \(String(cString: strerror(errno)))") }
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
            ports.append(Int(UInt16(bigEndian: addr.sin_port)))
        }
        return ports
    }

    /// Writes the node properties, formats every node with one new cluster id, saves cluster.json.
    static func create(dir: String, brokers: Int, split: Bool, controllers: Int, extra: [(String, String)]) throws -> DevCluster {
        let fm = FileManager.default
        if fm.fileExists(atPath: dir) {
            // Other files (a log the caller redirects there, say) are fine; an earlier cluster's are not.
            let contents = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            if let clash = contents.first(where: { $0 == "data" || ($0.hasPrefix("node") && ($0.hasSuffix(".properties") || $0.hasSuffix(".pid"))) }) {
                throw ToolFailure("\(dir) holds files of another cluster (\(clash)): choose another --dir, or remove it first")
            }
        }
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var nodes: [Node] = []
        if split {
            let ports = try freePorts(controllers + brokers)
            for i in 0..<controllers { nodes.append(Node(id: Int32(i + 1), roles: ["controller"], brokerPort: nil, controllerPort: ports[i])) }
            for i in 0..<brokers { nodes.append(Node(id: Int32(controllers + i + 1), roles: ["broker"], brokerPort: ports[controllers + i], controllerPort: nil)) }
        } else {
            let ports = try freePorts(2 * brokers)
            for i in 0..<brokers {
                nodes.append(Node(id: Int32(i + 1), roles: ["broker", "controller"], brokerPort: ports[2 * i], controllerPort: ports[2 * i + 1]))
            }
        }
        var uuid = KafkaUUID.random()
        while uuid.description.hasPrefix("-") || uuid == .zero || uuid == .one { uuid = KafkaUUID.random() }
        let clusterId = uuid.description
        let cluster = DevCluster(clusterId: clusterId, mode: split ? "split" : "combined", fjord: executablePath(), nodes: nodes)
        let voters = nodes.filter(\.isController).map { "\($0.id)@127.0.0.1:\($0.controllerPort!)" }.joined(separator: ",")
        let nb = nodes.filter(\.isBroker).count
        for n in nodes {
            var p: [(String, String)] = [
                ("process.roles", n.roles.joined(separator: ",")),
                ("node.id", "\(n.id)"),
                ("controller.quorum.voters", voters),
            ]
            var listeners: [String] = []
            if let bp = n.brokerPort { listeners.append("PLAINTEXT://127.0.0.1:\(bp)") }
            if let cp = n.controllerPort { listeners.append("CONTROLLER://127.0.0.1:\(cp)") }
            p.append(("listeners", listeners.joined(separator: ",")))
            if let bp = n.brokerPort {
                p.append(("advertised.listeners", "PLAINTEXT://127.0.0.1:\(bp)"))
                p.append(("inter.broker.listener.name", "PLAINTEXT"))
            }
            p += [
                ("controller.listener.names", "CONTROLLER"),
                ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"),
                ("log.dirs", "\(dir)/data/node\(n.id)"),
                ("num.partitions", "\(min(3, nb))"),
                ("default.replication.factor", "\(min(3, nb))"),
                ("min.insync.replicas", "\(nb >= 3 ? 2 : 1)"),
                ("offsets.topic.replication.factor", "\(min(3, nb))"),
                ("transaction.state.log.replication.factor", "\(min(3, nb))"),
                ("transaction.state.log.min.isr", "\(min(2, nb))"),
                ("group.initial.rebalance.delay.ms", "0"),
            ]
            for (k, v) in extra {
                if let i = p.firstIndex(where: { $0.0 == k }) { p[i].1 = v } else { p.append((k, v)) }
            }
            let text = "# Node \(n.id) of the Fjord dev cluster in \(dir) (written by `fjord dev-cluster up`).\n"
                + "# A 3-node combined cluster uses the keys and values of the repository's\n"
                + "# config/cluster/node<N>.properties (commented there), on free ports and in this directory.\n"
                + p.map { "\($0.0)=\($0.1)" }.joined(separator: "\n") + "\n"
            try text.write(toFile: propsPath(dir, n.id), atomically: true, encoding: .utf8)
            let r = try runTool(cluster.fjord, ["storage", "format", "-t", clusterId, "-c", propsPath(dir, n.id)])
            if r.status != 0 {
                throw ToolFailure("formatting node \(n.id) failed: \(r.output.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        try cluster.save(dir: dir)
        return cluster
    }

    /// Runs a command to completion; stdout and stderr together.
    static func runTool(_ exe: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func pid(dir: String, node: Int32) -> pid_t? {
        guard let s = try? String(contentsOfFile: pidPath(dir, node), encoding: .utf8) else { return nil }
        return pid_t(s.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Whether `pid` is a live (not zombie) `fjord server-start` process.
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].first
        if state == "Z" || state == "X" { return false }
        guard let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return String(decoding: cmd.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains("server-start")
    }

    static func waitExit(_ pid: pid_t, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var status: Int32 = 0
            _ = waitpid(pid, &status, WNOHANG)  // reaps if it is our child
            if !isAlive(pid) { return true }
            usleep(20_000)
        }
        return !isAlive(pid)
    }

    /// Starts node `id` in its own session, output appended to its log; writes its pid file.
    static func startNode(_ c: DevCluster, dir: String, id: Int32) throws {
        // Nodes outlive this command: they must not inherit its descriptors (a caller's pipe or
        // the socket Foundation's Process watches to see a child exit would stay open forever).
        markDescriptorsCloseOnExec()
        let exe = FileManager.default.isExecutableFile(atPath: c.fjord) ? c.fjord : executablePath()
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, logPath(dir, id), O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(0x80))  // POSIX_SPAWN_SETSID: survive the terminal
        let args = [exe, "server-start", propsPath(dir, id)]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &fa, &attr, &argv, environ)
        guard rc == 0 else { throw ToolFailure("cannot start node \(id) (\(exe)): \(String(cString: strerror(rc)))") }
        try "\(pid)\n".write(toFile: pidPath(dir, id), atomically: true, encoding: .utf8)
        let node = c.nodes.first { $0.id == id }!
        print("Started node \(id) (\(node.roles.joined(separator: ","))): pid \(pid), log \(logPath(dir, id))")
    }

    /// Sets FD_CLOEXEC on every open descriptor above 2.
    static func markDescriptorsCloseOnExec() {
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for name in fds {
            guard let fd = Int32(name), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    static func portOpen(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }

    static func logTail(_ dir: String, _ id: Int32, lines: Int = 15) -> String {
        guard let s = try? String(contentsOfFile: logPath(dir, id), encoding: .utf8) else { return "" }
        return s.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Waits until node `n` listens (brokers: once unfenced) and, for brokers, is in the metadata.
    static func waitNode(_ c: DevCluster, dir: String, node n: Node, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let pid = pid(dir: dir, node: n.id), !isAlive(pid) {
                throw ToolFailure("node \(n.id) exited during start-up; the end of \(logPath(dir, n.id)):\n\(logTail(dir, n.id))")
            }
            let port = n.brokerPort ?? n.controllerPort!
            if portOpen(port) { return }
            usleep(100_000)
        }
        throw ToolFailure("node \(n.id) did not serve within \(Int(timeout)) s; see \(logPath(dir, n.id))")
    }

    /// Waits until every node listens and every broker is registered.
    static func waitReady(_ c: DevCluster, dir: String, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        for n in c.nodes {
            try waitNode(c, dir: dir, node: n, timeout: max(1, deadline.timeIntervalSinceNow))
        }
        let want = Set(c.brokerIds)
        var last = -1
        while Date() < deadline {
            if let md = metadata(c, dir: dir, timeoutMs: 3000) {
                let have = Set(md.brokers.keys).intersection(want)
                if have.count != last {
                    print("Brokers registered: \(have.count)/\(want.count)")
                    last = have.count
                }
                if have == want { return }
            }
            usleep(200_000)
        }
        throw ToolFailure("the brokers did not all register within \(Int(timeout)) s; see the node logs in \(dir)")
    }

    /// Metadata from the live brokers (nil when none answers).
    static func metadata(_ c: DevCluster, dir: String, timeoutMs: Int64) -> ClusterMetadata? {
        let live = c.nodes.filter { $0.isBroker && (pid(dir: dir, node: $0.id).map(isAlive) ?? false) }
        guard !live.isEmpty else { return nil }
        let addrs = live.map { BootstrapAddress(host: "127.0.0.1", port: $0.brokerPort!) }
        let client = KafkaClient(config: ClientConfig(bootstrap: addrs, clientId: "fjord-dev-cluster", requestTimeoutMs: timeoutMs, connectTimeoutMs: 1000))
        defer { client.close() }
        return try? client.refreshMetadata(topics: nil).wait()
    }

    struct Quorum {
        var leader: Int32
        var epoch: Int32
        var highWatermark: Int64
    }

    /// The quorum state from any live controller.
    static func quorum(_ c: DevCluster, dir: String) -> Quorum? {
        for n in c.nodes where n.isController {
            guard let p = pid(dir: dir, node: n.id), isAlive(p) else { continue }
            if let r = try? MetadataQuorumTool.query(host: "127.0.0.1", port: n.controllerPort!, controller: true, timeoutMs: 3000),
               let part = r.quorum.topics.first?.partitions.first, part.leaderId >= 0 {
                return Quorum(leader: part.leaderId, epoch: part.leaderEpoch, highWatermark: part.highWatermark)
            }
        }
        return nil
    }

    struct Snapshot {
        var quorum: Quorum?
        var metadata: ClusterMetadata?
        var pids: [Int32: pid_t?]
        var alive: [Int32: Bool]
    }

    static func snapshot(_ c: DevCluster, dir: String) -> Snapshot {
        var pids: [Int32: pid_t?] = [:]
        var alive: [Int32: Bool] = [:]
        for n in c.nodes {
            let p = pid(dir: dir, node: n.id)
            let a = p.map(isAlive) ?? false
            pids[n.id] = a ? p : nil
            alive[n.id] = a
        }
        return Snapshot(quorum: quorum(c, dir: dir), metadata: metadata(c, dir: dir, timeoutMs: 4000), pids: pids, alive: alive)
    }

    static func printStatus(_ c: DevCluster, dir: String, json: Bool) throws {
        let s = snapshot(c, dir: dir)
        let topics = (s.metadata?.topics.values.map { $0 } ?? []).filter { !$0.isInternal }.sorted { $0.name < $1.name }
        let allParts = topics.flatMap { t in t.partitions.map { (t.name, $0) } }
        let noLeader = allParts.filter { $0.1.leader < 0 }.count
        let under = allParts.filter { $0.1.isUnderReplicated }.count
        if json {
            func arr(_ a: [Int32]) -> String { "[" + a.map(String.init).joined(separator: ", ") + "]" }
            var out = "{\n"
            out += "  \"dir\": \(ToolSupport.jsonString(dir)),\n"
            out += "  \"clusterId\": \(ToolSupport.jsonString(c.clusterId)),\n"
            out += "  \"mode\": \(ToolSupport.jsonString(c.mode)),\n"
            out += "  \"bootstrap\": \(ToolSupport.jsonString(c.bootstrap)),\n"
            out += "  \"controllerLeader\": \(s.quorum.map { String($0.leader) } ?? "null"),\n"
            out += "  \"leaderEpoch\": \(s.quorum.map { String($0.epoch) } ?? "null"),\n"
            out += "  \"highWatermark\": \(s.quorum.map { String($0.highWatermark) } ?? "null"),\n"
            out += "  \"nodes\": [\n" + c.nodes.map { n in
                let pidText = (s.pids[n.id] ?? nil).map { String($0) } ?? "null"
                return "    {\"id\": \(n.id), \"roles\": [\(n.roles.map(ToolSupport.jsonString).joined(separator: ", "))], \"pid\": \(pidText), "
                    + "\"alive\": \(s.alive[n.id] ?? false), \"broker\": \(n.brokerPort.map { "\"127.0.0.1:\($0)\"" } ?? "null"), "
                    + "\"controller\": \(n.controllerPort.map { "\"127.0.0.1:\($0)\"" } ?? "null"), \"log\": \(ToolSupport.jsonString(logPath(dir, n.id)))}"
            }.joined(separator: ",\n") + "\n  ],\n"
            out += "  \"metadataAvailable\": \(s.metadata != nil),\n"
            out += "  \"partitionsWithoutLeader\": \(noLeader),\n"
            out += "  \"underReplicatedPartitions\": \(under),\n"
            out += "  \"partitions\": [" + allParts.map { t, p in
                "\n    {\"topic\": \(ToolSupport.jsonString(t)), \"partition\": \(p.partition), \"leader\": \(p.leader >= 0 ? String(p.leader) : "null"), "
                    + "\"leaderEpoch\": \(p.leaderEpoch), \"replicas\": \(arr(p.replicas)), \"isr\": \(arr(p.isr))}"
            }.joined(separator: ",") + (allParts.isEmpty ? "]\n" : "\n  ]\n")
            out += "}"
            print(out)
            return
        }
        print("Fjord dev cluster in \(dir): \(c.mode) mode, cluster id \(c.clusterId)")
        print("Bootstrap servers: \(c.bootstrap)")
        if let q = s.quorum {
            print("Controller leader: node \(q.leader) (epoch \(q.epoch), metadata high watermark \(q.highWatermark))")
        } else {
            print("Controller leader: none (no controller answered: is a majority of the controllers running?)")
        }
        print("")
        var rows: [[String]] = [["NODE", "ROLES", "PID", "ALIVE", "BROKER", "CONTROLLER"]]
        for n in c.nodes {
            let pidText = (s.pids[n.id] ?? nil).map { String($0) } ?? "-"
            rows.append(["\(n.id)", n.roles.joined(separator: ","), pidText, (s.alive[n.id] ?? false) ? "yes" : "no",
                         n.brokerPort.map { "127.0.0.1:\($0)" } ?? "-", n.controllerPort.map { "127.0.0.1:\($0)" } ?? "-"])
        }
        printTable(rows)
        print("")
        guard s.metadata != nil else {
            print("Partitions: unknown (no broker answered)")
            return
        }
        print("Partitions: \(allParts.count) in \(topics.count) topic\(topics.count == 1 ? "" : "s"), \(noLeader) without leader, \(under) under-replicated")
        if s.quorum == nil {
            print("Warning: no controller quorum, so the brokers cannot learn of changes: this table is the last state they know, and leaders on stopped nodes are not moved.")
        }
        let deadLeaders = allParts.filter { p in p.1.leader >= 0 && s.alive[p.1.leader] == false }.count
        if deadLeaders > 0 && s.quorum != nil {
            print("Note: \(deadLeaders) partition\(deadLeaders == 1 ? " is" : "s are") still shown led by a stopped node; the controller moves them once it fences that broker.")
        }
        if !allParts.isEmpty {
            var prow: [[String]] = [["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"]]
            for (t, p) in allParts {
                prow.append([t, "\(p.partition)", p.leader >= 0 ? "\(p.leader)" : "none",
                             p.replicas.map(String.init).joined(separator: ","), p.isr.map(String.init).joined(separator: ",")])
            }
            printTable(prow)
        }
    }

    static func printTable(_ rows: [[String]]) {
        guard let first = rows.first else { return }
        var widths = [Int](repeating: 0, count: first.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        for r in rows {
            var line = ""
            for (i, c) in r.enumerated() {
                line += i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count + 2)
            }
            print(line)
        }
    }

    /// Kills (SIGKILL) or stops (SIGTERM) a node; after a kill, waits for its leaderships to move and reports where.
    static func kill(_ c: DevCluster, dir: String, id: Int32, graceful: Bool) throws {
        guard let node = c.nodes.first(where: { $0.id == id }) else {
            throw ToolFailure("no node \(id) in \(dir): the nodes are \(c.nodes.map { String($0.id) }.joined(separator: ", "))")
        }
        guard let p = pid(dir: dir, node: id), isAlive(p) else {
            try? FileManager.default.removeItem(atPath: pidPath(dir, id))
            throw ToolFailure("node \(id) is not running; start it with `fjord dev-cluster start \(id)`")
        }
        let before = graceful ? nil : metadata(c, dir: dir, timeoutMs: 3000)
        let quorumBefore = graceful ? nil : quorum(c, dir: dir)
        Glibc.kill(p, graceful ? SIGTERM : SIGKILL)
        if !waitExit(p, seconds: graceful ? 30 : 5) {
            Glibc.kill(p, SIGKILL)
            _ = waitExit(p, seconds: 5)
        }
        try? FileManager.default.removeItem(atPath: pidPath(dir, id))
        print(graceful ? "Stopped node \(id) (pid \(p))." : "Killed node \(id) (pid \(p)) with SIGKILL.")
        if graceful { return }
        // Where did its leaderships go?
        let led = (before?.topics.values.flatMap { t in t.partitions.filter { $0.leader == id }.map { TopicPartition(t.name, $0.partition) } } ?? []).sorted()
        let wasControllerLeader = node.isController && quorumBefore?.leader == id
        let deadline = Date().addingTimeInterval(15)
        var md: ClusterMetadata? = nil
        var q: Quorum? = nil
        while Date() < deadline {
            q = wasControllerLeader ? quorum(c, dir: dir) : nil
            md = led.isEmpty ? nil : metadata(c, dir: dir, timeoutMs: 2000)
            let quorumMoved = !wasControllerLeader || (q != nil && q!.leader != id)
            let leadersMoved = led.isEmpty || (md != nil && led.allSatisfy { md!.leader(of: $0) != id })
            if quorumMoved && leadersMoved { break }
            usleep(100_000)
        }
        if wasControllerLeader {
            if let q, q.leader != id {
                print("Controller leader: node \(id) -> node \(q.leader) (epoch \(quorumBefore!.epoch) -> \(q.epoch))")
            } else {
                print("Controller leader: none elected yet (a majority of the controllers must be running)")
            }
        }
        if !led.isEmpty {
            let moves = led.map { tp -> String in
                let l = md?.leader(of: tp)
                return "\(tp) -> \(l.map { $0 == id ? "still \(id)" : "node \($0)" } ?? "no leader")"
            }
            print("Partitions node \(id) led: \(moves.joined(separator: ", "))")
        }
    }
}
