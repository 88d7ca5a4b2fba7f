import FjordProtocol
import FjordStorage
import FjordWire
import NIOConcurrencyHelpers
import NIOCore

/// A follower's progress as the partition leader sees it.
struct FollowerState: Sendable {
    /// The follower's log end offset (its last fetch offset), -1 before its first fetch in this epoch.
    var logEndOffset: Int64 = -1
    var lastFetchMs: Int64 = -1
    /// The last time the follower had everything the leader had (Kafka's lastCaughtUpTimeMs).
    var lastCaughtUpMs: Int64 = -1
    /// The leader's log end offset when the follower last fetched.
    var leaderEndOffsetAtLastFetch: Int64 = -1
}

/// One partition replica on this broker: the log, the role from the metadata image, and,
/// as leader, the followers' progress, the high watermark over the ISR and the ISR changes
/// it proposes to the controller (AlterPartition). Thread-safe behind one lock.
public final class Partition: @unchecked Sendable {
    public let topicPartition: TopicPartition
    public let topicId: KafkaUUID
    public let log: PartitionLog
    let localId: Int32
    private let lock = NIOLock()

    // From the metadata image (committed state).
    private(set) var leaderId: Int32 = -1
    private(set) var leaderEpoch: Int32 = -1
    private(set) var partitionEpoch: Int32 = -1
    private(set) var replicas: [Int32] = []
    private(set) var isr: [Int32] = []
    /// An ISR proposed to the controller and not yet seen committed.
    private(set) var pendingIsr: [Int32]?
    private var followers: [Int32: FollowerState] = [:]
    /// Where this broker's leadership epoch began in the log.
    private var leaderEpochStartOffset: Int64 = 0
    /// Called (outside the lock) when the high watermark or log end moves: delayed
    /// operations re-check themselves.
    private var waiters: [Int: @Sendable () -> Void] = [:]
    private var nextWaiterId = 0
    /// After a refused or failed AlterPartition, no new proposal before this time.
    private var isrRetryAtMs: Int64 = 0
    /// When an append to this partition's log last failed on I/O (a full disk), or -1.
    private var storageFailedAtMs: Int64 = -1

    /// Records a failed append (an I/O error, not a refused batch).
    func noteStorageFailure(nowMs: Int64) { lock.withLock { storageFailedAtMs = nowMs } }

    /// Whether the log failed to write less than `backoffMs` ago. Produce requests then get
    /// KAFKA_STORAGE_ERROR without trying: a batch pipelined behind the failed one must not
    /// be checked against producer sequences (it would be OUT_OF_ORDER_SEQUENCE_NUMBER, and
    /// an idempotent client answers that by bumping its epoch and resending everything in
    /// flight, on every partition). The client retries the failed batch first, in order.
    func storageRecentlyFailed(nowMs: Int64, backoffMs: Int64) -> Bool {
        lock.withLock {
            guard storageFailedAtMs >= 0 else { return false }
            if nowMs - storageFailedAtMs < backoffMs { return true }
            storageFailedAtMs = -1
            return false
        }
    }

    init(topicPartition: TopicPartition, topicId: KafkaUUID, log: PartitionLog, localId: Int32) {
        self.topicPartition = topicPartition
        self.topicId = topicId
        self.log = log
        self.localId = localId
    }

    public struct State: Sendable {
        public var leaderId: Int32
        public var leaderEpoch: Int32
        public var partitionEpoch: Int32
        public var replicas: [Int32]
        public var isr: [Int32]
        public var isLeader: Bool
    }

    public var state: State {
        lock.withLock { State(leaderId: leaderId, leaderEpoch: leaderEpoch, partitionEpoch: partitionEpoch, replicas: replicas, isr: isr, isLeader: leaderId == localId) }
    }

    public var isLeader: Bool { lock.withLock { leaderId == localId } }

    // MARK: role changes

    /// Applies the partition's committed state. Returns whether this broker's role or the
    /// leader epoch changed.
    @discardableResult
    func update(leader: Int32, leaderEpoch epoch: Int32, partitionEpoch pe: Int32, replicas r: [Int32], isr newIsr: [Int32], nowMs: Int64) -> Bool {
        let changed: Bool = lock.withLock {
            let roleChanged = leader != leaderId || epoch != leaderEpoch
            if roleChanged, leader == localId {
                // A new leadership: followers' progress is unknown until they fetch.
                followers = [:]
                leaderEpochStartOffset = log.logEndOffset
                for f in r where f != localId {
                    followers[f] = FollowerState(lastCaughtUpMs: newIsr.contains(f) ? nowMs : -1)
                }
            }
            leaderId = leader
            leaderEpoch = epoch
            if pe > partitionEpoch || roleChanged {
                // A newer committed state supersedes any ISR change still in flight.
                partitionEpoch = pe
                isr = newIsr
                pendingIsr = nil
            } else if pe == partitionEpoch {
                isr = newIsr
            }
            replicas = r
            return roleChanged
        }
        if leader == localId { maybeIncrementHighWatermark() }
        notifyWaiters()
        return changed
    }

