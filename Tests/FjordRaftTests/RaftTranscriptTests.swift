import FjordRaft
import FjordRecords
import Foundation
import NIOCore
import XCTest

/// Runs the KRaft core scenarios in `testdata/raft/*.txt`: elections, pre-vote refusal,
/// divergence truncation, check-quorum resignation, snapshot catch-up.
///
/// Each case is a command line, a `----` line and the expected output, ended by a blank
/// line; `#` lines are comments. `FJORD_REWRITE=1` rewrites the files with the actual output
/// (review the diff). Messages are not delivered by themselves: the script decides.
///
/// Commands (`now=MS` sets the clock first; it never goes back):
///
///     cluster voters=N [observers=N] [fetch-max-bytes=N]
///     tick N|all                      advance node N's timers
///     deliver [from=A] [to=B] [kind=K] [count=N]   deliver queued messages, oldest first
///     deliver-all [max=N]             deliver until nothing is queued
///     drop [from=A] [to=B] [kind=K]   lose queued messages
///     propose N VALUE...              the leader N appends VALUEs (one batch)
///     crash N [keep-unflushed=N]      the process dies: unflushed entries are lost
///     restart N                       from its persisted election state and log
///     snapshot N [trim]               the state machine of N snapshots at its high watermark
///     status                          role, epoch, leader, high watermark and log of each node
///     queue                           the messages in flight
final class RaftTranscriptTests: XCTestCase {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("testdata/raft")
    }

    func testTranscripts() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".txt") }.sorted()
        XCTAssertFalse(files.isEmpty, "no transcripts in \(Self.directory.path)")
        for f in files { try runFile(Self.directory.appendingPathComponent(f)) }
    }

    func runFile(_ url: URL) throws {
        var lines = try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        let rewrite = ProcessInfo.processInfo.environment["FJORD_REWRITE"] == "1"
        let h = RaftHarness()
        var out: [String] = []
        var i = 0
        while i < lines.count {
            let line = lines[i]
            guard !line.hasPrefix("#"), !line.trimmingCharacters(in: .whitespaces).isEmpty, i + 1 < lines.count, lines[i + 1] == "----" else {
                out.append(line)
                i += 1
                continue
            }
            let start = i + 1
            i += 2
            var expected: [String] = []
            while i < lines.count, !lines[i].isEmpty {
                expected.append(lines[i])
                i += 1
            }
            if i < lines.count { i += 1 }
            let actual = h.execute(line)
            out.append(line)
            out.append("----")
            out.append(contentsOf: actual)
            out.append("")
            if !rewrite, actual != expected {
                XCTFail("""
                    \(url.lastPathComponent):\(start): \(line)
                    expected:
                    \(expected.joined(separator: "\n"))
                    actual:
                    \(actual.joined(separator: "\n"))
                    """)
            }
        }
        if rewrite { try (out.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8) }
    }
}

/// Nodes with in-memory logs and a message queue the script delivers from.
final class RaftHarness {
    final class Node {
        let id: Int32
        let log = MemoryRaftLog()
        var state = ElectionState.initial
        var core: RaftNode?
        var config: RaftConfig
        var incarnation = 0
        var shownRole = "Unattached"  // every node starts unattached
        init(id: Int32, config: RaftConfig) {
            self.id = id
            self.config = config
        }
    }

    var nodes: [Int32: Node] = [:]
    var queue: [RaftEnvelope] = []
    var now: Int64 = 0

