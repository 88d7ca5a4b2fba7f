import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Real `fjord` processes on loopback ports, each with its own directories, for tests that
/// start, `kill -9` and restart nodes. Every node is a combined broker + controller unless
/// told otherwise. Processes are killed when the cluster is torn down.
public final class LocalCluster: @unchecked Sendable {
    public let dir: String
    public let nodes: [Int32]
    public let brokerPorts: [Int32: Int]
    public let controllerPorts: [Int32: Int]
    public private(set) var clusterId = ""
    private var processes: [Int32: Process] = [:]
    public let fjord: String

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The `fjord` executable of this build (`$FJORD_BIN`, else `.build/debug/fjord`).
    public static func fjordBinary() throws -> String {
        if let p = ProcessInfo.processInfo.environment["FJORD_BIN"], FileManager.default.isExecutableFile(atPath: p) { return p }
        for c in [".build/debug/fjord", ".build/release/fjord"] {
            let p = TestPython.packageRoot() + "/" + c
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw Failure(description: "no fjord executable: run `swift build --product fjord` or set FJORD_BIN")
    }

    /// A free loopback TCP port (bound and released).
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Writes the properties of `count` combined nodes (plus `extra` lines) and formats them
    /// with one new cluster id. With `dynamicQuorum` the nodes name the controllers in
    /// `controller.quorum.bootstrap.servers` (no `controller.quorum.voters`) and are
    /// formatted with `--initial-controllers`; `brokers` adds that many broker-only nodes
    /// (ids after the combined ones).
    public init(count: Int, extra: [String] = [], dynamicQuorum: Bool = false, brokers: Int = 0) throws {
        fjord = try Self.fjordBinary()
        dir = try TestPython.temporaryDirectory("fjord-cluster")
        nodes = (1...(count + brokers)).map { Int32($0) }
        let combined = Array(nodes.prefix(count))
        var bp: [Int32: Int] = [:], cp: [Int32: Int] = [:]
        for n in nodes {
            bp[n] = Self.freePort()
            if combined.contains(n) { cp[n] = Self.freePort() }
        }
        brokerPorts = bp
        controllerPorts = cp
        let voters = combined.map { "\($0)@127.0.0.1:\(cp[$0]!)" }.joined(separator: ",")
        let quorum = dynamicQuorum
            ? "controller.quorum.bootstrap.servers=" + combined.map { "127.0.0.1:\(cp[$0]!)" }.joined(separator: ",")
            : "controller.quorum.voters=\(voters)"
        clusterId = try Self.output(fjord, ["storage", "random-uuid"]).trimmingCharacters(in: .whitespacesAndNewlines)
        var initial: [String] = []
        if dynamicQuorum {
            for n in combined {
                let dirId = try Self.output(fjord, ["storage", "random-uuid"]).trimmingCharacters(in: .whitespacesAndNewlines)
                initial.append("\(n)@127.0.0.1:\(cp[n]!):\(dirId)")
            }
        }
        for n in nodes {
            let isController = combined.contains(n)
            let props = [
                isController ? "process.roles=broker,controller" : "process.roles=broker",
                "node.id=\(n)",
                quorum,
                isController ? "listeners=PLAINTEXT://127.0.0.1:\(bp[n]!),CONTROLLER://127.0.0.1:\(cp[n]!)" : "listeners=PLAINTEXT://127.0.0.1:\(bp[n]!)",
                "advertised.listeners=PLAINTEXT://127.0.0.1:\(bp[n]!)",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                "log.dirs=\(dir)/data\(n)",
                "default.replication.factor=\(min(3, nodes.count))",
                "min.insync.replicas=\(nodes.count >= 3 ? 2 : 1)",
            ] + extra
            try (props.joined(separator: "\n") + "\n").write(toFile: propertiesPath(n), atomically: true, encoding: .utf8)
            var args = ["storage", "format", "-t", clusterId, "-c", propertiesPath(n)]
            if dynamicQuorum && isController { args += ["--initial-controllers", initial.joined(separator: ",")] }
            _ = try Self.output(fjord, args)
        }
    }

    public func propertiesPath(_ n: Int32) -> String { "\(dir)/node\(n).properties" }
    public func logPath(_ n: Int32) -> String { "\(dir)/node\(n).log" }
    public var bootstrap: String { nodes.map { "127.0.0.1:\(brokerPorts[$0]!)" }.joined(separator: ",") }

    /// Starts node `n` (its output is appended to `node<n>.log`) and waits for its port.
    public func start(_ n: Int32) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fjord)
        p.arguments = ["server-start", propertiesPath(n)]
        if !FileManager.default.fileExists(atPath: logPath(n)) { FileManager.default.createFile(atPath: logPath(n), contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath(n)))
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        processes[n] = p
        // A broker-only node has no controller port; its broker port opens once it is unfenced.
        if let cport = controllerPorts[n] { try waitForPort(cport, seconds: 30) }
    }

    /// Starts every node, then waits until each serves clients (its broker listener opens
    /// once the controller has unfenced it, which needs a quorum).
    public func startAll() throws {
        for n in nodes { try start(n) }
        for n in nodes { try waitForBroker(n) }
    }

    public func waitForBroker(_ n: Int32, seconds: Double = 30) throws {
        try waitForPort(brokerPorts[n]!, seconds: seconds)
    }

    /// `kill -9`.
    public func kill9(_ n: Int32) {
        guard let p = processes[n] else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        processes[n] = nil
    }

    public func isRunning(_ n: Int32) -> Bool { processes[n]?.isRunning == true }

    public func stopAll() {
        for n in nodes { kill9(n) }
    }

    deinit {
        stopAll()
        if ProcessInfo.processInfo.environment["FJORD_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    public func waitForPort(_ port: Int, seconds: Double) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            close(fd)
            if ok == 0 { return }
            usleep(100_000)
        }
        throw Failure(description: "port \(port) did not open within \(seconds) s")
    }

    /// Runs `fjord` with `args`; returns stdout (throws with stderr on failure).
    public func fjordOutput(_ args: [String], timeout: Double = 20) throws -> String {
        try Self.output(fjord, args, timeout: timeout)
    }

    public static func output(_ exe: String, _ args: [String], timeout: Double = 20) throws -> String {
        let r = try run(exe, args, timeout: timeout)
        guard r.status == 0 else { throw Failure(description: "\(exe) \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)") }
        return r.stdout
    }

    /// Runs a process to completion (bounded by `timeout` seconds).
    public static func run(_ exe: String, _ args: [String], timeout: Double = 20) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        final class Box: @unchecked Sendable { var out = Data(); var err = Data() }
        let box = Box()
        let g = DispatchGroup()
        g.enter(); DispatchQueue.global().async { box.out = out.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        g.enter(); DispatchQueue.global().async { box.err = err.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(5_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            g.wait()
            return (124, String(decoding: box.out, as: UTF8.self), "timed out after \(timeout) s")
        }
        g.wait()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: box.out, as: UTF8.self), String(decoding: box.err, as: UTF8.self))
    }

    /// `metadata-quorum describe --status` against node `n`'s controller listener, parsed
    /// into label → value (nil if the command failed).
    public func quorumStatus(via n: Int32) -> [String: String]? {
        guard let r = try? Self.run(fjord, ["metadata-quorum", "--bootstrap-controller", "127.0.0.1:\(controllerPorts[n]!)", "describe", "--status"], timeout: 5),
              r.status == 0 else { return nil }
        var m: [String: String] = [:]
        for line in r.stdout.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            m[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return m
    }

    /// Polls `body` every 50 ms until it returns a value or `seconds` pass.
    public static func eventually<T>(_ seconds: Double, _ body: () throws -> T?) rethrows -> T? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let v = try body() { return v }
            usleep(50_000)
        } while Date() < deadline
        return nil
    }
}
