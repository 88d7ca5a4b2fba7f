#if canImport(Glibc)
import Glibc
#endif
import FjordRecords

/// A memory-mapped, preallocated file of fixed-size big-endian entries, kept sorted by the
/// caller — the shared machinery of the offset and time indexes (Kafka's `AbstractIndex`).
///
/// While a segment is active its index file is preallocated to `maxBytes` and mapped; the
/// number of used entries is the prefix before the trailing all-zero entries. `trim()`
/// shrinks the file to exactly the used entries (on roll and on close) so an inactive index
/// is as small as its data.
///
/// Not thread-safe, except ``flush()``: it touches only the file descriptor (never the
/// mapping), so it may run while the owner remaps the file (`trim`, `resize`).
final class MappedIndex: @unchecked Sendable {
    let path: String
    let entrySize: Int
    private(set) var entries: Int = 0
    private(set) var maxEntries: Int
    /// Stays open (and the same) for the index's lifetime, across remaps.
    private let fd: CInt
    private var base: UnsafeMutableRawPointer?
    private var mappedBytes: Int

    /// Opens or creates the index at `path`, mapping `maxBytes` (rounded down to whole entries).
    init(path: String, entrySize: Int, maxBytes: Int) throws {
        self.path = path
        self.entrySize = entrySize
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.errno("cannot open index", path) }
        self.fd = fd
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw StorageError.errno("cannot stat", path) }
        let existing = Int(st.st_size) / entrySize
        let capacity = max(existing, max(1, maxBytes / entrySize))
        self.maxEntries = capacity
        self.mappedBytes = capacity * entrySize
        self.base = nil
        if Int(st.st_size) != mappedBytes {
            guard ftruncate(fd, off_t(mappedBytes)) == 0 else { close(fd); throw StorageError.errno("cannot size index", path) }
        }
        try map()
        // Used entries: everything before the trailing zero entries (a preallocated tail,
        // left untrimmed by a crash). Entries after the first are never zero (offsets and
        // timestamps grow) and the tail is all zero, so a binary search finds the boundary:
        // a crash must not cost a scan of every preallocated byte of every index.
        var lo = 1, hi = existing  // the first zero entry lies in [lo, hi]
        if existing == 0 {
            entries = 0
        } else {
            while lo < hi {
                let mid = (lo + hi) / 2
                if isZeroEntry(mid) { hi = mid } else { lo = mid + 1 }
            }
            entries = (lo == 1 && isZeroEntry(0)) ? 0 : lo
        }
        backedBytes = entries * entrySize
    }

    deinit {
        if let base { munmap(base, mappedBytes) }
        close(fd)
    }

    private func map() throws {
        guard mappedBytes > 0 else { base = nil; return }
        let p = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else { throw StorageError.errno("cannot map index", path) }
        base = p
    }

    /// Read with `pread`, not through the mapping: on a full tmpfs, touching a hole of the
    /// mapping needs a page the filesystem cannot give, and the process dies of SIGBUS.
    private func isZeroEntry(_ i: Int) -> Bool {
        var buf = [UInt8](repeating: 0, count: entrySize)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, entrySize, off_t(i * entrySize)) }
        guard n == entrySize else { return true }
        return buf.allSatisfy { $0 == 0 }
    }

    /// Bytes of the file known to be backed by storage (written, or reserved with
    /// `posix_fallocate`): entries are only stored through the mapping below this, so a full
    /// disk is an error on append rather than a SIGBUS.
    private var backedBytes = 0
    private static let reserveChunk = 64 * 1024

    private func ensureBacked(upTo end: Int) throws {
        guard end > backedBytes else { return }
        let target = min(mappedBytes, max(end, (backedBytes / Self.reserveChunk + 1) * Self.reserveChunk))
        let r = posix_fallocate(fd, off_t(backedBytes), off_t(target - backedBytes))
        guard r == 0 else {
            throw StorageError("cannot reserve space for index \(path): \(String(cString: strerror(r))) (errno \(r))")
        }
        backedBytes = target
    }

    var isFull: Bool { entries >= maxEntries }
    var sizeInBytes: Int { entries * entrySize }

    @inline(__always)
    func readInt64(_ i: Int, _ field: Int) -> Int64 {
        Int64(bigEndian: (base! + i * entrySize + field).loadUnaligned(as: Int64.self))
    }

    @inline(__always)
    func readInt32(_ i: Int, _ field: Int) -> Int32 {
        Int32(bigEndian: (base! + i * entrySize + field).loadUnaligned(as: Int32.self))
    }

    @inline(__always)
    func writeInt64(_ i: Int, _ field: Int, _ v: Int64) {
        (base! + i * entrySize + field).storeBytes(of: v.bigEndian, as: Int64.self)
    }

    @inline(__always)
    func writeInt32(_ i: Int, _ field: Int, _ v: Int32) {
        (base! + i * entrySize + field).storeBytes(of: v.bigEndian, as: Int32.self)
    }

    /// Makes room for one more entry and returns its index (the caller writes it).
    func appendSlot() throws -> Int {
        guard entries < maxEntries else { throw StorageError("index \(path) is full (\(maxEntries) entries)") }
        try ensureBacked(upTo: (entries + 1) * entrySize)
        entries += 1
        return entries - 1
    }

    /// Keeps the first `n` entries; zeroes the rest so a reopen sees the same count.
    func truncate(toEntries n: Int) {
        let n = max(0, min(n, entries))
        if n < entries, let base {
            memset(base + n * entrySize, 0, (entries - n) * entrySize)
        }
        entries = n
    }

    /// The largest entry index `i` with `key(i) <= target`, or nil if none (binary search).
    func floorIndex(_ target: Int64, key: (Int) -> Int64) -> Int? {
        var lo = 0, hi = entries - 1
        var found: Int? = nil
        while lo <= hi {
            let mid = (lo + hi) / 2
            if key(mid) <= target { found = mid; lo = mid + 1 } else { hi = mid - 1 }
        }
        return found
    }

    /// The smallest entry index `i` with `key(i) >= target`, or nil.
    func ceilingIndex(_ target: Int64, key: (Int) -> Int64) -> Int? {
        var lo = 0, hi = entries - 1
        var found: Int? = nil
        while lo <= hi {
            let mid = (lo + hi) / 2
            if key(mid) >= target { found = mid; hi = mid - 1 } else { lo = mid + 1 }
        }
        return found
    }

    /// Makes the entries durable: `fdatasync` of the file, which on Linux writes back the
    /// pages dirtied through the shared mapping too (they are the file's page cache). Unlike
    /// `msync` it needs no valid mapping, so it is safe while the owner remaps the file.
    func flush() throws {
        guard fdatasync(fd) == 0 else { throw StorageError.errno("cannot fsync", path) }
    }

    /// Shrinks the file (and mapping) to the used entries; the index can no longer grow.
    func trim() throws {
        try resize(toBytes: entries * entrySize)
    }

    /// Remaps at a new size (at least the used entries). Dirty pages of the old mapping stay
    /// in the page cache (the mapping is shared), so nothing is lost by unmapping.
    func resize(toBytes bytes: Int) throws {
        let newBytes = max(entries, bytes / entrySize) * entrySize
        if newBytes == mappedBytes { return }
        if let base { munmap(base, mappedBytes) }
        base = nil
        guard ftruncate(fd, off_t(newBytes)) == 0 else { throw StorageError.errno("cannot resize index", path) }
        backedBytes = min(backedBytes, newBytes)
        mappedBytes = newBytes
        maxEntries = newBytes / entrySize
        try map()
    }
}

