import FjordProtocol
import FjordRecords
import FjordWire
import NIOCore

/// Where a consumer starts reading a partition.
public enum StartOffset: Sendable, Hashable {
    case earliest
    case latest
    case offset(Int64)
    /// The first offset whose timestamp is at or after this (ms).
    case timestamp(Int64)
}

/// Consumer settings with Kafka's names and defaults.
public struct ConsumerConfig: Sendable {
    /// `isolation.level`: 0 read_uncommitted, 1 read_committed.
    public var isolationLevel: Int8 = 0
    /// `fetch.max.wait.ms`.
    public var fetchMaxWaitMs: Int32 = 500
    /// `fetch.min.bytes`.
    public var fetchMinBytes: Int32 = 1
    /// `fetch.max.bytes`.
    public var fetchMaxBytes: Int32 = 52_428_800
    /// `max.partition.fetch.bytes`.
    public var maxPartitionFetchBytes: Int32 = 1_048_576
    /// `auto.offset.reset` when a position is out of range: earliest, latest, or none (fail).
    public var autoOffsetReset: StartOffset? = .latest
    /// `check.crcs`.
    public var checkCRCs = true
    /// `request.timeout.ms`.
    public var requestTimeoutMs: Int64 = 30_000
    /// `client.id`.
    public var clientId = "fjord-consumer"
    /// Fetched bytes buffered ahead of `poll` before fetching pauses.
    public var maxBufferedBytes = 64 * 1024 * 1024

    public init() {}

    /// The keys ``init(properties:)`` understands.
    public static let knownKeys: Set<String> = [
        "isolation.level", "fetch.max.wait.ms", "fetch.min.bytes", "fetch.max.bytes", "max.partition.fetch.bytes",
        "auto.offset.reset", "check.crcs", "request.timeout.ms", "client.id", "bootstrap.servers", "group.id",
        "key.deserializer", "value.deserializer", "enable.auto.commit", "auto.commit.interval.ms", "max.poll.records",
        "session.timeout.ms", "heartbeat.interval.ms", "receive.buffer.bytes",
    ]

    /// Settings from Kafka consumer properties.
    public init(properties: [String: String]) throws {
        self.init()
        func int(_ k: String) throws -> Int? {
            guard let v = properties[k] else { return nil }
            guard let n = Int(v.trimmingCharacters(in: " ")) else {
                throw KafkaClientError.invalidArgument("invalid value '\(v)' for \(k): expected a number")
            }
            return n
        }
        if let v = properties["isolation.level"] {
            switch v.lowercased() {
            case "read_uncommitted": isolationLevel = 0
            case "read_committed": isolationLevel = 1
            default: throw KafkaClientError.invalidArgument("invalid value '\(v)' for isolation.level: use read_uncommitted or read_committed")
            }
        }
        if let v = try int("fetch.max.wait.ms") { fetchMaxWaitMs = Int32(clamping: max(0, v)) }
        if let v = try int("fetch.min.bytes") { fetchMinBytes = Int32(clamping: max(0, v)) }
        if let v = try int("fetch.max.bytes") { fetchMaxBytes = Int32(clamping: max(1024, v)) }
        if let v = try int("max.partition.fetch.bytes") { maxPartitionFetchBytes = Int32(clamping: max(1024, v)) }
        if let v = properties["auto.offset.reset"] {
            switch v.lowercased() {
            case "earliest": autoOffsetReset = .earliest
            case "latest": autoOffsetReset = .latest
            case "none": autoOffsetReset = nil
            default: throw KafkaClientError.invalidArgument("invalid value '\(v)' for auto.offset.reset: use earliest, latest or none")
            }
        }
        if let v = properties["check.crcs"] { checkCRCs = v.lowercased() != "false" }
        if let v = try int("request.timeout.ms") { requestTimeoutMs = Int64(max(1, v)) }
        if let v = properties["client.id"] { clientId = v }
    }
}

/// A record read by the consumer.
public struct ConsumerRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64
    public var timestampType: TimestampType
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
    public var leaderEpoch: Int32

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Int64, timestampType: TimestampType,
                key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = [], leaderEpoch: Int32 = -1) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.timestampType = timestampType
        self.key = key
        self.value = value
        self.headers = headers
        self.leaderEpoch = leaderEpoch
    }
}

