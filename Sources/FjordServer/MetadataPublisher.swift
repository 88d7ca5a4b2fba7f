import FjordMetadata
import FjordRaft
import FjordRaftRuntime
import FjordRecords
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// When a node writes a metadata snapshot and how long it keeps the log behind one, with
/// Kafka's keys and defaults.
public struct SnapshotPolicy: Sendable {
    /// `metadata.log.max.record.bytes.between.snapshots` (20 MiB).
    public var maxBytesBetweenSnapshots: Int64 = 20 * 1024 * 1024
    /// `metadata.log.max.snapshot.interval.ms` (1 hour; 0 disables the time trigger).
    public var maxIntervalMs: Int64 = 3_600_000
    /// `metadata.max.retention.bytes` (100 MiB).
    public var retentionBytes: Int64 = 100 * 1024 * 1024
    /// `metadata.max.retention.ms` (7 days).
    public var retentionMs: Int64 = 7 * 24 * 3_600_000

    public init() {}
}

/// Follows the committed metadata log: reads each newly committed batch, replays its
/// records into the `MetadataImage` (the same replay the controller uses), and publishes
/// the new image to the node's components. Runs on the Raft runtime's loop.
///
/// It also owns the node's metadata snapshots (KIP-630): it starts from the newest one,
/// reloads when the Raft core installs one fetched from the leader, and writes one of its
/// own image every `maxBytesBetweenSnapshots` of applied records (or `maxIntervalMs`), off
/// the Raft loop; the runtime then trims the log behind it per the retention settings.
public final class MetadataPublisher: RaftListener, @unchecked Sendable {
    let raft: RaftRuntime
    let logger: Logger
    let policy: SnapshotPolicy
    /// Where snapshots are encoded and written (never the Raft loop).
    let snapshotLoop: EventLoop
    /// Control records every snapshot carries (a dynamic quorum's voters).
    let control: [(ControlRecordType, ByteBuffer)]
    private let lock = NIOLock()
    private var _image = MetadataImage()
    /// The next offset to read (every record below it is in the image).
    private var _nextOffset: Int64 = 0
    private var listeners: [@Sendable (MetadataImage) -> Void] = []
    // Snapshot bookkeeping (Raft loop only).
    private var lastEpoch: Int32 = -1
    private var lastTimestamp: Int64 = 0
    private var bytesSinceSnapshot: Int64 = 0
    private var lastSnapshotMs: Int64
    private var lastSnapshotEnd: Int64 = 0
    private var snapshotInFlight = false

    public init(raft: RaftRuntime, policy: SnapshotPolicy = SnapshotPolicy(), snapshotLoop: EventLoop,
                control: [(ControlRecordType, ByteBuffer)] = [], logger: Logger) {
        self.raft = raft
        self.control = control
        self.logger = logger
        self.policy = policy
        self.snapshotLoop = snapshotLoop
        self.lastSnapshotMs = RaftRuntime.wallClockMs()
    }

    /// The latest committed image.
    public var image: MetadataImage { lock.withLock { _image } }
    /// Offset of the next record to apply: what a broker reports as its metadata offset + 1.
    public var nextOffset: Int64 { lock.withLock { _nextOffset } }

    /// `body` runs on the Raft loop after each published change.
    public func subscribe(_ body: @escaping @Sendable (MetadataImage) -> Void) {
        lock.withLock { listeners.append(body) }
    }

    static func image(of snapshot: SnapshotReader) throws -> MetadataImage {
        MetadataImage(snapshotRecords: try snapshot.values.map { try MetadataRecord.decode($0) }, endOffset: snapshot.id.endOffset)
    }

