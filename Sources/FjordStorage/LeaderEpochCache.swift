/// Which leader epoch started at which offset (Kafka's `LeaderEpochFileCache`), persisted in
/// `leader-epoch-checkpoint` as `0`, a count, then `epoch startOffset` lines.
///
/// Followers and KRaft voters use it to find where their log diverges from the leader's:
/// `endOffset(for:)` answers OffsetForLeaderEpoch.
public final class LeaderEpochCache: @unchecked Sendable {
    public static let fileName = "leader-epoch-checkpoint"
    public private(set) var entries: [(epoch: Int32, startOffset: Int64)] = []
    let path: String?

    /// Loads the cache of a partition directory (or an in-memory cache with `dir` nil).
    public init(dir: String?) throws {
        path = dir.map { $0 + "/" + Self.fileName }
        if let path, FileSystem.exists(path) {
            let lines = try FileSystem.readString(path).split(separator: "\n", omittingEmptySubsequences: false)
            guard lines.count >= 2, lines[0] == "0", let n = Int(lines[1]), lines.count >= 2 + n else {
                throw StorageError("malformed leader epoch checkpoint \(path)")
            }
            for l in lines[2..<(2 + n)] {
                let p = l.split(separator: " ")
                guard p.count == 2, let e = Int32(p[0]), let o = Int64(p[1]) else {
                    throw StorageError("malformed line '\(l)' in \(path)")
                }
                entries.append((e, o))
            }
        }
    }

    public var latestEpoch: Int32? { entries.last?.epoch }

    /// Records that `epoch` starts at `startOffset` (no-op if it is not newer than the last).
    public func assign(epoch: Int32, startOffset: Int64) throws {
        if let last = entries.last {
            if epoch <= last.epoch { return }
            // An epoch never starts before the previous one: drop stale entries if it does.
            entries.removeAll { $0.startOffset >= startOffset }
        }
        entries.append((epoch, startOffset))
        try persist()
    }

    /// The epoch of the record at `offset`, if known.
    public func epoch(forOffset offset: Int64) -> Int32? {
        entries.last(where: { $0.startOffset <= offset })?.epoch
    }

    /// For OffsetForLeaderEpoch: the largest epoch ≤ `epoch` known here and the offset where
    /// it ended (the start of the next epoch, or `logEndOffset` for the latest).
    /// Returns (-1, -1) when the requested epoch is older than anything known.
    public func endOffset(for epoch: Int32, logEndOffset: Int64) -> (epoch: Int32, endOffset: Int64) {
        guard let idx = entries.lastIndex(where: { $0.epoch <= epoch }) else { return (-1, -1) }
        if idx == entries.count - 1 { return (entries[idx].epoch, logEndOffset) }
        return (entries[idx].epoch, entries[idx + 1].startOffset)
    }

    /// Removes epochs that start at or after `offset` (log truncated to `offset`).
    public func truncate(fromEnd offset: Int64) throws {
        let before = entries.count
        entries.removeAll { $0.startOffset >= offset }
        if entries.count != before { try persist() }
    }

    /// Log start moved to `offset`: the epoch covering it now starts there.
    public func truncate(fromStart offset: Int64) throws {
        guard let covering = entries.lastIndex(where: { $0.startOffset <= offset }) else { return }
        if covering == 0 && entries[0].startOffset == offset { return }
        let e = entries[covering].epoch
        entries.removeFirst(covering + 1)
        entries.insert((e, offset), at: 0)
        try persist()
    }

    public func clear() throws {
        entries.removeAll()
        try persist()
    }

    private func persist() throws {
        guard let path else { return }
        var s = "0\n\(entries.count)\n"
        for e in entries { s += "\(e.epoch) \(e.startOffset)\n" }
        try FileSystem.writeAtomically(path, contents: s)
    }
}