/// A consumer of assigned partitions (no group): resolves start offsets with ListOffsets,
/// keeps one Fetch in flight per leader (pipelined ahead of `poll`, bounded by
/// `maxBufferedBytes`), follows leader changes, and decodes records in `poll`.
public final class KafkaConsumer: @unchecked Sendable {
    public let client: KafkaClient
    public let config: ConsumerConfig
    private let ownsClient: Bool
    private let cond = Condition()

    // Guarded by `cond`.
    private var parts: [TopicPartition: PartitionState] = [:]
    private var chunks: [Chunk] = []
    private var bufferedBytes = 0
    private var fetching: Set<Int32> = []
    private var resolving = false
    private var metadataInFlight = false
    private var fatal: KafkaClientError?
    private var closed = false
    private var timerArmed = false
    private var lastMetadataNs: UInt64 = 0

    final class PartitionState {
        let tp: TopicPartition
        /// The next offset to fetch (loop side), nil while it must be resolved.
        var fetchPosition: Int64?
        /// The next offset `poll` delivers.
        var position: Int64?
        var reset: StartOffset
        /// Bumped on every reposition; chunks of an older generation are dropped.
        var generation = 0
        var highWatermark: Int64 = -1
        var leaderEpoch: Int32 = -1
        var retryAtNs: UInt64 = 0
        init(_ tp: TopicPartition, reset: StartOffset) {
            self.tp = tp
            self.reset = reset
        }
    }

    struct Chunk {
        let tp: TopicPartition
        let generation: Int
        let records: ByteBuffer
        let fetchOffset: Int64
    }

    public init(bootstrap: [BootstrapAddress], config: ConsumerConfig = ConsumerConfig(), client: KafkaClient? = nil) {
        self.config = config
        if let client {
            self.client = client
            ownsClient = false
        } else {
            self.client = KafkaClient(config: ClientConfig(bootstrap: bootstrap, clientId: config.clientId,
                                                           requestTimeoutMs: config.requestTimeoutMs))
            ownsClient = true
        }
    }

    public func close() {
        cond.withLock {
            closed = true
            cond.broadcast()
        }
        if ownsClient { client.close() }
    }

    // MARK: assignment

    /// The partitions of `topic` (waits up to `timeoutMs` for the topic's metadata).
    public func partitions(of topic: String, timeoutMs: Int64 = 30_000) throws -> [Int32] {
        let md = try client.awaitMetadata(topics: [topic], timeoutMs: timeoutMs) { md in
            guard let t = md.topics[topic] else { return false }
            return t.error == nil && !t.partitions.isEmpty
        }.wait()
        guard let t = md.topics[topic], t.error == nil else {
            let err = md.topics[topic]?.error
            if err == .unknownTopicOrPartition || err == nil {
                throw KafkaClientError.invalidArgument("topic '\(topic)' does not exist: create it with `fjord topics --create --topic \(topic)` or list topics with `fjord topics --list`")
            }
            throw KafkaClientError.kafka(err!, message: nil, context: "metadata for \(topic)")
        }
        return t.partitions.map(\.partition)
    }

    /// Assigns partitions with their start positions (replacing the assignment).
    public func assign(_ assignment: [TopicPartition: StartOffset]) {
        cond.withLock {
            parts = [:]
            chunks = []
            bufferedBytes = 0
            for (tp, start) in assignment {
                let s = PartitionState(tp, reset: start)
                if case let .offset(o) = start, o >= 0 {
                    s.fetchPosition = o
                    s.position = o
                }
                parts[tp] = s
            }
        }
        client.loop.execute { self.tick() }
    }

    /// The assigned partitions.
    public var assignment: [TopicPartition] { cond.withLock { parts.keys.sorted() } }

    /// The next offset `poll` returns for `tp` (nil while unresolved).
    public func position(_ tp: TopicPartition) -> Int64? { cond.withLock { parts[tp]?.position } }

    /// The next offset `poll` returns for every assigned partition with a known position
    /// (what a group commits).
    public func positions() -> [TopicPartition: Int64] {
        cond.withLock {
            var out: [TopicPartition: Int64] = [:]
            for (tp, s) in parts { if let p = s.position { out[tp] = p } }
            return out
        }
    }

