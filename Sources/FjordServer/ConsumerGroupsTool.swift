import FjordClient
import FjordProtocol
import FjordWire
import NIOCore
import NIOPosix

/// `fjord consumer-groups`: Kafka's `kafka-consumer-groups` (list, describe with offsets /
/// members / state, reset offsets of an inactive group, delete) over the Kafka protocol.
public final class ConsumerGroupsTool {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let bootstrap: [(String, Int)]
    let timeoutMs: Int64
    private var brokers: [Int32: (String, Int)] = [:]
    private var connections: [String: KafkaConnection] = [:]

    public init(bootstrap: String, timeoutMs: Int64 = 15_000) throws {
        self.bootstrap = bootstrap.split(separator: ",").compactMap { hp in
            guard let c = hp.lastIndex(of: ":"), let port = Int(hp[hp.index(after: c)...]) else { return nil }
            return (String(hp[..<c]), port)
        }
        guard !self.bootstrap.isEmpty else { throw Failure("--bootstrap-server must be host:port[,host:port...]") }
        self.timeoutMs = timeoutMs
    }

    deinit {
        for c in connections.values { c.close() }
        try? group.syncShutdownGracefully()
    }

    private func connection(_ host: String, _ port: Int) throws -> KafkaConnection {
        let key = "\(host):\(port)"
        if let c = connections[key], c.isActive { return c }
        let c = try KafkaConnection.connect(host: host, port: port, group: group, clientId: "fjord-consumer-groups", connectTimeoutMs: 5000).wait()
        connections[key] = c
        return c
    }

    private func anyConnection() throws -> KafkaConnection {
        var last: Error = Failure("no bootstrap server")
        for (h, p) in bootstrap {
            do { return try connection(h, p) } catch { last = error }
        }
        throw Failure("cannot reach any bootstrap server (\(bootstrap.map { "\($0.0):\($0.1)" }.joined(separator: ","))): \(last)")
    }

    private func send<R: KafkaRequest, S: KafkaResponse>(_ r: R, _ v: Int16, _ s: S.Type, to conn: KafkaConnection? = nil) throws -> S {
        try (conn ?? anyConnection()).send(r, version: v, expecting: s, timeoutMs: timeoutMs).wait()
    }

    private func metadata(topics: [String]?) throws -> MetadataResponse {
        var m = MetadataRequest()
        m.topics = topics.map { $0.map { var t = MetadataRequest.MetadataRequestTopic(); t.name = $0; return t } }
        m.allowAutoTopicCreation = false
        let resp = try send(m, 9, MetadataResponse.self)
        for b in resp.brokers { brokers[b.nodeId] = (b.host, Int(b.port)) }
        return resp
    }

    private func coordinator(_ groupId: String) throws -> (id: Int32, conn: KafkaConnection) {
        var f = FindCoordinatorRequest()
        f.key = groupId
        for _ in 0..<20 {
            let r = try send(f, 3, FindCoordinatorResponse.self)
            if r.errorCode == 0 { return (r.nodeId, try connection(r.host, Int(r.port))) }
            if r.errorCode != ErrorCode.coordinatorNotAvailable.rawValue && r.errorCode != ErrorCode.coordinatorLoadInProgress.rawValue {
                throw Failure("FindCoordinator for group '\(groupId)' failed: \(Self.name(r.errorCode))")
            }
            usleep(250_000)
        }
        throw Failure("The coordinator of group '\(groupId)' is not available.")
    }

    static func name(_ code: Int16) -> String { ErrorCode(rawValue: code)?.name ?? "error \(code)" }

    // MARK: list

    public func list(withState: Bool) throws -> [String] {
        _ = try metadata(topics: [])
        var all: [(String, String)] = []
        for (_, ep) in brokers.sorted(by: { $0.key < $1.key }) {
            guard let conn = try? connection(ep.0, ep.1) else { continue }
            var r = ListGroupsRequest()
            r.statesFilter = []
            let resp = try send(r, 4, ListGroupsResponse.self, to: conn)
            all += resp.groups.map { ($0.groupId, $0.groupState) }
        }
        all.sort { $0.0 < $1.0 }
        if withState {
            return Self.table([["GROUP", "STATE"]] + all.map { [$0.0, $0.1] }, minWidths: [15])
        }
        return all.map(\.0)
    }

    // MARK: describe

    public struct GroupView {
        public var state: String
        public var protocolName: String
        public var coordinator: Int32
        public var members: [(memberId: String, clientId: String, host: String, partitions: [(String, Int32)], groupInstanceId: String?)]
        public var committed: [String: [Int32: Int64]]
    }