    // MARK: leader: appends and the high watermark

    /// The ISR the high watermark must wait for: the committed ISR plus any replica being
    /// added (an ISR shrink counts only once committed) — Kafka's "maximal ISR".
    private var maximalIsr: [Int32] {
        guard let p = pendingIsr else { return isr }
        return Array(Set(isr).union(p)).sorted()
    }

    /// Advances the high watermark to the smallest log end offset in the maximal ISR.
    /// Returns the new high watermark if it moved.
    @discardableResult
    func maybeIncrementHighWatermark() -> Int64? {
        let moved: Int64? = lock.withLock {
            guard leaderId == localId else { return nil }
            var hw = log.logEndOffset
            for id in maximalIsr where id != localId {
                let leo = followers[id]?.logEndOffset ?? -1
                if leo < 0 { return nil }
                hw = min(hw, leo)
            }
            let old = log.highWatermark
            guard hw > old else { return nil }
            log.highWatermark = hw
            return hw
        }
        if moved != nil { notifyWaiters() }
        return moved
    }

    /// Records a follower's fetch; returns whether the high watermark moved.
    func updateFollower(_ id: Int32, fetchOffset: Int64, nowMs: Int64) {
        lock.withLock {
            guard leaderId == localId, replicas.contains(id) else { return }
            var f = followers[id] ?? FollowerState()
            let leo = log.logEndOffset
            if fetchOffset >= leo {
                f.lastCaughtUpMs = nowMs
            } else if f.leaderEndOffsetAtLastFetch >= 0, fetchOffset >= f.leaderEndOffsetAtLastFetch {
                f.lastCaughtUpMs = max(f.lastCaughtUpMs, f.lastFetchMs)
            }
            f.logEndOffset = fetchOffset
            f.leaderEndOffsetAtLastFetch = leo
            f.lastFetchMs = nowMs
            followers[id] = f
        }
        maybeIncrementHighWatermark()
    }

    /// The ISR change the leader wants now, if any (and none is pending): followers that
    /// have not caught up within `lagMs` leave; followers that reached the high watermark and
    /// this epoch's start join.
    func isrChange(nowMs: Int64, lagMs: Int64, liveBrokers: Set<Int32>) -> (newIsr: [Int32], leaderEpoch: Int32, partitionEpoch: Int32)? {
        lock.withLock {
            guard leaderId == localId, pendingIsr == nil, nowMs >= isrRetryAtMs else { return nil }
            let hw = log.highWatermark
            var next = isr
            for id in isr where id != localId {
                let f = followers[id] ?? FollowerState()
                if f.lastCaughtUpMs < 0 || nowMs - f.lastCaughtUpMs > lagMs { next.removeAll { $0 == id } }
            }
            if next == isr {
                for id in replicas where id != localId && !isr.contains(id) && liveBrokers.contains(id) {
                    let f = followers[id] ?? FollowerState()
                    if f.logEndOffset >= hw, f.logEndOffset >= leaderEpochStartOffset, f.lastCaughtUpMs >= 0, nowMs - f.lastCaughtUpMs <= lagMs {
                        next.append(id)
                    }
                }
            }
            guard Set(next) != Set(isr) else { return nil }
            pendingIsr = next
            return (next, leaderEpoch, partitionEpoch)
        }
    }

    /// The controller answered an AlterPartition: adopt its state (or drop the pending
    /// change on an error, to be retried).
    func alterPartitionCompleted(isr newIsr: [Int32]?, leaderEpoch epoch: Int32, partitionEpoch pe: Int32, retryAtMs: Int64 = 0) {
        lock.withLock {
            if newIsr == nil { isrRetryAtMs = retryAtMs }
            if let newIsr, epoch == leaderEpoch, pe >= partitionEpoch {
                isr = newIsr
                partitionEpoch = pe
            }
            pendingIsr = nil
        }
        maybeIncrementHighWatermark()
        notifyWaiters()
    }

    // MARK: waiters (delayed produce and fetch)

    func addWaiter(_ body: @escaping @Sendable () -> Void) -> Int {
        lock.withLock {
            nextWaiterId += 1
            waiters[nextWaiterId] = body
            return nextWaiterId
        }
    }

    func removeWaiter(_ id: Int) {
        lock.withLock { _ = waiters.removeValue(forKey: id) }
    }

    func notifyWaiters() {
        let all = lock.withLock { Array(waiters.values) }
        for w in all { w() }
    }
}