    /// The last high watermark seen for `tp` (-1 before the first fetch).
    public func highWatermark(_ tp: TopicPartition) -> Int64 { cond.withLock { parts[tp]?.highWatermark ?? -1 } }

    /// Moves `tp` to `start`.
    public func seek(_ tp: TopicPartition, to start: StartOffset) {
        cond.withLock {
            guard let s = parts[tp] else { return }
            s.generation += 1
            s.reset = start
            if case let .offset(o) = start, o >= 0 {
                s.fetchPosition = o
                s.position = o
            } else {
                s.fetchPosition = nil
                s.position = nil
            }
            chunks.removeAll { $0.tp == tp }
        }
        client.loop.execute { self.tick() }
    }

    /// ListOffsets for `partitions` at `spec` (earliest, latest or a timestamp), from their leaders.
    public func listOffsets(_ partitions: [TopicPartition], at spec: StartOffset, timeoutMs: Int64 = 30_000) throws -> [TopicPartition: Int64] {
        let deadline = Clock.monotonicNs() + UInt64(timeoutMs) * 1_000_000
        var out: [TopicPartition: Int64] = [:]
        var todo = partitions
        while !todo.isEmpty {
            var md = client.metadata
            if todo.contains(where: { md.leader(of: $0) == nil }) {
                md = try client.refreshMetadata(topics: Array(Set(todo.map(\.topic)))).wait()
            }
            let results = try resolveOffsets(todo.map { ($0, spec) }, metadata: md).wait()
            var retry: [TopicPartition] = []
            for tp in todo {
                switch results[tp] {
                case let .success(o)?: out[tp] = o
                case let .failure(e)?:
                    if e.isRetriable { retry.append(tp) } else { throw e }
                case nil: retry.append(tp)
                }
            }
            todo = retry
            if !todo.isEmpty {
                if Clock.monotonicNs() >= deadline {
                    throw KafkaClientError.timedOut("ListOffsets for \(todo.map(\.description).joined(separator: ", "))")
                }
                _ = try? client.refreshMetadata(topics: Array(Set(todo.map(\.topic)))).wait()
                usleepMs(100)
            }
        }
        return out
    }

    private func usleepMs(_ ms: Int) {
        let until = Clock.monotonicNs() + UInt64(ms) * 1_000_000
        cond.withLock { while Clock.monotonicNs() < until { _ = cond.wait(untilNs: until) } }
    }

    /// Sends ListOffsets to each partition's leader; results per partition.
    private func resolveOffsets(_ items: [(TopicPartition, StartOffset)], metadata md: ClusterMetadata)
        -> EventLoopFuture<[TopicPartition: Result<Int64, KafkaClientError>]>
    {
        var byLeader: [Int32: [(TopicPartition, Int64)]] = [:]
        var out: [TopicPartition: Result<Int64, KafkaClientError>] = [:]
        for (tp, spec) in items {
            let ts: Int64
            switch spec {
            case .earliest: ts = -2
            case .latest: ts = -1
            case let .timestamp(t): ts = t
            case let .offset(o): out[tp] = .success(o); continue
            }
            guard let leader = md.leader(of: tp) else {
                out[tp] = .failure(.kafka(.leaderNotAvailable, message: nil, context: "ListOffsets \(tp)"))
                continue
            }
            byLeader[leader, default: []].append((tp, ts))
        }
        let isolation = config.isolationLevel
        let futures = byLeader.map { leader, list in
            client.send(to: .broker(leader), expecting: ListOffsetsResponse.self) { _ in
                var r = ListOffsetsRequest()
                r.replicaId = -1
                r.isolationLevel = isolation
                var byTopic: [String: [(Int32, Int64)]] = [:]
                for (tp, ts) in list { byTopic[tp.topic, default: []].append((tp.partition, ts)) }
                r.topics = byTopic.map { t, ps in
                    var x = ListOffsetsRequest.ListOffsetsTopic()
                    x.name = t
                    x.partitions = ps.map { p, ts in
                        var y = ListOffsetsRequest.ListOffsetsPartition()
                        y.partitionIndex = p
                        y.timestamp = ts
                        return y
                    }
                    return x
                }
                r.timeoutMs = 30_000
                return r
            }.map { resp -> [TopicPartition: Result<Int64, KafkaClientError>] in
                var m: [TopicPartition: Result<Int64, KafkaClientError>] = [:]
                for t in resp.topics {
                    for p in t.partitions {
                        let tp = TopicPartition(t.name, p.partitionIndex)
                        if let e = KafkaClientError.check(p.errorCode, nil, context: "ListOffsets \(tp)") {
                            m[tp] = .failure(e)
                        } else {
                            m[tp] = .success(p.offset)
                        }
                    }
                }
                return m
            }.recover { error in
                var m: [TopicPartition: Result<Int64, KafkaClientError>] = [:]
                let e = (error as? KafkaClientError) ?? .kafka(.networkException, message: "\(error)", context: "ListOffsets to broker \(leader)")
                for (tp, _) in list { m[tp] = .failure(e) }
                return m
            }
        }
        let initial = out
        return EventLoopFuture.whenAllSucceed(futures, on: client.loop).map { all in
            var merged = initial
            for m in all { merged.merge(m) { a, _ in a } }
            return merged
        }
    }

