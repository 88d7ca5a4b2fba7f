import FjordProtocol
import FjordRecords
import FjordWire
import NIOCore

/// Producer settings, with Kafka's names and defaults (see ``init(properties:)``).
public struct ProducerConfig: Sendable {
    /// `acks`: 0, 1 or -1 (`all`).
    public var acks: Int16 = -1
    /// `linger.ms`: how long a batch may wait for more records.
    public var lingerMs: Int64 = 5
    /// `batch.size`: bytes per partition batch.
    public var batchSize: Int = 16_384
    /// `compression.type`.
    public var compression: CompressionCodec = .none
    /// `compression.<codec>.level`.
    public var compressionLevel: Int?
    /// `max.in.flight.requests.per.connection`.
    public var maxInFlightPerConnection: Int = 5
    /// `retries`.
    public var retries: Int = Int(Int32.max)
    /// `retry.backoff.ms`.
    public var retryBackoffMs: Int64 = 100
    /// `delivery.timeout.ms`: a record fails when not acknowledged this long after `send`.
    public var deliveryTimeoutMs: Int64 = 120_000
    /// `request.timeout.ms`.
    public var requestTimeoutMs: Int64 = 30_000
    /// `buffer.memory`: `send` blocks while this many bytes wait for acknowledgement.
    public var bufferMemory: Int = 32 * 1024 * 1024
    /// `max.block.ms`: how long `send` may block (buffer full, metadata).
    public var maxBlockMs: Int64 = 60_000
    /// `max.request.size`.
    public var maxRequestSize: Int = 1_048_576
    /// `enable.idempotence`; nil: on when `acks` is all (Kafka's default), off otherwise.
    public var enableIdempotence: Bool?
    /// Partitioning of records without an explicit partition.
    public var partitioner: Partitioner.Strategy = .default
    /// `allow.auto.create.topics`.
    public var allowAutoTopicCreation = true
    /// `client.id`.
    public var clientId = "fjord-producer"

    public init() {}

    /// Whether the producer is idempotent with these settings.
    public var isIdempotent: Bool { enableIdempotence ?? (acks == -1) }

    /// The keys ``init(properties:)`` understands.
    public static let knownKeys: Set<String> = [
        "acks", "linger.ms", "batch.size", "compression.type", "compression.gzip.level", "compression.lz4.level",
        "compression.zstd.level", "max.in.flight.requests.per.connection", "retries", "retry.backoff.ms",
        "delivery.timeout.ms", "request.timeout.ms", "buffer.memory", "max.block.ms", "max.request.size",
        "enable.idempotence", "partitioner.class", "allow.auto.create.topics", "client.id", "bootstrap.servers",
        "key.serializer", "value.serializer", "partitioner.ignore.keys", "send.buffer.bytes", "receive.buffer.bytes",
    ]