/// The sparse offset index of a segment (`.index`): entries of (offset − baseOffset: Int32,
/// file position: Int32), one every `index.interval.bytes` of log data.
public final class OffsetIndex: @unchecked Sendable {
    public static let entrySize = 8
    public let baseOffset: Int64
    let index: MappedIndex
    public var path: String { index.path }

    public init(path: String, baseOffset: Int64, maxIndexSize: Int) throws {
        self.baseOffset = baseOffset
        self.index = try MappedIndex(path: path, entrySize: Self.entrySize, maxBytes: maxIndexSize)
    }

    public var entries: Int { index.entries }
    public var isFull: Bool { index.isFull }

    public func entry(_ i: Int) -> (offset: Int64, position: Int) {
        (baseOffset + Int64(index.readInt32(i, 0)), Int(index.readInt32(i, 4)))
    }

    /// The last indexed offset, or the base offset when empty.
    public var lastOffset: Int64 { entries == 0 ? baseOffset : entry(entries - 1).offset }

    /// The largest indexed offset ≤ `offset` with its position; (baseOffset, 0) if none.
    public func lookup(_ offset: Int64) -> (offset: Int64, position: Int) {
        guard let i = index.floorIndex(offset, key: { self.baseOffset + Int64(self.index.readInt32($0, 0)) }) else {
            return (baseOffset, 0)
        }
        return entry(i)
    }

    /// Adds an entry; offsets and positions must increase.
    public func append(offset: Int64, position: Int) throws {
        if entries > 0 {
            let last = entry(entries - 1)
            guard offset > last.offset, position > last.position else {
                throw StorageError("offset index \(path): entry (\(offset), \(position)) not after (\(last.offset), \(last.position))")
            }
        }
        guard offset >= baseOffset, offset - baseOffset <= Int64(Int32.max), position <= Int(Int32.max) else {
            throw StorageError("offset index \(path): entry (\(offset), \(position)) out of range")
        }
        let i = try index.appendSlot()
        index.writeInt32(i, 0, Int32(offset - baseOffset))
        index.writeInt32(i, 4, Int32(position))
    }

    /// Removes the entries for offsets ≥ `offset`.
    public func truncate(fromOffset offset: Int64) {
        let keep = index.ceilingIndex(offset, key: { self.baseOffset + Int64(self.index.readInt32($0, 0)) }) ?? entries
        index.truncate(toEntries: keep)
    }

