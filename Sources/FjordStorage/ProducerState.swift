import FjordProtocol
import FjordRecords

/// What the producer state remembers of one appended batch (Kafka's `BatchMetadata`): its
/// sequence range, where it landed, and its max timestamp. A retried batch is recognised by
/// its sequence range, and answered with these offsets.
public struct ProducerBatchMetadata: Sendable, Equatable, CustomStringConvertible {
    public var firstSequence: Int32
    public var lastSequence: Int32
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// The batch's max timestamp as stored (the append time on LogAppendTime topics).
    public var maxTimestamp: Int64

    public init(firstSequence: Int32, lastSequence: Int32, firstOffset: Int64, lastOffset: Int64, maxTimestamp: Int64) {
        self.firstSequence = firstSequence
        self.lastSequence = lastSequence
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.maxTimestamp = maxTimestamp
    }

    public var description: String {
        "seq \(firstSequence)...\(lastSequence) at offsets \(firstOffset)...\(lastOffset)"
    }
}

/// One producer's state in a partition (Kafka's `ProducerStateEntry`): its epoch and the
/// last ``ProducerStateEntry/maxCachedBatches`` batches it appended in that epoch.
public struct ProducerStateEntry: Sendable, Equatable {
    /// Idempotent producers may have at most 5 requests in flight
    /// (`max.in.flight.requests.per.connection`), so a retry is always among the last 5.
    public static let maxCachedBatches = 5

    public var producerId: Int64
    public var producerEpoch: Int16
    /// The last batches with sequence numbers of this epoch, oldest first (at most 5).
    public internal(set) var batches: [ProducerBatchMetadata]
    /// The last offset of the producer's latest data batch (-1 if none: e.g. only a marker).
    public var lastDataOffset: Int64
    /// The max timestamp of the producer's latest batch (for `producer.id.expiration.ms`).
    public var lastTimestamp: Int64

    public init(producerId: Int64, producerEpoch: Int16, batches: [ProducerBatchMetadata] = [],
                lastDataOffset: Int64 = -1, lastTimestamp: Int64 = -1) {
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.batches = batches
        self.lastDataOffset = lastDataOffset
        self.lastTimestamp = lastTimestamp
    }

    /// The last sequence number appended in this epoch, or -1.
    public var lastSequence: Int32 { batches.last?.lastSequence ?? RecordBatch.noSequence }

    /// The sequence the next batch of this epoch must start with (0 after `Int32.max`).
    var nextSequence: Int32 {
        guard let last = batches.last else { return 0 }
        return RecordBatch.incrementSequence(last.lastSequence, by: 1)
    }

    /// A cached batch of the same epoch with exactly this sequence range.
    func duplicate(of b: ProducerBatchInfo) -> ProducerBatchMetadata? {
        guard b.producerEpoch == producerEpoch else { return nil }
        return batches.first { $0.firstSequence == b.baseSequence && $0.lastSequence == b.lastSequence }
    }

    /// Whether `b` (same epoch) lies wholly before the oldest cached batch: a retry of a batch
    /// that was appended long ago (outside the cache window). Sequence ranges that wrap past
    /// `Int32.max` are not compared (they count as out of order).
    func isOlderThanCache(_ b: ProducerBatchInfo) -> Bool {
        guard b.producerEpoch == producerEpoch, let oldest = batches.first, let newest = batches.last,
              oldest.firstSequence <= newest.lastSequence, b.baseSequence <= b.lastSequence
        else { return false }
        return b.lastSequence < oldest.firstSequence
    }

    /// Applies a batch as it is written to the log (no checks): a different epoch starts a
    /// new history; data batches with a sequence join the cache.
    mutating func apply(_ b: ProducerBatchInfo) {
        if b.producerEpoch != producerEpoch {
            producerEpoch = b.producerEpoch
            batches.removeAll(keepingCapacity: true)
        }
        lastTimestamp = b.maxTimestamp
        guard !b.isControl else { return }
        lastDataOffset = b.lastOffset
        guard b.baseSequence >= 0 else { return }
        if batches.count == Self.maxCachedBatches { batches.removeFirst() }
        batches.append(ProducerBatchMetadata(firstSequence: b.baseSequence, lastSequence: b.lastSequence,
                                             firstOffset: b.firstOffset, lastOffset: b.lastOffset, maxTimestamp: b.maxTimestamp))
    }
}