    /// Settings from Kafka producer properties; unknown keys are returned for a warning.
    public init(properties: [String: String]) throws {
        self.init()
        func int(_ k: String) throws -> Int? {
            guard let v = properties[k] else { return nil }
            guard let n = Int(v.trimmingCharacters(in: " ")) else {
                throw KafkaClientError.invalidArgument("invalid value '\(v)' for \(k): expected a number")
            }
            return n
        }
        if let a = properties["acks"] {
            switch a.trimmingCharacters(in: " ").lowercased() {
            case "all", "-1": acks = -1
            case "1": acks = 1
            case "0": acks = 0
            default: throw KafkaClientError.invalidArgument("invalid value '\(a)' for acks: use 0, 1 or all")
            }
        }
        if let v = try int("linger.ms") { lingerMs = Int64(max(0, v)) }
        if let v = try int("batch.size") { batchSize = max(1, v) }
        if let c = properties["compression.type"] {
            guard let codec = CompressionCodec(name: c.trimmingCharacters(in: " ")) else {
                throw KafkaClientError.invalidArgument("invalid value '\(c)' for compression.type: use none, gzip, snappy, lz4 or zstd")
            }
            compression = codec
        }
        if let l = try int("compression.\(compression.name).level") { compressionLevel = l }
        if let v = try int("max.in.flight.requests.per.connection") { maxInFlightPerConnection = max(1, v) }
        if let v = try int("retries") { retries = max(0, v) }
        if let v = try int("retry.backoff.ms") { retryBackoffMs = Int64(max(0, v)) }
        if let v = try int("delivery.timeout.ms") { deliveryTimeoutMs = Int64(max(1, v)) }
        if let v = try int("request.timeout.ms") { requestTimeoutMs = Int64(max(1, v)) }
        if let v = try int("buffer.memory") { bufferMemory = max(1024, v) }
        if let v = try int("max.block.ms") { maxBlockMs = Int64(max(0, v)) }
        if let v = try int("max.request.size") { maxRequestSize = max(1024, v) }
        if let v = properties["enable.idempotence"] {
            switch v.lowercased() {
            case "true": enableIdempotence = true
            case "false": enableIdempotence = false
            default: throw KafkaClientError.invalidArgument("invalid value '\(v)' for enable.idempotence: use true or false")
            }
        }
        if let v = properties["allow.auto.create.topics"] { allowAutoTopicCreation = v.lowercased() != "false" }
        if let v = properties["client.id"] { clientId = v }
        if let p = properties["partitioner.class"] {
            if p.hasSuffix("RoundRobinPartitioner") || p == "round-robin" { partitioner = .roundRobin }
        }
        if enableIdempotence == true && acks != -1 {
            throw KafkaClientError.invalidArgument("enable.idempotence=true requires acks=all: set acks=all or enable.idempotence=false")
        }
    }
}

/// What happened to one batch of records: its offsets or its error, and when each record was sent.
public struct DeliveryReport: Sendable {
    public var topic: String
    public var partition: Int32
    /// The offset of the first record (-1 with acks=0 or on error).
    public var baseOffset: Int64
    public var recordCount: Int
    /// nil on success.
    public var error: KafkaClientError?
    /// Monotonic nanoseconds at which each record was handed to `send`.
    public var enqueuedNs: [UInt64]
    /// Monotonic nanoseconds of the acknowledgement.
    public var completedNs: UInt64
    /// Uncompressed bytes of keys and values.
    public var payloadBytes: Int
}

/// A Kafka producer: records are batched per partition (`batch.size`, `linger.ms`), compressed,
/// sent to partition leaders with up to `max.in.flight.requests.per.connection` requests in
/// flight per broker, retried on retriable errors (idempotently, with sequence numbers, when
/// `enable.idempotence` is on), and reported batch by batch to `onDelivery`.
///
/// `send` may be called from any thread (it blocks while `buffer.memory` is used up); the
/// sender runs on the client's event loop.
public final class KafkaProducer: @unchecked Sendable {
    public let client: KafkaClient
    public let config: ProducerConfig
    private let ownsClient: Bool
    private let onDelivery: (@Sendable (DeliveryReport) -> Void)?
    /// Called (on the network thread) for every failed attempt that will be retried: the
    /// partition, the retries left and the error. The console producer prints Kafka's
    /// "Got error produce response ..., retrying" warning with it.
    private let onRetry: (@Sendable (TopicPartition, Int, KafkaClientError) -> Void)?
    private let cond = Condition()

    // State below is guarded by `cond`.
    private var topics: [String: TopicState] = [:]
    /// The state of the topic of the last send (topics never replace their state object).
    private var lastTopic: TopicState?
    private var partitioner: Partitioner
    private var bufferedBytes = 0
    /// Batches (open or closed) not yet completed.
    private var pendingBatches = 0
    private var inFlightByBroker: [Int32: Int] = [:]
    private var drainScheduled = false
    private var lingerArmed = false
    private var metadataInFlight = false
    private var lastMetadataNs: UInt64 = 0
    private var flushing = 0
    private var closed = false
    private var producerId: Int64 = -1
    private var producerEpoch: Int16 = -1
    private var backoffArmed = false