    // MARK: poll

    /// Waits up to `timeoutMs` for records; returns what arrived (possibly nothing).
    /// - Throws: a fatal error (offset out of range with `auto.offset.reset=none`, corrupt data).
    public func poll(timeoutMs: Int64, maxRecords: Int = 100_000) throws -> [ConsumerRecord] {
        let deadline = Clock.monotonicNs() + UInt64(max(0, timeoutMs)) * 1_000_000
        var taken: [Chunk] = []
        var wasPaused = false
        cond.lock()
        while chunks.isEmpty && fatal == nil && !closed {
            if !cond.wait(untilNs: deadline) && Clock.monotonicNs() >= deadline { break }
        }
        if let f = fatal {
            fatal = nil
            cond.unlock()
            throw f
        }
        wasPaused = bufferedBytes >= config.maxBufferedBytes
        taken = chunks
        chunks = []
        for c in taken { bufferedBytes -= c.records.readableBytes }
        cond.unlock()
        if wasPaused { client.loop.execute { self.tick() } }

        var out: [ConsumerRecord] = []
        var leftovers: [Chunk] = []
        for (i, c) in taken.enumerated() {
            if out.count >= maxRecords {
                leftovers.append(contentsOf: taken[i...])
                break
            }
            let (position, generation): (Int64?, Int?) = cond.withLock { (parts[c.tp]?.position, parts[c.tp]?.generation) }
            guard var pos = position, generation == c.generation else { continue }
            var reader = RecordBatchReader(c.records, verifyChecksums: config.checkCRCs)
            var full = false
            walk: while let item = reader.next() {
                switch item {
                case let .batch(batch, _):
                    if batch.nextOffset <= pos { continue }
                    if batch.isControl {
                        pos = max(pos, batch.nextOffset)
                        continue
                    }
                    do {
                        var it = try batch.makeRecordIterator()
                        while let r = try it.next() {
                            guard r.offset >= pos else { continue }
                            out.append(ConsumerRecord(topic: c.tp.topic, partition: c.tp.partition, offset: r.offset, timestamp: r.timestamp,
                                                      timestampType: batch.timestampType, key: r.key, value: r.value,
                                                      headers: Array(r.headers), leaderEpoch: batch.partitionLeaderEpoch))
                            if out.count >= maxRecords {
                                // Stop exactly after this record: the rest of the chunk stays for the next poll.
                                pos = r.offset + 1
                                full = true
                                break
                            }
                        }
                    } catch {
                        throw KafkaClientError.kafka(.corruptMessage, message: "\(error)", context: "records of \(c.tp) at offset \(batch.baseOffset)")
                    }
                    if full {
                        leftovers.append(contentsOf: taken[i...])
                        break walk
                    }
                    pos = max(pos, batch.nextOffset)
                case .truncated:
                    break walk
                case let .corrupt(position, error):
                    throw KafkaClientError.kafka(.corruptMessage, message: "\(error) at byte \(position)", context: "fetch of \(c.tp) from offset \(c.fetchOffset)")
                }
            }
            cond.withLock {
                if let s = parts[c.tp], s.generation == c.generation, let p = s.position, pos > p { s.position = pos }
            }
            if full { break }
        }
        if !leftovers.isEmpty {
            cond.withLock {
                chunks.insert(contentsOf: leftovers, at: 0)
                for c in leftovers { bufferedBytes += c.records.readableBytes }
            }
        }
        return out
    }

