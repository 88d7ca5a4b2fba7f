import FjordProtocol
import FjordRecords
import FjordStorage
import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A request whose outcome the client can only learn from its connection closing (Kafka
/// closes the connection when an `acks=0` produce fails).
public struct ConnectionClosingError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// TEST-ONLY FAULT HOOK for the fault-injection suite (`faults/`, issue #9): with
/// `FJORD_INJECT_BUG=ack-before-replication` in the environment, acks=all produces are answered
/// right after the leader's local append instead of waiting for the high watermark — a
/// deliberate durability bug that `faults/run --expect-violation` must catch as lost acked
/// writes. Read once (on the first produce, with a loud warning); never set it otherwise.
let injectAckBeforeReplication: Bool = {
    guard let v = getenv("FJORD_INJECT_BUG"), String(cString: v) == "ack-before-replication" else { return false }
    let warning = "WARNING: FJORD_INJECT_BUG=ack-before-replication is set: acks=all produces are acknowledged BEFORE replication; acknowledged writes WILL be lost. Test-only fault hook, never use it outside faults/.\n"
    _ = warning.withCString { write(2, $0, strlen($0)) }
    return true
}()

extension ReplicaManager {
    /// How long after a failed write (I/O error) a partition refuses produce requests with
    /// KAFKA_STORAGE_ERROR before it tries its log again (see `Partition.storageRecentlyFailed`).
    static let storageFailureBackoffMs: Int64 = 1000

    /// Produce: appends each partition's batches on its leader; acks=0/1 answer after the
    /// append, acks=all once the high watermark passes the last offset (or the timeout).
    /// Returns nil for acks=0 (no response).
    public func produce(_ r: ProduceRequest, version: Int16, on loop: EventLoop, origin: AppendOrigin = .client) -> EventLoopFuture<ProduceResponse?> {
        let now = clock()
        var resp = ProduceResponse()
        guard r.acks == -1 || r.acks == 0 || r.acks == 1 else {
            resp.responses = r.topicData.map { t in
                var tr = ProduceResponse.TopicProduceResponse()
                tr.name = t.name
                tr.partitionResponses = t.partitionData.map { p in
                    var pr = ProduceResponse.PartitionProduceResponse()
                    pr.index = p.index
                    pr.errorCode = ErrorCode.invalidRequiredAcks.rawValue
                    return pr
                }
                return tr
            }
            return loop.makeSucceededFuture(resp)
        }
        // (topic index, partition index) → what to wait for.
        var waits: [(t: Int, p: Int, partition: Partition, lastOffset: Int64)] = []
        var leaderHints: Set<Int32> = []
        for (ti, t) in r.topicData.enumerated() {
            var tr = ProduceResponse.TopicProduceResponse()
            tr.name = t.name
            for p in t.partitionData {
                var pr = ProduceResponse.PartitionProduceResponse()
                pr.index = p.index
                let tp = TopicPartition(t.name, p.index)
                if origin == .client, t.name == "__consumer_offsets" {
                    // Internal topics are written by their coordinators only.
                    pr.errorCode = ErrorCode.invalidTopicException.rawValue
                    pr.errorMessage = "Cannot append to internal topic \(t.name)"
                    tr.partitionResponses.append(pr)
                    continue
                }
                guard let part = partition(tp), part.isLeader, sessionIsCurrent() else {
                    let known = currentImage.topics[t.name]?.partitions[p.index] != nil
                    pr.errorCode = known ? ErrorCode.notLeaderOrFollower.rawValue : ErrorCode.unknownTopicOrPartition.rawValue
                    if known && version >= 10 {  // the hint is a v10+ tagged field
                        let hint = leaderHint(tp)
                        pr.currentLeader.leaderId = hint.leaderId
                        pr.currentLeader.leaderEpoch = hint.leaderEpoch
                        if hint.leaderId >= 0 { leaderHints.insert(hint.leaderId) }
                    }
                    tr.partitionResponses.append(pr)
                    continue
                }
                let st = part.state
                let minIsr = minInsyncReplicas(t.name)
                if r.acks == -1, Int32(st.isr.count) < minIsr {
                    pr.errorCode = ErrorCode.notEnoughReplicas.rawValue
                    pr.errorMessage = "The size of the current ISR \(st.isr) is insufficient to satisfy the min.isr requirement of \(minIsr) for partition \(tp)"
                    tr.partitionResponses.append(pr)
                    continue
                }
                guard let records = p.records, records.readableBytes > 0 else {
                    pr.errorCode = ErrorCode.invalidRecord.rawValue
                    pr.errorMessage = "Produce request for \(tp) has no records"
                    tr.partitionResponses.append(pr)
                    continue
                }
                if records.readableBytes > Int(config.messageMaxBytes) + 12 {
                    // A batch larger than message.max.bytes (topics may lower it further; the
                    // log checks max.message.bytes per batch).
                    pr.errorCode = ErrorCode.messageTooLarge.rawValue
                }
                if part.storageRecentlyFailed(nowMs: now, backoffMs: Self.storageFailureBackoffMs) {
                    pr.errorCode = ErrorCode.kafkaStorageError.rawValue
                    pr.errorMessage = "The log of \(tp) failed to write less than \(Self.storageFailureBackoffMs) ms ago (is the disk full?)"
                    pr.baseOffset = -1
                    tr.partitionResponses.append(pr)
                    continue
                }
                do {
                    guard pr.errorCode == 0 else { throw LogAppendError(.messageTooLarge, "The request included a message larger than the max message size the server will accept.") }
                    let info = try part.log.appendAsLeader(records, leaderEpoch: st.leaderEpoch, nowMs: now, origin: origin)
                    pr.baseOffset = info.firstOffset
                    pr.logAppendTimeMs = info.logAppendTime
                    pr.logStartOffset = info.logStartOffset
                    part.maybeIncrementHighWatermark()
                    part.notifyWaiters()
                    if r.acks == -1 { waits.append((ti, tr.partitionResponses.count, part, info.lastOffset)) }
                } catch let e as LogAppendError {
                    pr.errorCode = e.code.rawValue
                    pr.errorMessage = e.message
                    pr.baseOffset = -1
                    switch e.code {
                    case .outOfOrderSequenceNumber, .duplicateSequenceNumber, .unknownProducerId, .invalidProducerEpoch:
                        // A producer and this leader disagree about its sequences: rare, and
                        // what an idempotent client does next (bump its epoch) depends on it.
                        logger.info("produce refused", metadata: ["partition": "\(tp)", "error": "\(e.code)", "reason": "\(e.message)"])
                    default:
                        break
                    }
                } catch {
                    part.noteStorageFailure(nowMs: now)
                    logDirHealth.noteFailure(error, nowMs: now)
                    pr.errorCode = ErrorCode.kafkaStorageError.rawValue
                    pr.errorMessage = "\(error)"
                    pr.baseOffset = -1
                    logger.error("append failed", metadata: ["partition": "\(tp)", "error": "\(error)"])
                }
                tr.partitionResponses.append(pr)
            }
            resp.responses.append(tr)
        }
        if version >= 10 {
            resp.nodeEndpoints = nodeEndpoints(leaderHints).map { id, host, port, rack in
                var e = ProduceResponse.NodeEndpoint()
                e.nodeId = id
                e.host = host
                e.port = port
                e.rack = rack
                return e
            }
        }
        if r.acks == 0 {
            // No response to carry an error: close the connection instead, as Kafka does, so
            // the client refreshes its metadata rather than keep sending to a wrong broker.
            let failed = resp.responses.flatMap { t in
                t.partitionResponses.filter { $0.errorCode != 0 }.map { "\(t.name)-\($0.index): \(ErrorCode(rawValue: $0.errorCode).map { "\($0)" } ?? "\($0.errorCode)")" }
            }
            if !failed.isEmpty { return loop.makeFailedFuture(ConnectionClosingError(reason: "acks=0 produce failed for \(failed.joined(separator: ", "))")) }
            return loop.makeSucceededFuture(nil)
        }
        if waits.isEmpty || injectAckBeforeReplication { return loop.makeSucceededFuture(resp) }
        // acks=all: a delayed produce, completed by high-watermark changes or the timeout.
        let promise = loop.makePromise(of: ProduceResponse?.self)
        let op = DelayedProduce(resp: resp, waits: waits, promise: promise, version: version, minIsr: { self.minInsyncReplicas($0) })
        op.arm(loop: loop, timeoutMs: Int64(max(0, r.timeoutMs)))
        return promise.futureResult
    }

    func nodeEndpoints(_ ids: Set<Int32>) -> [(Int32, String, Int32, String?)] {
        let img = currentImage
        return ids.sorted().compactMap { id in
            guard let b = img.brokers[id], let e = b.endpoints.first else { return nil }
            return (id, e.host, Int32(e.port), b.rack)
        }
    }
}

/// An acks=all produce waiting for the high watermark of its partitions.
final class DelayedProduce: @unchecked Sendable {
    private let lock = NIOLock()
    private var resp: ProduceResponse
    private let waits: [(t: Int, p: Int, partition: Partition, lastOffset: Int64)]
    private let promise: EventLoopPromise<ProduceResponse?>
    private let minIsr: (String) -> Int32
    /// The request version (the leader hint exists from v10).
    private let version: Int16
    private var done = false
    private var waiterIds: [Int] = []
    private var timeout: Scheduled<Void>?

    init(resp: ProduceResponse, waits: [(t: Int, p: Int, partition: Partition, lastOffset: Int64)],
         promise: EventLoopPromise<ProduceResponse?>, version: Int16, minIsr: @escaping (String) -> Int32) {
        self.version = version
        self.resp = resp
        self.waits = waits
        self.promise = promise
        self.minIsr = minIsr
    }

    func arm(loop: EventLoop, timeoutMs: Int64) {
        // Often complete at once (one replica, or followers already caught up): then no
        // waiters and no timer.
        if check(timedOut: false) { return }
        lock.withLock {
            waiterIds = waits.map { w in w.partition.addWaiter { self.check(timedOut: false) } }
            timeout = loop.scheduleTask(in: .milliseconds(timeoutMs)) { self.check(timedOut: true) }
        }
        check(timedOut: false)
    }

    /// Completes the produce if every partition is done (or `timedOut`); whether this call did.
    @discardableResult
    private func check(timedOut: Bool) -> Bool {
        let result: ProduceResponse? = lock.withLock {
            guard !done else { return nil }
            var complete = true
            var r = resp
            for w in waits {
                let st = w.partition.state
                var pr = r.responses[w.t].partitionResponses[w.p]
                if !st.isLeader {
                    pr.errorCode = ErrorCode.notLeaderOrFollower.rawValue
                    if version >= 10 {
                        pr.currentLeader.leaderId = st.leaderId
                        pr.currentLeader.leaderEpoch = st.leaderEpoch
                    }
                } else if w.partition.log.highWatermark > w.lastOffset {
                    let need = minIsr(w.partition.topicPartition.topic)
                    if Int32(st.isr.count) < need {
                        pr.errorCode = ErrorCode.notEnoughReplicasAfterAppend.rawValue
                        pr.errorMessage = "The ISR \(st.isr) shrank below min.insync.replicas \(need) after the append"
                    }
                } else if timedOut {
                    pr.errorCode = ErrorCode.requestTimedOut.rawValue
                } else {
                    complete = false
                }
                r.responses[w.t].partitionResponses[w.p] = pr
            }
            guard complete else { return nil }
            done = true
            timeout?.cancel()
            return r
        }
        guard let result else { return false }
        for (w, id) in zip(waits, lock.withLock { waiterIds }) { w.partition.removeWaiter(id) }
        promise.succeed(result)
        return true
    }
}