    /// The first fatal error, if any (reported to `onDelivery` as well).
    public private(set) var errorCount = 0

    final class TopicState: @unchecked Sendable {
        let name: String
        var partitions: [PartitionState]
        var available: [Int32]
        init(name: String, count: Int) {
            self.name = name
            partitions = (0..<count).map { PartitionState(TopicPartition(name, Int32($0))) }
            available = []
        }
    }

    final class PartitionState: @unchecked Sendable {
        let tp: TopicPartition
        var open: OpenBatch?
        var queue: [ProducerBatch] = []
        var inFlight = 0
        var nextSequence: Int32 = 0
        /// Idempotent retry in progress: send nothing more until in-flight batches returned.
        var recovering = false
        init(_ tp: TopicPartition) { self.tp = tp }
    }

    final class OpenBatch: @unchecked Sendable {
        var builder: RecordBatchBuilder
        let createdNs: UInt64
        var enqueuedNs: [UInt64] = []
        var bytes = 0
        var payload = 0
        init(builder: RecordBatchBuilder, createdNs: UInt64) {
            self.builder = builder
            self.createdNs = createdNs
        }
    }

    final class ProducerBatch: @unchecked Sendable {
        let tp: TopicPartition
        let batch: RecordBatch
        let count: Int
        let enqueuedNs: [UInt64]
        let createdNs: UInt64
        let bytes: Int
        let payload: Int
        let baseSequence: Int32
        var attempts = 0
        var retryAtNs: UInt64 = 0
        /// The error of the last failed attempt (named when the batch finally expires).
        var lastError: KafkaClientError?
        init(tp: TopicPartition, batch: RecordBatch, count: Int, enqueuedNs: [UInt64], createdNs: UInt64, bytes: Int,
             payload: Int, baseSequence: Int32) {
            self.tp = tp
            self.batch = batch
            self.count = count
            self.enqueuedNs = enqueuedNs
            self.createdNs = createdNs
            self.bytes = bytes
            self.payload = payload
            self.baseSequence = baseSequence
        }
    }

    /// A producer on `client` (shared), or on a client of its own when `client` is nil.
    /// Blocks for InitProducerId when idempotent.
    public init(bootstrap: [BootstrapAddress], config: ProducerConfig, client: KafkaClient? = nil,
                onDelivery: (@Sendable (DeliveryReport) -> Void)? = nil,
                onRetry: (@Sendable (TopicPartition, Int, KafkaClientError) -> Void)? = nil) throws {
        self.config = config
        self.onRetry = onRetry
        if let client {
            self.client = client
            ownsClient = false
        } else {
            self.client = KafkaClient(config: ClientConfig(bootstrap: bootstrap, clientId: config.clientId,
                                                           requestTimeoutMs: config.requestTimeoutMs))
            ownsClient = true
        }
        self.onDelivery = onDelivery
        partitioner = Partitioner(strategy: config.partitioner, stickyBytes: config.batchSize)
        if config.isIdempotent {
            do {
                let r = try self.client.send(to: .any, expecting: InitProducerIdResponse.self) { _ in
                    var r = InitProducerIdRequest()
                    r.transactionalId = nil
                    r.transactionTimeoutMs = 60_000
                    return r
                }.wait()
                if let e = KafkaClientError.check(r.errorCode, nil, context: "InitProducerId") { throw e }
                producerId = r.producerId
                producerEpoch = r.producerEpoch
            } catch {
                if ownsClient { self.client.close() }
                throw error
            }
        }
    }

    /// The producer id (idempotent producers), or -1.
    public var currentProducerId: Int64 { cond.withLock { producerId } }