    public func view(_ groupId: String) throws -> GroupView {
        let (coord, conn) = try coordinator(groupId)
        var d = DescribeGroupsRequest()
        d.groups = [groupId]
        let dr = try send(d, 5, DescribeGroupsResponse.self, to: conn)
        guard let g = dr.groups.first else { throw Failure("DescribeGroups returned nothing") }
        if g.errorCode != 0 { throw Failure("DescribeGroups for '\(groupId)' failed: \(Self.name(g.errorCode))") }
        var members: [(String, String, String, [(String, Int32)], String?)] = []
        for m in g.members {
            members.append((m.memberId, m.clientId, m.clientHost, Self.decodeAssignment(m.memberAssignment), m.groupInstanceId))
        }
        var o = OffsetFetchRequest()
        o.groupId = groupId
        o.topics = nil
        let or = try send(o, 7, OffsetFetchResponse.self, to: conn)
        if or.errorCode != 0 { throw Failure("OffsetFetch for '\(groupId)' failed: \(Self.name(or.errorCode))") }
        var committed: [String: [Int32: Int64]] = [:]
        for t in or.topics {
            for p in t.partitions where p.committedOffset >= 0 { committed[t.name, default: [:]][p.partitionIndex] = p.committedOffset }
        }
        return GroupView(state: g.groupState, protocolName: g.protocolData, coordinator: coord, members: members, committed: committed)
    }

    /// ConsumerProtocol assignment: version, [topic, [partition]], user data.
    static func decodeAssignment(_ b: ByteBuffer) -> [(String, Int32)] {
        var buf = b
        guard buf.readableBytes >= 2, buf.readInteger(as: Int16.self) != nil, let n = buf.readInteger(as: Int32.self), n >= 0 else { return [] }
        var out: [(String, Int32)] = []
        for _ in 0..<n {
            guard let len = buf.readInteger(as: Int16.self), len >= 0, let name = buf.readString(length: Int(len)),
                  let pc = buf.readInteger(as: Int32.self), pc >= 0 else { return out }
            for _ in 0..<pc {
                guard let p = buf.readInteger(as: Int32.self) else { return out }
                out.append((name, p))
            }
        }
        return out
    }

    /// Log end offsets (or earliest with -2) of the given partitions, from their leaders.
    func offsets(_ parts: [(String, Int32)], timestamp: Int64) throws -> [String: [Int32: Int64]] {
        let topics = Array(Set(parts.map(\.0))).sorted()
        guard !topics.isEmpty else { return [:] }
        let md = try metadata(topics: topics)
        var byLeader: [Int32: [(String, Int32)]] = [:]
        for t in md.topics {
            for p in t.partitions where parts.contains(where: { $0.0 == t.name && $0.1 == p.partitionIndex }) {
                byLeader[p.leaderId, default: []].append((t.name ?? "", p.partitionIndex))
            }
        }
        var out: [String: [Int32: Int64]] = [:]
        for (leader, ps) in byLeader {
            guard let ep = brokers[leader] else { continue }
            var r = ListOffsetsRequest()
            r.replicaId = -1
            r.topics = Dictionary(grouping: ps, by: \.0).map { name, list in
                var t = ListOffsetsRequest.ListOffsetsTopic()
                t.name = name
                t.partitions = list.map { var p = ListOffsetsRequest.ListOffsetsPartition(); p.partitionIndex = $0.1; p.timestamp = timestamp; return p }
                return t
            }
            let resp = try send(r, 5, ListOffsetsResponse.self, to: try connection(ep.0, ep.1))
            for t in resp.topics { for p in t.partitions where p.errorCode == 0 { out[t.name, default: [:]][p.partitionIndex] = p.offset } }
        }
        return out
    }