    func execute(_ line: String) -> [String] {
        var words = line.split(separator: " ").map(String.init)
        guard !words.isEmpty else { return [] }
        let cmd = words.removeFirst()
        var named: [String: String] = [:]
        var positional: [String] = []
        for w in words {
            if let eq = w.firstIndex(of: "=") { named[String(w[..<eq])] = String(w[w.index(after: eq)...]) } else { positional.append(w) }
        }
        if let t = named["now"].flatMap(Int64.init) { now = max(now, t) }
        func int(_ k: String) -> Int32? { named[k].flatMap { Int32($0) } }
        var out: [String] = []
        switch cmd {
            case "cluster":
                let voters = Int32(int("voters") ?? 3)
                let observers = Int32(int("observers") ?? 0)
                for id in 1...(voters + observers) {
                    var c = RaftConfig(nodeId: id, voters: Array(1...voters))
                    if let b = int("fetch-max-bytes") { c.fetchMaxBytes = b }
                    nodes[id] = Node(id: id, config: c)
                    start(nodes[id]!)
                }
                out.append("\(voters) voters, \(observers) observers")
            case "tick":
                let ids = positional.first == "all" ? nodes.keys.sorted() : positional.compactMap { Int32($0) }
                for id in ids {
                    guard let n = nodes[id], let core = n.core else { continue }
                    out += run(n, core.tick(nowMs: now))
                }
            case "deliver", "deliver-all":
                let maxSteps = cmd == "deliver-all" ? Int(int("max") ?? 200) : Int(int("count") ?? 1)
                var steps = 0
                while steps < maxSteps, let idx = queue.firstIndex(where: { matches($0, named) }) {
                    steps += 1
                    let env = queue.remove(at: idx)
                    out.append("deliver \(env.from)->\(env.to) \(Self.describe(env.message))")
                    guard let n = nodes[env.to], let core = n.core else {
                        out.append("  (node \(env.to) is down)")
                        continue
                    }
                    out += run(n, core.receive(env, nowMs: now)).map { "  " + $0 }
                }
                if steps == 0 { out.append("(nothing to deliver)") }
            case "drop":
                let before = queue.count
                queue.removeAll { matches($0, named) }
                out.append("dropped \(before - queue.count)")
            case "propose":
                guard let id = positional.first.flatMap(Int32.init), let n = nodes[id], let core = n.core else { return ["no such node"] }
                do {
                    let (offsets, ready) = try core.propose(positional.dropFirst().map { ByteBuffer(string: $0) }, nowMs: now)
                    out.append("offsets \(offsets.lowerBound)...\(offsets.upperBound)")
                    out += run(n, ready)
                } catch {
                    out.append("error: \(error)")
                }
            case "crash":
                guard let id = positional.first.flatMap(Int32.init), let n = nodes[id] else { return ["no such node"] }
                n.core = nil
                n.log.crash(keepUnflushed: Int(int("keep-unflushed") ?? 0))
                queue.removeAll { $0.from == id }
                out.append("node \(id) crashed; log \(Self.logText(n.log))")
            case "restart":
                guard let id = positional.first.flatMap(Int32.init), let n = nodes[id] else { return ["no such node"] }
                start(n)
                n.shownRole = "\(n.core!.role)"
                out.append("node \(id) restarted as \(n.core!.role) in epoch \(n.core!.epoch)")
            case "snapshot":
                guard let id = positional.first.flatMap(Int32.init), let n = nodes[id], let core = n.core else { return ["no such node"] }
                let end = core.highWatermark
                let epoch = n.log.endOffset(forEpoch: Int32.max).epoch
                let id2 = SnapshotId(endOffset: end, epoch: epochAt(n.log, offset: end - 1) ?? epoch)
                n.log.createSnapshot(id2, bytes: ByteBuffer(string: String(repeating: "state of node \(id) below \(end); ", count: 4)))
                out.append("snapshot \(id2)")
                if positional.contains("trim") {
                    n.log.deleteBeforeLatestSnapshot()
                    out.append("log start \(n.log.startOffset)")
                }
            case "status":
                for (_, n) in nodes.sorted(by: { $0.key < $1.key }) {
                    guard let core = n.core else { out.append("n\(n.id): down, log \(Self.logText(n.log))"); continue }
                    out.append("n\(n.id): \(core.role) epoch=\(core.epoch) leader=\(core.leaderId) hw=\(core.highWatermark) log \(Self.logText(n.log))")
                }
            case "queue":
                out += queue.map { "\($0.from)->\($0.to) \(Self.describe($0.message))" }
                if queue.isEmpty { out.append("(empty)") }
            default:
                out.append("unknown command \(cmd)")
        }
        return out
    }

    func start(_ n: Node) {
        n.incarnation += 1
        n.core = RaftNode(config: n.config, log: n.log, state: n.state, seed: UInt64(n.id) &* 1000 &+ UInt64(n.incarnation), nowMs: now)
    }

    func epochAt(_ log: MemoryRaftLog, offset: Int64) -> Int32? {
        log.entries.first { $0.baseOffset <= offset && offset <= $0.lastOffset }?.epoch
    }

    func matches(_ env: RaftEnvelope, _ named: [String: String]) -> Bool {
        if let f = named["from"].flatMap(Int32.init), env.from != f { return false }
        if let t = named["to"].flatMap(Int32.init), env.to != t { return false }
        if let k = named["kind"], Self.kind(env.message) != k { return false }
        return true
    }

    /// Executes a ready as the shell does (persist, flush, then queue the messages), and the
    /// `persisted` follow-up; returns what happened, one line per effect.
    func run(_ n: Node, _ ready: RaftReady) -> [String] {
        var out: [String] = []
        var r = ready
        while true {
            if let s = r.persistState {
                n.state = s
                out.append("n\(n.id): persist epoch=\(s.epoch) voted=\(s.votedId) leader=\(s.leaderId)")
            }
            if r.flushLog {
                try? n.log.flush()
                out.append("n\(n.id): flush log \(Self.logText(n.log))")
            }
            if let s = r.snapshotInstalled { out.append("n\(n.id): installed snapshot \(s), log \(Self.logText(n.log))") }
            if let hw = r.newHighWatermark { out.append("n\(n.id): high watermark \(hw)") }
            if let l = r.leaderChanged { out.append("n\(n.id): leader of epoch \(l.epoch) is \(l.leaderId)") }
            for env in r.sendAfterPersist {
                queue.append(env)
                out.append("n\(n.id) -> n\(env.to): \(Self.describe(env.message))")
            }
            guard r.needsPersist, let core = n.core else { break }
            r = core.persisted(nowMs: now)
            if r.isEmpty { break }
        }
        if let core = n.core,
           "\(core.role)" != n.shownRole || out.contains(where: { $0.contains("persist") || $0.contains("flush") }) {
            out.append("n\(n.id): \(core.role)")
            n.shownRole = "\(core.role)"
        }
        return out
    }