    // MARK: send

    /// Queues a record. Picks the partition (explicit, murmur2 of the key, or sticky), blocks
    /// for metadata the first time a topic is used and while the buffer is full.
    /// - Throws: `KafkaClientError` for an unknown topic, a bad partition, a record larger
    ///   than `max.request.size`, or `max.block.ms` passing.
    public func send(topic: String, partition: Int32? = nil, key: ByteBuffer?, value: ByteBuffer?,
                     headers: [RecordHeader] = [], timestamp: Int64? = nil) throws {
        let size = 21 + (key?.readableBytes ?? 0) + (value?.readableBytes ?? 0)
            + headers.reduce(0) { $0 + 10 + $1.key.readableBytes + ($1.value?.readableBytes ?? 0) }
        if size + RecordBatch.Layout.headerSize > config.maxRequestSize {
            throw KafkaClientError.kafka(.messageTooLarge, message: "The message is \(size) bytes when serialized which is larger than \(config.maxRequestSize), which is the value of the max.request.size configuration.", context: "send to \(topic)")
        }
        let ts = timestamp ?? Clock.wallMs()
        let startNs = Clock.monotonicNs()
        var state = cond.withLock { () -> TopicState? in
            // The topic of the last send first: no hashing of its name for every record.
            if let last = lastTopic, last.name == topic { return last }
            let s = topics[topic]
            if s != nil { lastTopic = s }
            return s
        }
        if state == nil { state = try loadTopic(topic, startNs: startNs) }
        let t = state!
        var wake = false
        var arm = false
        cond.lock()
        defer {
            cond.unlock()
            if arm { armLinger() }
            if wake { scheduleDrain() }
        }
        if closed { throw KafkaClientError.closed }
        // Wait for room in the buffer.
        if bufferedBytes + size > config.bufferMemory && bufferedBytes > 0 {
            let deadline = startNs + UInt64(config.maxBlockMs) * 1_000_000
            while bufferedBytes + size > config.bufferMemory && bufferedBytes > 0 {
                if !cond.wait(untilNs: deadline) && Clock.monotonicNs() >= deadline {
                    throw KafkaClientError.timedOut("buffer.memory (\(config.bufferMemory) bytes) stayed full for max.block.ms (\(config.maxBlockMs) ms); is the cluster reachable?")
                }
                if closed { throw KafkaClientError.closed }
            }
        }
        let count = t.partitions.count
        let p: Int32
        if let partition {
            guard partition >= 0 && Int(partition) < count else {
                throw KafkaClientError.invalidArgument("partition \(partition) is not in topic \(topic), which has \(count) partitions (0-\(count - 1))")
            }
            p = partition
        } else {
            p = partitioner.partition(topic: topic, key: key, size: size, count: count, available: t.available)
        }
        let ps = t.partitions[Int(p)]
        if let open = ps.open, open.bytes + size > config.batchSize, !open.enqueuedNs.isEmpty {
            close(ps)
            wake = true
        }
        let open: OpenBatch
        if let o = ps.open {
            open = o
        } else {
            var b = RecordBatchBuilder(codec: config.compression, compressionLevel: config.compressionLevel,
                                       initialCapacity: min(config.batchSize, max(size, 1024)) + RecordBatch.Layout.headerSize)
            b.producerId = producerId
            b.producerEpoch = producerEpoch
            open = OpenBatch(builder: b, createdNs: startNs)
            ps.open = open
            pendingBatches += 1
            if config.lingerMs == 0 {
                wake = true
            } else if !lingerArmed {
                lingerArmed = true
                arm = true
            }
        }
        open.builder.append(key: key, value: value, headers: headers, timestamp: ts)
        open.enqueuedNs.append(startNs)
        open.bytes += size
        open.payload += (key?.readableBytes ?? 0) + (value?.readableBytes ?? 0)
        bufferedBytes += size
        if open.bytes >= config.batchSize {
            close(ps)
            wake = true
        }
    }