    /// A snapshot replaces the image: the node's newest at start, or one the Raft core
    /// installed from the leader (or the log behind it was trimmed). On the Raft loop.
    public func handleLoadSnapshot(_ snapshot: SnapshotReader) {
        let id = snapshot.id
        let image: MetadataImage
        do {
            image = try Self.image(of: snapshot)
        } catch {
            // A record this build cannot read: keep the old image rather than serve a wrong
            // one; the node keeps running so operators can see the log line.
            logger.critical("cannot read the metadata snapshot", metadata: ["snapshot": "\(id)", "error": "\(error)"])
            return
        }
        let subs = lock.withLock { () -> [@Sendable (MetadataImage) -> Void] in
            _image = image
            _nextOffset = id.endOffset
            return listeners
        }
        lastEpoch = id.epoch
        lastSnapshotEnd = id.endOffset
        bytesSinceSnapshot = 0
        logger.info("loaded the metadata snapshot", metadata: ["snapshot": "\(id)", "topics": "\(image.topics.count)",
                                                               "brokers": "\(image.brokers.count)"])
        for s in subs { s(image) }
    }

    /// Replays newly committed batches into the image and publishes it. On the Raft loop.
    public func handleCommit(_ batches: [CommittedBatch]) {
        var image = lock.withLock { _image }
        var next = lock.withLock { _nextOffset }
        var changed = false
        do {
            for batch in batches where batch.lastOffset >= next {
                for record in batch.records where record.offset >= next {
                    image.replay(try MetadataRecord.decode(record.value), offset: record.offset)
                    changed = true
                }
                next = batch.lastOffset + 1
                lastEpoch = batch.epoch
                lastTimestamp = batch.appendTimestamp
                bytesSinceSnapshot += Int64(batch.sizeInBytes)
            }
        } catch {
            // A committed record this build cannot read: stop applying rather than serve a
            // wrong image; the node keeps running so operators can see the log line.
            logger.critical("cannot apply committed metadata record", metadata: ["offset": "\(next)", "error": "\(error)"])
            return
        }
        let subs = lock.withLock { () -> [@Sendable (MetadataImage) -> Void] in
            _image = image
            _nextOffset = next
            return listeners
        }
        if changed {
            for s in subs { s(image) }
        }
        maybeSnapshot(image, endOffset: next)
    }

    public func handleLeaderChange(epoch: Int32, leaderId: Int32) {}

    /// Writes a snapshot of `image` (which holds every record below `endOffset`) when enough
    /// has been applied since the last one; one at a time.
    private func maybeSnapshot(_ image: MetadataImage, endOffset: Int64) {
        let now = RaftRuntime.wallClockMs()
        guard !snapshotInFlight, endOffset > lastSnapshotEnd, lastEpoch >= 0 else { return }
        let bySize = bytesSinceSnapshot >= policy.maxBytesBetweenSnapshots
        let byTime = policy.maxIntervalMs > 0 && now - lastSnapshotMs >= policy.maxIntervalMs
        guard bySize || byTime else { return }
        let id = SnapshotId(endOffset: endOffset, epoch: lastEpoch)
        snapshotInFlight = true
        bytesSinceSnapshot = 0
        lastSnapshotMs = now
        let timestamp = lastTimestamp
        let raft = self.raft
        let policy = self.policy
        let logger = self.logger
        let control = self.control
        snapshotLoop.execute {
            let started = RaftRuntime.wallClockMs()
            var written = false
            var size = 0
            do {
                let values = try image.snapshotRecords().map { try $0.encode() }
                let bytes = try SnapshotFile.encode(values, id: id, lastContainedLogTimestamp: timestamp, control: control)
                size = bytes.readableBytes
                try SnapshotFile.write(bytes, id: id, dir: raft.log.dir)
                written = true
            } catch {
                logger.error("cannot write a metadata snapshot", metadata: ["snapshot": "\(id)", "error": "\(error)"])
            }
            let (ok, bytes) = (written, size)
            raft.loop.execute {
                self.snapshotInFlight = false
                guard ok else { return }
                self.lastSnapshotEnd = id.endOffset
                logger.info("wrote a metadata snapshot", metadata: ["snapshot": "\(id)", "bytes": "\(bytes)",
                                                                    "ms": "\(RaftRuntime.wallClockMs() - started)"])
                raft.snapshotWritten(id, retentionBytes: policy.retentionBytes, retentionMs: policy.retentionMs)
            }
        }
    }
}