    static func kind(_ m: RaftMessage) -> String {
        switch m {
        case .vote: return "vote"
        case .voteResponse: return "vote-response"
        case .beginQuorumEpoch: return "begin-epoch"
        case .beginQuorumEpochResponse: return "begin-epoch-response"
        case .endQuorumEpoch: return "end-epoch"
        case .endQuorumEpochResponse: return "end-epoch-response"
        case .fetch: return "fetch"
        case .fetchResponse: return "fetch-response"
        case .fetchSnapshot: return "fetch-snapshot"
        case .fetchSnapshotResponse: return "fetch-snapshot-response"
        }
    }

    static func describe(_ m: RaftMessage) -> String {
        switch m {
        case let .vote(v):
            return "\(v.preVote ? "PreVote" : "Vote") epoch=\(v.candidateEpoch) candidate=\(v.candidateId) last=\(v.lastOffset)@\(v.lastOffsetEpoch)"
        case let .voteResponse(v):
            return "\(v.preVote ? "PreVote" : "Vote")Response \(v.voteGranted ? "granted" : "refused") epoch=\(v.leaderEpoch) leader=\(v.leaderId)\(v.errorCode != 0 ? " error=\(v.errorCode)" : "")"
        case let .beginQuorumEpoch(b): return "BeginQuorumEpoch epoch=\(b.leaderEpoch) leader=\(b.leaderId)"
        case let .beginQuorumEpochResponse(e): return "BeginQuorumEpochResponse epoch=\(e.leaderEpoch) leader=\(e.leaderId)\(e.errorCode != 0 ? " error=\(e.errorCode)" : "")"
        case let .endQuorumEpoch(e): return "EndQuorumEpoch epoch=\(e.leaderEpoch) leader=\(e.leaderId) successors=\(e.preferredSuccessors)"
        case let .endQuorumEpochResponse(e): return "EndQuorumEpochResponse epoch=\(e.leaderEpoch) leader=\(e.leaderId)"
        case let .fetch(f): return "Fetch epoch=\(f.currentLeaderEpoch) offset=\(f.fetchOffset) lastEpoch=\(f.lastFetchedEpoch)"
        case let .fetchResponse(f):
            var s = "FetchResponse epoch=\(f.leaderEpoch) leader=\(f.leaderId) hw=\(f.highWatermark)"
            if f.errorCode != 0 { s += " error=\(f.errorCode)" }
            if f.divergingEpoch >= 0 || f.divergingEndOffset >= 0 { s += " diverging=\(f.divergingEndOffset)@\(f.divergingEpoch)" }
            if let snap = f.snapshotId { s += " snapshot=\(snap)" }
            if f.records.readableBytes > 0 { s += " records=\(batchesText(f.records))" }
            return s
        case let .fetchSnapshot(f): return "FetchSnapshot epoch=\(f.currentLeaderEpoch) snapshot=\(f.snapshotId) position=\(f.position)"
        case let .fetchSnapshotResponse(f):
            return "FetchSnapshotResponse epoch=\(f.leaderEpoch) snapshot=\(f.snapshotId) position=\(f.position) bytes=\(f.bytes.readableBytes)/\(f.size)\(f.errorCode != 0 ? " error=\(f.errorCode)" : "")"
        }
    }

    /// Batches as `[base-last@epoch]`.
    static func batchesText(_ bytes: ByteBuffer) -> String {
        var parts: [String] = []
        for item in RecordBatchReader(bytes) {
            guard case let .batch(b, _) = item else { break }
            parts.append(b.baseOffset == b.lastOffset ? "\(b.baseOffset)@\(b.partitionLeaderEpoch)" : "\(b.baseOffset)-\(b.lastOffset)@\(b.partitionLeaderEpoch)")
        }
        return "[" + parts.joined(separator: " ") + "]"
    }

    static func logText(_ log: MemoryRaftLog) -> String {
        let entries = log.entries.map { $0.baseOffset == $0.lastOffset ? "\($0.baseOffset)@\($0.epoch)" : "\($0.baseOffset)-\($0.lastOffset)@\($0.epoch)" }
        var s = "[" + entries.joined(separator: " ") + "]"
        if log.startOffset > 0 { s = "start=\(log.startOffset) " + s }
        if let snap = log.latestSnapshotId { s += " snapshot=\(snap)" }
        return s
    }
}