    private func loadTopic(_ topic: String, startNs: UInt64) throws -> TopicState {
        let md: ClusterMetadata
        do {
            md = try client.awaitMetadata(topics: [topic], timeoutMs: config.maxBlockMs,
                                          allowAutoTopicCreation: config.allowAutoTopicCreation) { md in
                guard let t = md.topics[topic] else { return false }
                return t.error == nil && !t.partitions.isEmpty
            }.wait()
        } catch {
            throw error
        }
        guard let t = md.topics[topic], t.error == nil, !t.partitions.isEmpty else {
            let why = md.topics[topic]?.error.map { " (\($0.name))" } ?? ""
            throw KafkaClientError.timedOut("Topic \(topic) not present in metadata after \(config.maxBlockMs) ms\(why). Create it first (fjord topics --create --topic \(topic)) or enable auto.create.topics.enable on the brokers.")
        }
        return cond.withLock {
            if let existing = topics[topic] { return existing }
            let s = TopicState(name: topic, count: t.partitions.count)
            s.available = t.partitions.filter { $0.leader >= 0 }.map(\.partition)
            topics[topic] = s
            return s
        }
    }

    /// Closes the open batch of `ps` into its send queue (lock held).
    private func close(_ ps: PartitionState) {
        guard let open = ps.open else { return }
        ps.open = nil
        let n = open.enqueuedNs.count
        var seq: Int32 = -1
        if config.isIdempotent {
            seq = ps.nextSequence
            ps.nextSequence = RecordBatch.incrementSequence(ps.nextSequence, by: Int32(n))
            open.builder.baseSequence = seq
        }
        do {
            let batch = try open.builder.build()
            ps.queue.append(ProducerBatch(tp: ps.tp, batch: batch, count: n, enqueuedNs: open.enqueuedNs, createdNs: open.createdNs,
                                          bytes: open.bytes, payload: open.payload, baseSequence: seq))
        } catch {
            let report = DeliveryReport(topic: ps.tp.topic, partition: ps.tp.partition, baseOffset: -1, recordCount: n,
                                        error: .invalidArgument("could not build a record batch: \(error)"),
                                        enqueuedNs: open.enqueuedNs, completedNs: Clock.monotonicNs(), payloadBytes: open.payload)
            bufferedBytes -= open.bytes
            pendingBatches -= 1
            errorCount += 1
            let cb = onDelivery
            client.loop.execute { cb?(report) }
            cond.broadcast()
        }
    }

    // MARK: flush, close

    /// Sends everything queued and waits until every record is acknowledged or failed.
    /// - Throws: `timedOut` after `timeoutMs` (default: `delivery.timeout.ms` + 5 s).
    public func flush(timeoutMs: Int64? = nil) throws {
        let deadline = Clock.monotonicNs() + UInt64(timeoutMs ?? (config.deliveryTimeoutMs + 5_000)) * 1_000_000
        cond.withLock {
            flushing += 1
            for t in topics.values { for p in t.partitions where p.open != nil { close(p) } }
        }
        scheduleDrain()
        cond.lock()
        defer {
            flushing -= 1
            cond.unlock()
        }
        while pendingBatches > 0 {
            if !cond.wait(untilNs: deadline) && Clock.monotonicNs() >= deadline {
                throw KafkaClientError.timedOut("\(pendingBatches) batches still unacknowledged")
            }
        }
    }

    /// Flushes, then closes the connections (when the producer owns its client).
    public func close(timeoutMs: Int64? = nil) {
        try? flush(timeoutMs: timeoutMs)
        cond.withLock {
            closed = true
            cond.broadcast()
        }
        if ownsClient { client.close() }
    }

    /// Bytes waiting for acknowledgement.
    public var bufferedByteCount: Int { cond.withLock { bufferedBytes } }

    // MARK: the sender (on the event loop)