    // MARK: the fetch loop (on the event loop)

    private func armTimer() {
        let go: Bool = cond.withLock {
            if timerArmed || closed { return false }
            timerArmed = true
            return true
        }
        if go {
            client.loop.scheduleTask(in: .milliseconds(100)) {
                self.cond.withLock { self.timerArmed = false }
                self.tick()
            }
        }
    }

    /// Resolves positions, then sends a Fetch to every leader without one in flight.
    private func tick() {
        let md = client.metadata
        let now = Clock.monotonicNs()
        var toResolve: [(TopicPartition, StartOffset)] = []
        var fetches: [Int32: [(TopicPartition, Int64, Int32, Int)]] = [:]
        var needMetadata = false
        let stop: Bool = cond.withLock {
            if closed { return true }
            let paused = bufferedBytes >= config.maxBufferedBytes
            for s in parts.values {
                if s.retryAtNs > now { continue }
                guard let leader = md.leader(of: s.tp), md.brokers[leader] != nil else {
                    needMetadata = true
                    continue
                }
                if s.fetchPosition == nil {
                    if !resolving { toResolve.append((s.tp, s.reset)) }
                    continue
                }
                if paused || fetching.contains(leader) { continue }
                let epoch = md.topics[s.tp.topic]?.partitions.first { $0.partition == s.tp.partition }?.leaderEpoch ?? -1
                fetches[leader, default: []].append((s.tp, s.fetchPosition!, epoch, s.generation))
            }
            if !toResolve.isEmpty { resolving = true }
            for b in fetches.keys { fetching.insert(b) }
            if needMetadata {
                if metadataInFlight || now &- lastMetadataNs < 100_000_000 {
                    needMetadata = false
                } else {
                    metadataInFlight = true
                    lastMetadataNs = now
                }
            }
            return false
        }
        if stop { return }
        if needMetadata { refreshMetadata() }
        if !toResolve.isEmpty { resolve(toResolve, md) }
        for (leader, list) in fetches { fetch(from: leader, list, md) }
        armTimer()
    }

    private func refreshMetadata() {
        let (topics, stop) = cond.withLock { (Array(Set(parts.keys.map(\.topic))), closed) }
        if stop { return }
        client.refreshMetadata(topics: topics).whenComplete { _ in
            self.cond.withLock { self.metadataInFlight = false }
            self.tick()
        }
    }

    private func resolve(_ items: [(TopicPartition, StartOffset)], _ md: ClusterMetadata) {
        resolveOffsets(items, metadata: md).whenComplete { result in
            var needMetadata = false
            self.cond.withLock {
                self.resolving = false
                guard case let .success(m) = result else { return }
                for (tp, r) in m {
                    guard let s = self.parts[tp] else { continue }
                    switch r {
                    case let .success(o):
                        if s.fetchPosition == nil {
                            s.fetchPosition = o
                            s.position = o
                            s.generation += 1
                        }
                    case let .failure(e):
                        if e.isRetriable {
                            needMetadata = true
                            s.retryAtNs = Clock.monotonicNs() + 100_000_000
                        } else {
                            self.fatal = e
                            self.cond.broadcast()
                        }
                    }
                }
            }
            if needMetadata { self.client.refreshMetadata(topics: items.map(\.0.topic)).whenComplete { _ in self.tick() } } else { self.tick() }
        }
    }