/// The producer fields of one batch header, with the offsets the batch has (or gets) in the log.
struct ProducerBatchInfo {
    var producerId: Int64
    var producerEpoch: Int16
    var baseSequence: Int32
    var lastSequence: Int32
    var firstOffset: Int64
    var lastOffset: Int64
    var maxTimestamp: Int64
    var isControl: Bool

    init(producerId: Int64, producerEpoch: Int16, baseSequence: Int32, lastOffsetDelta: Int32,
         firstOffset: Int64, maxTimestamp: Int64, isControl: Bool) {
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.lastSequence = RecordBatch.incrementSequence(baseSequence, by: lastOffsetDelta)
        self.firstOffset = firstOffset
        self.lastOffset = firstOffset + Int64(lastOffsetDelta)
        self.maxTimestamp = maxTimestamp
        self.isControl = isControl
    }

    init(_ batch: RecordBatch) {
        self.init(producerId: batch.producerId, producerEpoch: batch.producerEpoch, baseSequence: batch.baseSequence,
                  lastOffsetDelta: batch.lastOffsetDelta, firstOffset: batch.baseOffset, maxTimestamp: batch.maxTimestamp,
                  isControl: batch.isControl)
    }
}

/// The idempotent-producer state of a partition log (Kafka's `ProducerStateManager`): per
/// producer id, the epoch and the last 5 batches, as the log up to ``mapEndOffset`` defines
/// them. Batches without a producer id are not tracked.
///
/// A value type: the owning `PartitionLog` changes it only under its lock, together with the
/// log, so the state always equals a replay of the log's batches (snapshot + replay, a leader
/// append, a follower append and a rebuild after truncation all use ``apply(_:)``).
public struct ProducerStateManager: Sendable, Equatable {
    public private(set) var producers: [Int64: ProducerStateEntry] = [:]
    /// The log offset this state covers up to (exclusive): batches below it are applied.
    public internal(set) var mapEndOffset: Int64

    public init(mapEndOffset: Int64 = 0) {
        self.mapEndOffset = mapEndOffset
    }

    init(producers: [Int64: ProducerStateEntry], mapEndOffset: Int64) {
        self.producers = producers
        self.mapEndOffset = mapEndOffset
    }

    public subscript(producerId: Int64) -> ProducerStateEntry? { producers[producerId] }

    public var count: Int { producers.count }

    /// Updates the state with a batch that is now in the log (no validation: follower
    /// appends, recovery, and leader appends after ``checkClientAppend(_:logStartOffset:)``).
    mutating func apply(_ b: ProducerBatchInfo) {
        mapEndOffset = max(mapEndOffset, b.lastOffset + 1)
        guard b.producerId >= 0 else { return }
        if producers[b.producerId] == nil {
            producers[b.producerId] = ProducerStateEntry(producerId: b.producerId, producerEpoch: b.producerEpoch)
        }
        producers[b.producerId]!.apply(b)
    }

    /// Forgets producers whose last batch is older than `expirationMs` before `nowMs`
    /// (Kafka's `producer.id.expiration.ms`). Returns how many were removed.
    @discardableResult
    mutating func removeExpired(nowMs: Int64, expirationMs: Int64) -> Int {
        let before = producers.count
        producers = producers.filter { nowMs - $0.value.lastTimestamp < expirationMs }
        return before - producers.count
    }