    private func scheduleDrain() {
        let go: Bool = cond.withLock {
            if drainScheduled { return false }
            drainScheduled = true
            return true
        }
        if go { client.loop.execute { self.drain() } }
    }

    private func armLinger() {
        let delay = config.lingerMs
        client.loop.scheduleTask(in: .milliseconds(delay)) { self.lingerFired() }
    }

    private func lingerFired() {
        let now = Clock.monotonicNs()
        let lingerNs = UInt64(config.lingerMs) * 1_000_000
        var next: UInt64? = nil
        cond.withLock {
            lingerArmed = false
            for t in topics.values {
                for p in t.partitions {
                    guard let o = p.open else { continue }
                    if o.createdNs + lingerNs <= now || flushing > 0 {
                        close(p)
                    } else {
                        let due = o.createdNs + lingerNs
                        next = min(next ?? due, due)
                    }
                }
            }
            if next != nil { lingerArmed = true }
        }
        if let n = next {
            let wait = Int64(n > now ? n - now : 0)
            client.loop.scheduleTask(in: .nanoseconds(max(wait, 100_000))) { self.lingerFired() }
        }
        drain()
    }

    private struct PendingRequest {
        var broker: Int32
        var batches: [ProducerBatch]
    }

    /// Moves ready batches into Produce requests to their leaders.
    private func drain() {
        let now = Clock.monotonicNs()
        let md = client.metadata
        var requests: [PendingRequest] = []
        var needMetadata = false
        var expired: [(ProducerBatch, KafkaClientError)] = []
        var nextRetry: UInt64? = nil
        cond.withLock {
            drainScheduled = false
            if config.lingerMs == 0 || flushing > 0 {
                for t in topics.values { for p in t.partitions where p.open != nil { close(p) } }
            }
            // Per leader: the partitions with something to send.
            var byLeader: [Int32: [PartitionState]] = [:]
            for t in topics.values {
                for p in t.partitions where !p.queue.isEmpty {
                    // Expire batches waiting too long (never sent, or between retries).
                    while let head = p.queue.first, head.createdNs + UInt64(config.deliveryTimeoutMs) * 1_000_000 <= now, p.inFlight == 0 {
                        p.queue.removeFirst()
                        let cause = head.lastError.map { " (the last attempt failed: \($0))" } ?? ""
                        expired.append((head, .timedOut("Expiring \(head.count) record(s) for \(p.tp): \(config.deliveryTimeoutMs) ms has passed since batch creation\(cause)")))
                    }
                    guard let head = p.queue.first else { continue }
                    if p.recovering && p.inFlight > 0 { continue }
                    if config.isIdempotent && p.inFlight > 0 && head.attempts > 0 { continue }
                    if head.retryAtNs > now {
                        nextRetry = min(nextRetry ?? head.retryAtNs, head.retryAtNs)
                        continue
                    }
                    guard let leader = md.leader(of: p.tp), md.brokers[leader] != nil else {
                        needMetadata = true
                        continue
                    }
                    byLeader[leader, default: []].append(p)
                }
            }
            for (leader, parts) in byLeader {
                var remaining = parts
                while !remaining.isEmpty && inFlightByBroker[leader, default: 0] < config.maxInFlightPerConnection {
                    var req = PendingRequest(broker: leader, batches: [])
                    var size = 0
                    var next: [PartitionState] = []
                    for p in remaining {
                        guard let head = p.queue.first else { continue }
                        if !req.batches.isEmpty && size + head.batch.sizeInBytes > config.maxRequestSize {
                            next.append(p)
                            continue
                        }
                        p.queue.removeFirst()
                        p.inFlight += 1
                        head.attempts += 1
                        size += head.batch.sizeInBytes
                        req.batches.append(head)
                        // An idempotent partition sends a retried batch only with nothing else in flight.
                        if let h2 = p.queue.first, h2.retryAtNs <= now, !(config.isIdempotent && (h2.attempts > 0 || p.recovering)) {
                            next.append(p)
                        }
                    }
                    if req.batches.isEmpty { break }
                    inFlightByBroker[leader, default: 0] += 1
                    requests.append(req)
                    remaining = next
                }
            }
            if needMetadata {
                let since = now &- lastMetadataNs
                if metadataInFlight || since < UInt64(min(config.retryBackoffMs, 100)) * 1_000_000 {
                    needMetadata = false
                    nextRetry = min(nextRetry ?? (now + 50_000_000), now + 50_000_000)
                } else {
                    metadataInFlight = true
                    lastMetadataNs = now
                }
            }
            if nextRetry != nil {
                if backoffArmed { nextRetry = nil } else { backoffArmed = true }
            }
        }
        for (b, e) in expired { complete(b, baseOffset: -1, error: e) }
        for r in requests { send(r) }
        if needMetadata { refreshMetadata() }
        if let n = nextRetry {
            let wait = n > now ? n - now : 0
            client.loop.scheduleTask(in: .nanoseconds(Int64(max(wait, 1_000_000)))) {
                self.cond.withLock { self.backoffArmed = false }
                self.drain()
            }
        }
    }