    public func describeOffsets(_ groupId: String) throws -> [String] {
        let v = try view(groupId)
        var lines: [String] = []
        if v.state == "Dead" && v.committed.isEmpty { throw Failure("Consumer group '\(groupId)' does not exist.") }
        if v.members.isEmpty { lines.append("Consumer group '\(groupId)' has no active members.") }
        lines.append("")
        var owner: [String: (String, String, String)] = [:]
        for m in v.members { for (t, p) in m.partitions { owner["\(t)/\(p)"] = (m.memberId, m.host, m.clientId) } }
        var parts = Set<String>()
        var list: [(String, Int32)] = []
        for (t, ps) in v.committed { for p in ps.keys where parts.insert("\(t)/\(p)").inserted { list.append((t, p)) } }
        for m in v.members { for (t, p) in m.partitions where parts.insert("\(t)/\(p)").inserted { list.append((t, p)) } }
        list.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        let ends = try offsets(list, timestamp: -1)
        var rows = [["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]]
        for (t, p) in list {
            let cur = v.committed[t]?[p]
            let end = ends[t]?[p]
            let lag = (cur != nil && end != nil) ? "\(max(0, end! - cur!))" : "-"
            let o = owner["\(t)/\(p)"]
            rows.append([groupId, t, "\(p)", cur.map { "\($0)" } ?? "-", end.map { "\($0)" } ?? "-", lag, o?.0 ?? "-", o?.1 ?? "-", o?.2 ?? "-"])
        }
        // Kafka's widths: group, topic, consumer id and host at least 15, the numbers 10/15/15/15.
        return lines + Self.table(rows, minWidths: [15, 15, 10, 15, 15, 15, 15, 15])
    }

    /// Kafka's `topic(partitions)` list of a member's assignment.
    static func assignmentText(_ partitions: [(String, Int32)]) -> String {
        if partitions.isEmpty { return "-" }
        var byTopic: [String: [Int32]] = [:]
        for (t, p) in partitions { byTopic[t, default: []].append(p) }
        return byTopic.keys.sorted().map { t in "\(t)(\(byTopic[t]!.sorted().map(String.init).joined(separator: ",")))" }.joined(separator: ",")
    }

    public func describeMembers(_ groupId: String, verbose: Bool = false) throws -> [String] {
        let v = try view(groupId)
        // As Kafka: a GROUP-INSTANCE-ID column when some member is static (KIP-345);
        // --verbose adds each member's ASSIGNMENT.
        let withInstance = v.members.contains { $0.groupInstanceId != nil }
        var header = ["GROUP", "CONSUMER-ID"] + (withInstance ? ["GROUP-INSTANCE-ID"] : []) + ["HOST", "CLIENT-ID", "#PARTITIONS"]
        if verbose { header.append("ASSIGNMENT") }
        var rows = [header]
        for m in v.members.sorted(by: { $0.memberId < $1.memberId }) {
            var row = [groupId, m.memberId] + (withInstance ? [m.groupInstanceId ?? "-"] : []) + [m.host, m.clientId, "\(m.partitions.count)"]
            if verbose { row.append(Self.assignmentText(m.partitions)) }
            rows.append(row)
        }
        let widths = [15, 15] + (withInstance ? [17] : []) + [15, 15, 15]
        return (v.members.isEmpty ? ["Consumer group '\(groupId)' has no active members."] : []) + [""] + Self.table(rows, minWidths: widths)
    }

    public func describeState(_ groupId: String) throws -> [String] {
        let v = try view(groupId)
        let ep = brokers[v.coordinator].map { "\($0.0):\($0.1)" } ?? "?"
        return [""] + Self.table([["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"],
                                  [groupId, "\(ep) (\(v.coordinator))", v.protocolName, v.state, "\(v.members.count)"]],
                                 minWidths: [15, 25, 20, 15])
    }

    // MARK: reset, delete

    public enum ResetSpec {
        case earliest, latest, offset(Int64), shiftBy(Int64), datetime(Int64)
    }

    /// Resets the offsets of an inactive group. `topics` are Kafka's `--topic` values
    /// (`t` for every partition, `t:0,2` for some); `allTopics` resets the partitions the
    /// group has committed offsets for.
    public func resetOffsets(_ groupId: String, topics: [String], allTopics: Bool = false, spec: ResetSpec, execute: Bool) throws -> [String] {
        let v = try view(groupId)
        guard v.state == "Empty" || v.state == "Dead" else {
            throw Failure("Error: Assignments can only be reset if the group '\(groupId)' is inactive, but the current state is \(v.state).")
        }
        var parts: [(String, Int32)] = []
        if allTopics {
            for (t, ps) in v.committed { for p in ps.keys { parts.append((t, p)) } }
        } else {
            var wanted: [String: Set<Int32>?] = [:]
            for arg in topics {
                let pieces = arg.split(separator: ":", maxSplits: 1).map(String.init)
                guard let name = pieces.first, !name.isEmpty else { throw Failure("--topic: expected T or T:P[,P...], got '\(arg)'") }
                if pieces.count == 2 {
                    let ps = pieces[1].split(separator: ",").map { Int32(String($0.filter { $0 != " " })) }
                    guard !ps.isEmpty, ps.allSatisfy({ $0 != nil }) else { throw Failure("--topic: expected T or T:P[,P...], got '\(arg)'") }
                    wanted[name] = Set(ps.compactMap { $0 }).union((wanted[name] ?? nil) ?? [])
                } else {
                    wanted[name] = .some(nil)
                }
            }
            let md = try metadata(topics: wanted.keys.sorted())
            for t in md.topics {
                let name = t.name ?? ""
                if t.errorCode != 0 { throw Failure("Topic '\(name)': \(Self.name(t.errorCode))") }
                let only = wanted[name] ?? nil
                for p in t.partitions where only?.contains(p.partitionIndex) ?? true { parts.append((name, p.partitionIndex)) }
                if let only, let missing = only.subtracting(t.partitions.map(\.partitionIndex)).min() {
                    throw Failure("Topic '\(name)' has no partition \(missing).")
                }
            }
        }
        parts.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        let earliest = try offsets(parts, timestamp: -2)
        let latest = try offsets(parts, timestamp: -1)
        var byTime: [String: [Int32: Int64]] = [:]
        if case let .datetime(ts) = spec { byTime = try offsets(parts, timestamp: ts) }
        var targets: [(String, Int32, Int64)] = []
        for (t, p) in parts {
            let lo = earliest[t]?[p] ?? 0, hi = latest[t]?[p] ?? 0
            var n: Int64
            switch spec {
            case .earliest: n = lo
            case .latest: n = hi
            case let .offset(o): n = o
            case let .shiftBy(s):
                // As Kafka: shifting needs a committed offset to shift from.
                guard let current = v.committed[t]?[p] else {
                    throw Failure("Error: Non-existent offsets are found for partition \(t)-\(p); --shift-by needs a committed offset.")
                }
                n = current + s
            case .datetime: n = byTime[t]?[p].flatMap { $0 >= 0 ? $0 : nil } ?? hi
            }
            n = min(max(n, lo), hi)
            targets.append((t, p, n))
        }
        if execute {
            let (_, conn) = try coordinator(groupId)
            var c = OffsetCommitRequest()
            c.groupId = groupId
            c.generationIdOrMemberEpoch = -1
            c.memberId = ""
            c.topics = Dictionary(grouping: targets, by: \.0).sorted { $0.key < $1.key }.map { name, list in
                var t = OffsetCommitRequest.OffsetCommitRequestTopic()
                t.name = name
                t.partitions = list.map { var p = OffsetCommitRequest.OffsetCommitRequestPartition(); p.partitionIndex = $0.1; p.committedOffset = $0.2; return p }
                return t
            }
            let resp = try send(c, 7, OffsetCommitResponse.self, to: conn)
            for t in resp.topics { for p in t.partitions where p.errorCode != 0 {
                throw Failure("Resetting \(t.name)-\(p.partitionIndex) failed: \(Self.name(p.errorCode))")
            } }
        }
        return [""] + Self.table([["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]] + targets.map { [groupId, $0.0, "\($0.1)", "\($0.2)"] },
                                 minWidths: [30, 30, 10])
    }

    public func delete(_ groupId: String) throws -> [String] {
        let (_, conn) = try coordinator(groupId)
        var d = DeleteGroupsRequest()
        d.groupsNames = [groupId]
        let r = try send(d, 2, DeleteGroupsResponse.self, to: conn)
        if let e = r.results.first, e.errorCode != 0 {
            let reason = e.errorCode == ErrorCode.nonEmptyGroup.rawValue ? "The group is not empty." : (e.errorCode == ErrorCode.groupIdNotFound.rawValue ? "The group id does not exist." : Self.name(e.errorCode))
            throw Failure("Deletion of some consumer groups failed:\n* Group '\(groupId)' could not be deleted due to: \(reason)")
        }
        return ["Deletion of requested consumer groups ('\(groupId)') was successful."]
    }

    /// Left-aligned columns separated by a space, each as wide as its widest cell and at
    /// least `minWidths[i]` (Kafka's layout: its format strings pad to those widths).
    static func table(_ rows: [[String]], minWidths: [Int] = []) -> [String] {
        guard let first = rows.first else { return [] }
        var w = (0..<first.count).map { $0 < minWidths.count ? minWidths[$0] : 0 }
        for r in rows { for (i, c) in r.enumerated() where i < w.count { w[i] = max(w[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c + String(repeating: " ", count: w[i] - c.count) }.joined(separator: " ")
        }
    }
}