    /// Validates a producer's append as the leader does (KIP-98), without changing the
    /// state: the batches are checked in order, each against the state the earlier ones
    /// leave. Returns the original batch (offsets merged when the append holds several) if
    /// every batch with a producer id is a retry of one of the producer's last 5 batches; the
    /// caller then appends nothing and answers with the original offsets.
    ///
    /// - Throws: `LogAppendError` with
    ///   - `INVALID_PRODUCER_EPOCH` for an epoch older than the producer's;
    ///   - `OUT_OF_ORDER_SEQUENCE_NUMBER` for a sequence that does not follow the last one
    ///     (or a new epoch not starting at 0, or an append mixing retries and new batches);
    ///   - `UNKNOWN_PRODUCER_ID` for an unknown producer not starting at sequence 0 when the
    ///     log start has moved (its state may have been removed with the log's head), else
    ///     `OUT_OF_ORDER_SEQUENCE_NUMBER`;
    ///   - `DUPLICATE_SEQUENCE_NUMBER` for a retry older than the cached batches.
    func checkClientAppend(_ batches: [ProducerBatchInfo], logStartOffset: Int64) throws -> ProducerBatchMetadata? {
        var updated: [Int64: ProducerStateEntry] = [:]
        var duplicate: ProducerBatchMetadata? = nil
        var appended = false
        for b in batches {
            guard b.producerId >= 0, b.baseSequence >= 0 else {
                appended = true
                continue
            }
            let current = updated[b.producerId] ?? producers[b.producerId]
            if let current {
                if let d = current.duplicate(of: b) {
                    if var merged = duplicate {
                        merged.firstOffset = min(merged.firstOffset, d.firstOffset)
                        merged.lastOffset = max(merged.lastOffset, d.lastOffset)
                        merged.lastSequence = d.lastSequence
                        merged.maxTimestamp = max(merged.maxTimestamp, d.maxTimestamp)
                        duplicate = merged
                    } else {
                        duplicate = d
                    }
                    continue
                }
                try Self.checkSequence(b, against: current)
            } else if b.baseSequence != 0 {
                if logStartOffset > 0 {
                    throw LogAppendError(.unknownProducerId, "Found no record of producerId=\(b.producerId) on the broker at offset \(b.firstOffset) (log start offset \(logStartOffset)). It is possible that the last message with the producerId=\(b.producerId) has been removed due to hitting the retention limit.")
                }
                throw LogAppendError(.outOfOrderSequenceNumber, "Out of order sequence number for producer \(b.producerId) at offset \(b.firstOffset): \(b.baseSequence) (incoming seq. number), the producer is unknown (expected 0)")
            }
            var e = current ?? ProducerStateEntry(producerId: b.producerId, producerEpoch: b.producerEpoch)
            e.apply(b)
            updated[b.producerId] = e
            appended = true
        }
        if let duplicate, appended {
            throw LogAppendError(.outOfOrderSequenceNumber, "append mixes new batches with a retry of \(duplicate)")
        }
        return duplicate
    }

    private static func checkSequence(_ b: ProducerBatchInfo, against e: ProducerStateEntry) throws {
        if b.producerEpoch < e.producerEpoch {
            throw LogAppendError(.invalidProducerEpoch, "Epoch of producer \(b.producerId) at offset \(b.firstOffset) is \(b.producerEpoch), which is smaller than the last seen epoch \(e.producerEpoch)")
        }
        if b.producerEpoch > e.producerEpoch {
            if b.baseSequence != 0 {
                throw LogAppendError(.outOfOrderSequenceNumber, "Invalid sequence number for new epoch of producer \(b.producerId) at offset \(b.firstOffset): \(b.producerEpoch) (request epoch), \(b.baseSequence) (seq. number), \(e.producerEpoch) (current producer epoch)")
            }
            return
        }
        let expected = e.nextSequence
        guard b.baseSequence == expected else {
            if e.isOlderThanCache(b) {
                throw LogAppendError(.duplicateSequenceNumber, "Duplicate sequence number for producer \(b.producerId): \(b.baseSequence)...\(b.lastSequence) was appended before the cached batches (oldest \(e.batches.first!))")
            }
            throw LogAppendError(.outOfOrderSequenceNumber, "Out of order sequence number for producer \(b.producerId) at offset \(b.firstOffset) in partition: \(b.baseSequence) (incoming seq. number), \(e.lastSequence) (current end sequence number)")
        }
    }
}