    private func refreshMetadata() {
        let names = cond.withLock { Array(topics.keys) }
        client.refreshMetadata(topics: names, allowAutoTopicCreation: config.allowAutoTopicCreation).whenComplete { result in
            self.cond.withLock {
                self.metadataInFlight = false
                if case let .success(md) = result {
                    for (name, t) in self.topics {
                        if let info = md.topics[name] {
                            t.available = info.partitions.filter { $0.leader >= 0 }.map(\.partition)
                        }
                    }
                }
            }
            self.client.loop.scheduleTask(in: .milliseconds(1)) { self.drain() }
        }
    }

    private func send(_ r: PendingRequest) {
        var byTopic: [String: [ProducerBatch]] = [:]
        for b in r.batches { byTopic[b.tp.topic, default: []].append(b) }
        let topicData: [ProduceRequest.TopicProduceData] = byTopic.map { topic, batches in
            var td = ProduceRequest.TopicProduceData()
            td.name = topic
            td.partitionData = batches.map { b in
                var pd = ProduceRequest.PartitionProduceData()
                pd.index = b.tp.partition
                pd.records = b.batch.buffer
                return pd
            }
            return td
        }
        let acks = config.acks
        let timeout = Int32(clamping: config.requestTimeoutMs)
        let build: @Sendable (Int16) throws -> ProduceRequest = { _ in
            var req = ProduceRequest()
            req.acks = acks
            req.timeoutMs = timeout
            req.transactionalId = nil
            req.topicData = topicData
            return req
        }
        let broker = r.broker
        client.connection(toBroker: broker).flatMap { conn -> EventLoopFuture<ProduceResponse?> in
            if acks == 0 {
                do {
                    let v = try conn.version(for: .produce)
                    let req = try build(v)
                    return conn.connection.sendWithoutResponse(req, version: v).map { nil }
                } catch {
                    return self.client.loop.makeFailedFuture(error)
                }
            }
            return conn.send(expecting: ProduceResponse.self, timeoutMs: self.config.requestTimeoutMs + 5_000, build).map { Optional($0) }
        }.whenComplete { result in
            self.handle(result, request: r)
        }
    }