    private func fetch(from leader: Int32, _ list: [(TopicPartition, Int64, Int32, Int)], _ md: ClusterMetadata) {
        let cfg = config
        var ids: [String: KafkaUUID] = [:]
        for (tp, _, _, _) in list { ids[tp.topic] = md.topics[tp.topic]?.id ?? .zero }
        let names = Dictionary(ids.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        let allHaveIds = !ids.values.contains(.zero)
        let topicIds = ids
        client.connection(toBroker: leader).flatMap { conn -> EventLoopFuture<(FetchResponse, Int16)> in
            do {
                var v = try conn.version(for: .fetch)
                if !allHaveIds { v = min(v, 12) }
                var r = FetchRequest()
                r.replicaId = -1
                r.maxWaitMs = cfg.fetchMaxWaitMs
                r.minBytes = cfg.fetchMinBytes
                r.maxBytes = cfg.fetchMaxBytes
                r.isolationLevel = cfg.isolationLevel
                r.sessionId = 0
                r.sessionEpoch = -1
                var byTopic: [String: [FetchRequest.FetchPartition]] = [:]
                for (tp, off, epoch, _) in list {
                    var p = FetchRequest.FetchPartition()
                    p.partition = tp.partition
                    p.fetchOffset = off
                    p.currentLeaderEpoch = v >= 9 ? epoch : -1
                    p.partitionMaxBytes = cfg.maxPartitionFetchBytes
                    byTopic[tp.topic, default: []].append(p)
                }
                r.topics = byTopic.map { t, ps in
                    var ft = FetchRequest.FetchTopic()
                    ft.topic = t
                    ft.topicId = topicIds[t] ?? .zero
                    ft.partitions = ps
                    return ft
                }
                let version = v
                return conn.connection.send(r, version: v, expecting: FetchResponse.self,
                                            timeoutMs: cfg.requestTimeoutMs + Int64(cfg.fetchMaxWaitMs)).map { ($0, version) }
            } catch {
                return self.client.loop.makeFailedFuture(error)
            }
        }.whenComplete { result in
            var needMetadata = false
            let now = Clock.monotonicNs()
            self.cond.withLock {
                self.fetching.remove(leader)
                switch result {
                case let .failure(e):
                    needMetadata = true
                    for (tp, _, _, _) in list { self.parts[tp]?.retryAtNs = now + 200_000_000 }
                    _ = e
                case let .success((resp, _)):
                    if resp.errorCode != 0 {
                        needMetadata = true
                        for (tp, _, _, _) in list { self.parts[tp]?.retryAtNs = now + 100_000_000 }
                        return
                    }
                    let sent = Dictionary(list.map { ($0.0, ($0.1, $0.3)) }, uniquingKeysWith: { a, _ in a })
                    for t in resp.responses {
                        let topic = t.topic.isEmpty ? (names[t.topicId] ?? "") : t.topic
                        for p in t.partitions {
                            let tp = TopicPartition(topic, p.partitionIndex)
                            guard let s = self.parts[tp], let (off, gen) = sent[tp], s.generation == gen, s.fetchPosition == off else { continue }
                            if p.errorCode != 0 {
                                let code = ErrorCode(rawValue: p.errorCode) ?? .unknownServerError
                                if code == .offsetOutOfRange {
                                    if let reset = self.config.autoOffsetReset {
                                        s.reset = reset
                                        s.fetchPosition = nil
                                        s.position = nil
                                        s.generation += 1
                                    } else {
                                        self.fatal = .kafka(code, message: "fetch offset \(off) is out of range for \(tp) and auto.offset.reset is none", context: "Fetch")
                                        self.cond.broadcast()
                                    }
                                } else if code.isRetriable || code == .unknownTopicId {
                                    needMetadata = true
                                    s.retryAtNs = now + 100_000_000
                                } else {
                                    self.fatal = .kafka(code, message: nil, context: "Fetch \(tp)")
                                    self.cond.broadcast()
                                }
                                continue
                            }
                            s.highWatermark = p.highWatermark
                            guard let records = p.records, records.readableBytes > 0 else { continue }
                            // The next fetch starts after the last complete batch.
                            var next = off
                            var reader = RecordBatchReader(records)
                            while case let .batch(b, _)? = reader.next() { next = max(next, b.nextOffset) }
                            if next == off {
                                // Only a partial batch: the partition max was too small for it.
                                continue
                            }
                            s.fetchPosition = next
                            self.chunks.append(Chunk(tp: tp, generation: s.generation, records: records, fetchOffset: off))
                            self.bufferedBytes += records.readableBytes
                            self.cond.broadcast()
                        }
                    }
                }
            }
            if needMetadata {
                let go: Bool = self.cond.withLock {
                    if self.metadataInFlight || self.closed { return false }
                    self.metadataInFlight = true
                    self.lastMetadataNs = now
                    return true
                }
                if go { self.refreshMetadata() }
            }
            self.tick()
        }
    }
}
