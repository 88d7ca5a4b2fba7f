/// One entry of the leader epoch cache: `epoch` started at `startOffset`.
public struct EpochEntry: Equatable, Sendable, CustomStringConvertible {
    public var epoch: Int32
    public var startOffset: Int64

    public init(epoch: Int32, startOffset: Int64) {
        self.epoch = epoch
        self.startOffset = startOffset
    }

    public var description: String { "EpochEntry(epoch=\(epoch), startOffset=\(startOffset))" }
}

/// Which leader epoch started at which offset (Kafka's `LeaderEpochFileCache`), persisted in
/// `leader-epoch-checkpoint` (``CheckpointFile`` with `epoch startOffset` lines).
///
/// Followers and KRaft voters use it to find where their log diverges from the leader's:
/// ``endOffset(for:logEndOffset:)`` answers OffsetForLeaderEpoch. A value type: the
/// `PartitionLog` owning it changes it only under its lock, together with the log, and hands
/// out copies.
public struct LeaderEpochCache: Sendable {
    public static let fileName = "leader-epoch-checkpoint"
    /// Epoch entries, both epochs and start offsets strictly increasing.
    public private(set) var entries: [EpochEntry] = []
    let path: String?

    /// Loads the cache of a partition directory (or an in-memory cache with `dir` nil).
    public init(dir: String?) throws {
        path = dir.map { $0 + "/" + Self.fileName }
        guard let path else { return }
        for l in try CheckpointFile.read(path) ?? [] {
            let p = l.split(separator: " ")
            guard p.count == 2, let e = Int32(p[0]), let o = Int64(p[1]), e >= 0, o >= 0 else {
                throw StorageError("malformed line '\(l)' in \(path)")
            }
            entries.append(EpochEntry(epoch: e, startOffset: o))
        }
    }

    public var latestEpoch: Int32? { entries.last?.epoch }

    /// Records that `epoch` starts at `startOffset`, as Kafka's `assign`: nothing changes if
    /// `epoch` is the latest epoch and does not move its start back; otherwise entries that
    /// would break monotonicity (epoch ≥ `epoch` or start ≥ `startOffset`) are removed from
    /// the end first. Returns the removed entries that conflicted (for a warning): entries
    /// other than one with the same start offset, whose epoch simply had no data.
    @discardableResult
    mutating func assign(epoch: Int32, startOffset: Int64) throws -> [EpochEntry] {
        guard epoch >= 0, startOffset >= 0 else {
            throw StorageError("invalid leader epoch entry (epoch \(epoch), start offset \(startOffset))")
        }
        if let last = entries.last, last.epoch == epoch, startOffset >= last.startOffset { return [] }
        var removed: [EpochEntry] = []
        while let last = entries.last, last.epoch >= epoch || last.startOffset >= startOffset {
            removed.insert(entries.removeLast(), at: 0)
        }
        entries.append(EpochEntry(epoch: epoch, startOffset: startOffset))
        try persist()
        if removed.count == 1 && removed[0].startOffset == startOffset { return [] }
        return removed
    }

    /// The epoch of the record at `offset`, if known.
    public func epoch(forOffset offset: Int64) -> Int32? {
        entries.last(where: { $0.startOffset <= offset })?.epoch
    }

    /// OffsetForLeaderEpoch (KIP-101, KIP-279), with Kafka's exact answers:
    /// - the latest epoch → (epoch, `logEndOffset`);
    /// - an older epoch → the largest known epoch ≤ it, ending where the next known epoch
    ///   starts;
    /// - an epoch older than every known one → (the requested epoch, the first known epoch's
    ///   start offset): its data is gone, replicate from there;
    /// - -1, an epoch newer than the latest, or an empty cache → (-1, -1) (undefined).
    public func endOffset(for epoch: Int32, logEndOffset: Int64) -> (epoch: Int32, endOffset: Int64) {
        let undefined: (Int32, Int64) = (-1, -1)
        guard epoch >= 0, let latest = entries.last else { return undefined }
        if latest.epoch == epoch { return (epoch, logEndOffset) }
        guard let higher = entries.firstIndex(where: { $0.epoch > epoch }) else { return undefined }
        if higher == 0 { return (epoch, entries[0].startOffset) }
        return (entries[higher - 1].epoch, entries[higher].startOffset)
    }

    /// Removes epochs that start at or after `offset` (log truncated to `offset`).
    mutating func truncate(fromEnd offset: Int64) throws {
        let before = entries.count
        entries.removeAll { $0.startOffset >= offset }
        if entries.count != before { try persist() }
    }

    /// Log start moved to `offset`: the epoch covering it now starts there; older ones go.
    mutating func truncate(fromStart offset: Int64) throws {
        guard let covering = entries.lastIndex(where: { $0.startOffset <= offset }) else { return }
        if covering == 0 && entries[0].startOffset == offset { return }
        let e = entries[covering].epoch
        entries.removeFirst(covering + 1)
        entries.insert(EpochEntry(epoch: e, startOffset: offset), at: 0)
        try persist()
    }

    mutating func clear() throws {
        entries.removeAll()
        try persist()
    }

    private func persist() throws {
        guard let path else { return }
        try CheckpointFile.write(path, lines: entries.map { "\($0.epoch) \($0.startOffset)" })
    }
}