    public func reset() { index.truncate(toEntries: 0) }

    /// Keeps the first `n` entries (undoing appends that must not stay).
    func truncate(toEntries n: Int) { index.truncate(toEntries: n) }

    /// Entries must be strictly increasing and inside the log file.
    public func sanityCheck(logSize: Int) throws {
        var lastOffset: Int64 = -1, lastPos = -1
        for i in 0..<entries {
            let e = entry(i)
            guard e.offset > lastOffset, e.position > lastPos, e.offset >= baseOffset, e.position < logSize else {
                throw StorageError("corrupt offset index \(path): entry \(i) is (\(e.offset), \(e.position))")
            }
            lastOffset = e.offset
            lastPos = e.position
        }
    }

    public func flush() throws { try index.flush() }
    public func trim() throws { try index.trim() }
    public func resize(maxIndexSize: Int) throws { try index.resize(toBytes: maxIndexSize) }
}

/// The time index of a segment (`.timeindex`): entries of (max timestamp so far: Int64,
/// offset − baseOffset: Int32), added only when the timestamp grows.
public final class TimeIndex: @unchecked Sendable {
    public static let entrySize = 12
    public let baseOffset: Int64
    let index: MappedIndex
    public var path: String { index.path }

    public init(path: String, baseOffset: Int64, maxIndexSize: Int) throws {
        self.baseOffset = baseOffset
        self.index = try MappedIndex(path: path, entrySize: Self.entrySize, maxBytes: maxIndexSize)
    }

    public var entries: Int { index.entries }

    /// Full one entry early, as Kafka's `TimeIndex`: the last slot is reserved for the entry
    /// `LogSegment.onBecomeInactive()` adds when the segment is rolled.
    public var isFull: Bool { index.entries >= index.maxEntries - 1 }

    public func entry(_ i: Int) -> (timestamp: Int64, offset: Int64) {
        (index.readInt64(i, 0), baseOffset + Int64(index.readInt32(i, 8)))
    }

    public var lastEntry: (timestamp: Int64, offset: Int64)? { entries == 0 ? nil : entry(entries - 1) }

    /// The entry with the largest timestamp ≤ `timestamp`: a safe place to start scanning
    /// for the first offset whose timestamp is ≥ the target. (baseOffset) when none.
    public func lookup(_ timestamp: Int64) -> (timestamp: Int64, offset: Int64) {
        guard let i = index.floorIndex(timestamp, key: { self.index.readInt64($0, 0) }) else {
            return (-1, baseOffset)
        }
        return entry(i)
    }

    /// Adds an entry if `timestamp` is larger than the last one's — or, for an empty index,
    /// than -1 (no timestamp): batches without timestamps never add entries. `skipFullCheck`
    /// lets the roll use the reserved last slot (see ``isFull``).
    /// - Throws: if the index is full, or `offset` is before the last entry's or does not fit
    ///   in a relative offset (Int32) from the base offset.
    public func maybeAppend(timestamp: Int64, offset: Int64, skipFullCheck: Bool = false) throws {
        let last = lastEntry ?? (RecordBatch.noTimestamp, baseOffset)
        guard timestamp > last.timestamp else { return }
        guard offset >= last.offset else {
            throw StorageError("time index \(path): offset \(offset) is before the last entry's \(last.offset)")
        }
        let relative = offset - baseOffset
        guard relative >= 0, relative <= Int64(Int32.max) else {
            throw StorageError("time index \(path): offset \(offset) is out of range for base offset \(baseOffset)")
        }
        if !skipFullCheck && isFull {
            throw StorageError("time index \(path) is full (\(index.maxEntries) entries)")
        }
        let i = try index.appendSlot()
        index.writeInt64(i, 0, timestamp)
        index.writeInt32(i, 8, Int32(relative))
    }

    public func truncate(fromOffset offset: Int64) {
        let keep = index.ceilingIndex(offset, key: { self.baseOffset + Int64(self.index.readInt32($0, 8)) }) ?? entries
        index.truncate(toEntries: keep)
    }

    public func reset() { index.truncate(toEntries: 0) }

    /// Keeps the first `n` entries (undoing appends that must not stay).
    func truncate(toEntries n: Int) { index.truncate(toEntries: n) }

    public func sanityCheck() throws {
        var lastTs = Int64.min, lastOffset: Int64 = -1
        for i in 0..<entries {
            let e = entry(i)
            guard e.timestamp > lastTs, e.offset >= lastOffset, e.offset >= baseOffset else {
                throw StorageError("corrupt time index \(path): entry \(i) is (\(e.timestamp), \(e.offset))")
            }
            lastTs = e.timestamp
            lastOffset = e.offset
        }
    }

    public func flush() throws { try index.flush() }
    public func trim() throws { try index.trim() }
    public func resize(maxIndexSize: Int) throws { try index.resize(toBytes: maxIndexSize) }
}