    private func handle(_ result: Result<ProduceResponse?, Error>, request r: PendingRequest) {
        var outcomes: [(ProducerBatch, Int64, KafkaClientError?)] = []
        var retried: [(TopicPartition, Int, KafkaClientError)] = []
        var needMetadata = false
        let now = Clock.monotonicNs()
        cond.withLock {
            inFlightByBroker[r.broker, default: 1] -= 1
            var answers: [TopicPartition: ProduceResponse.PartitionProduceResponse] = [:]
            var failure: KafkaClientError? = nil
            switch result {
            case let .success(resp):
                if let resp {
                    for t in resp.responses { for p in t.partitionResponses { answers[TopicPartition(t.name, p.index)] = p } }
                }
            case let .failure(e):
                failure = (e as? KafkaClientError) ?? .kafka(.networkException, message: "\(e)", context: "Produce to broker \(r.broker)")
                needMetadata = true
            }
            for b in r.batches {
                let ps = topics[b.tp.topic]!.partitions[Int(b.tp.partition)]
                ps.inFlight -= 1
                var error: KafkaClientError? = failure
                var offset: Int64 = -1
                if failure == nil {
                    if case .success(.none) = result {
                        error = nil  // acks=0
                    } else if let a = answers[b.tp] {
                        if a.errorCode == ErrorCode.duplicateSequenceNumber.rawValue {
                            error = nil
                        } else {
                            error = KafkaClientError.check(a.errorCode, a.errorMessage, context: "Produce to \(b.tp)")
                        }
                        offset = a.baseOffset
                    } else {
                        error = .kafka(.unknownServerError, message: "no answer for \(b.tp)", context: "Produce")
                    }
                }
                guard let err = error else {
                    outcomes.append((b, offset, nil))
                    continue
                }
                var retriable = err.isRetriable || failure != nil
                if err.errorCode == .outOfOrderSequenceNumber {
                    // Retriable while an earlier batch of the partition is being retried.
                    let earlier = ps.queue.contains { $0.baseSequence < b.baseSequence } || ps.recovering
                    retriable = earlier
                }
                if [.notLeaderOrFollower, .leaderNotAvailable, .unknownTopicOrPartition, .fencedLeaderEpoch, .unknownLeaderEpoch,
                    .notEnoughReplicas, .notEnoughReplicasAfterAppend, .kafkaStorageError].contains(err.errorCode) {
                    needMetadata = true
                }
                let expired = b.createdNs + UInt64(config.deliveryTimeoutMs) * 1_000_000 <= now
                if retriable && b.attempts <= config.retries && !expired && !closed {
                    b.lastError = err
                    retried.append((b.tp, config.retries - b.attempts, err))
                    b.retryAtNs = now + UInt64(config.retryBackoffMs) * 1_000_000
                    let idx = config.isIdempotent ? (ps.queue.firstIndex { $0.baseSequence > b.baseSequence } ?? ps.queue.count) : 0
                    ps.queue.insert(b, at: idx)
                    if config.isIdempotent { ps.recovering = true }
                } else {
                    outcomes.append((b, -1, err))
                }
            }
            for b in r.batches {
                let ps = topics[b.tp.topic]!.partitions[Int(b.tp.partition)]
                if ps.recovering && ps.inFlight == 0 { ps.recovering = false }
            }
        }
        for (b, off, e) in outcomes { complete(b, baseOffset: off, error: e) }
        if let hook = onRetry { for (tp, left, e) in retried { hook(tp, left, e) } }
        if needMetadata {
            let go: Bool = cond.withLock {
                if metadataInFlight { return false }
                metadataInFlight = true
                lastMetadataNs = now
                return true
            }
            if go { refreshMetadata() } else { drain() }
        } else {
            drain()
        }
    }

    private func complete(_ b: ProducerBatch, baseOffset: Int64, error: KafkaClientError?) {
        let report = DeliveryReport(topic: b.tp.topic, partition: b.tp.partition, baseOffset: baseOffset, recordCount: b.count,
                                    error: error, enqueuedNs: b.enqueuedNs, completedNs: Clock.monotonicNs(), payloadBytes: b.payload)
        onDelivery?(report)
        cond.withLock {
            bufferedBytes -= b.bytes
            pendingBatches -= 1
            if error != nil { errorCount += 1 }
            cond.broadcast()
        }
    }
}
