import FjordMetadata
import FjordRaftRuntime
import FjordRecords
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Follows the committed metadata log: reads each newly committed batch, replays its
/// records into the `MetadataImage` (the same replay the controller uses), and publishes
/// the new image to the node's components. Runs on the Raft runtime's loop.
public final class MetadataPublisher: @unchecked Sendable {
    let raft: RaftRuntime
    let logger: Logger
    private let lock = NIOLock()
    private var _image = MetadataImage()
    /// The next offset to read (every record below it is in the image).
    private var _nextOffset: Int64 = 0
    private var listeners: [@Sendable (MetadataImage) -> Void] = []

    public init(raft: RaftRuntime, logger: Logger) {
        self.raft = raft
        self.logger = logger
    }

    /// The latest committed image.
    public var image: MetadataImage { lock.withLock { _image } }
    /// Offset of the next record to apply: what a broker reports as its metadata offset + 1.
    public var nextOffset: Int64 { lock.withLock { _nextOffset } }

    /// `body` runs on the Raft loop after each published change.
    public func subscribe(_ body: @escaping @Sendable (MetadataImage) -> Void) {
        lock.withLock { listeners.append(body) }
    }

    /// Applies everything committed below `highWatermark`. Called on the Raft loop.
    func catchUp(to highWatermark: Int64) {
        var image = lock.withLock { _image }
        var next = lock.withLock { _nextOffset }
        let start = next
        var changed = false
        do {
            while next < highWatermark {
                let bytes = try raft.readCommitted(from: next, maxBytes: 1 << 20)
                if bytes.readableBytes == 0 { break }
                var progressed = false
                for item in RecordBatchReader(bytes) {
                    guard case let .batch(batch, _) = item else { break }
                    if batch.lastOffset < next { continue }
                    if batch.baseOffset >= highWatermark { break }
                    if !batch.isControl {
                        try batch.forEachRecord { record in
                            guard record.offset >= next, record.offset < highWatermark, let value = record.value else { return }
                            let r = try MetadataRecord.decode(value)
                            image.replay(r, offset: record.offset)
                            changed = true
                        }
                    }
                    next = batch.lastOffset + 1
                    progressed = true
                }
                if !progressed { break }
            }
        } catch {
            // A committed record this build cannot read: stop applying rather than serve a
            // wrong image; the node keeps running so operators can see the log line.
            logger.critical("cannot apply committed metadata record", metadata: ["offset": "\(next)", "error": "\(error)"])
        }
        guard next != start else { return }
        let subs = lock.withLock { () -> [@Sendable (MetadataImage) -> Void] in
            _image = image
            _nextOffset = next
            return listeners
        }
        if changed {
            for s in subs { s(image) }
        }
    }
}
