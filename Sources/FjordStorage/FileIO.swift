#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// An I/O failure with the path and the system's reason; storage surfaces these as
/// `KAFKA_STORAGE_ERROR` to clients.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }

    static func errno(_ what: String, _ path: String) -> StorageError {
        let code = Glibc.errno
        return StorageError("\(what) \(path): \(String(cString: strerror(code))) (errno \(code))")
    }
}

/// An open file with positional reads and writes. Reference-counted so a reader (a fetch
/// being sent with sendfile) keeps the descriptor alive after the segment is deleted.
public final class StorageFile: @unchecked Sendable {
    public let path: String
    public let fd: CInt

    /// Opens (and with `create`, creates) a file for reading and writing.
    public init(path: String, create: Bool = false, readOnly: Bool = false) throws {
        var flags: CInt = readOnly ? O_RDONLY : O_RDWR
        if create { flags |= O_CREAT }
        flags |= O_CLOEXEC
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else { throw StorageError.errno("cannot open", path) }
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// The current size in bytes.
    public func size() throws -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StorageError.errno("cannot stat", path) }
        return Int(st.st_size)
    }

    /// Writes all readable bytes of `buffer` at `offset`.
    public func write(_ buffer: ByteBuffer, at offset: Int) throws {
        try buffer.withUnsafeReadableBytes { try write(raw: $0, at: offset) }
    }

    /// Writes all readable bytes of `buffer` at `offset` with each stamp's 16 bytes (at
    /// `position`, relative to the readable bytes) replaced by a batch header's base offset,
    /// length and partition leader epoch, in one `pwritev`: the leader stamps a producer's
    /// batches without copying (or copy-on-writing) the request's buffer. Stamps must be in
    /// ascending position order and must not overlap.
    public func write(_ buffer: ByteBuffer, at offset: Int, stamps: [BatchHeaderStamp]) throws {
        if stamps.isEmpty { return try write(buffer, at: offset) }
        var heads = [UInt8](repeating: 0, count: stamps.count * BatchHeaderStamp.size)
        for (i, st) in stamps.enumerated() {
            let o = i * BatchHeaderStamp.size
            withUnsafeBytes(of: st.baseOffset.bigEndian) { heads.replaceSubrange(o..<o + 8, with: $0) }
            withUnsafeBytes(of: st.batchLength.bigEndian) { heads.replaceSubrange(o + 8..<o + 12, with: $0) }
            withUnsafeBytes(of: st.leaderEpoch.bigEndian) { heads.replaceSubrange(o + 12..<o + 16, with: $0) }
        }
        try buffer.withUnsafeReadableBytes { body in
            try heads.withUnsafeBytes { h in
                var spans: [UnsafeRawBufferPointer] = []
                spans.reserveCapacity(stamps.count * 2 + 1)
                var at = 0
                for (i, st) in stamps.enumerated() {
                    precondition(st.position >= at && st.position + BatchHeaderStamp.size <= body.count, "stamps out of order or range")
                    if st.position > at { spans.append(UnsafeRawBufferPointer(rebasing: body[at..<st.position])) }
                    spans.append(UnsafeRawBufferPointer(rebasing: h[i * BatchHeaderStamp.size..<(i + 1) * BatchHeaderStamp.size]))
                    at = st.position + BatchHeaderStamp.size
                }
                if at < body.count { spans.append(UnsafeRawBufferPointer(rebasing: body[at...])) }
                try writev(spans, at: offset)
            }
        }
    }

    /// `pwritev` of `spans` at `offset`, in groups of at most IOV_MAX, resuming short writes.
    private func writev(_ spans: [UnsafeRawBufferPointer], at offset: Int) throws {
        var index = 0, skip = 0, fileOffset = offset
        var iov = [iovec](repeating: iovec(), count: min(spans.count, 1024))
        while index < spans.count {
            var n = 0
            while n < iov.count && index + n < spans.count {
                let sp = spans[index + n]
                let s = n == 0 ? skip : 0
                iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: sp.baseAddress! + s), iov_len: sp.count - s)
                n += 1
            }
            let w = iov.withUnsafeBufferPointer { pwritev(fd, $0.baseAddress!, Int32(n), off_t(fileOffset)) }
            if w < 0 {
                if errno == EINTR { continue }
                throw StorageError.errno("cannot write", path)
            }
            if w == 0 { throw StorageError("cannot write \(path): pwritev wrote nothing") }
            fileOffset += w
            // Advance over what was written.
            var left = w
            while left > 0 {
                let rest = spans[index].count - skip
                if left >= rest { left -= rest; index += 1; skip = 0 } else { skip += left; left = 0 }
            }
        }
    }

    public func write(raw: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < raw.count {
            let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError.errno("cannot write", path)
            }
            if n == 0 { throw StorageError("cannot write \(path): pwrite wrote nothing") }
            done += n
        }
    }

    /// Reads up to `count` bytes at `offset` (fewer at end of file) into a new buffer.
    public func read(at offset: Int, count: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        var buf = allocator.buffer(capacity: count)
        try read(into: &buf, at: offset, count: count)
        return buf
    }

    /// Appends up to `count` bytes read at `offset` to `buffer`; returns how many were read.
    @discardableResult
    public func read(into buf: inout ByteBuffer, at offset: Int, count: Int) throws -> Int {
        guard count > 0 else { return 0 }
        let path = self.path
        let fd = self.fd
        return try buf.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { ptr in
            var done = 0
            while done < count {
                let n = pread(fd, ptr.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw StorageError.errno("cannot read", path)
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
    }

    /// Flushes data (and the metadata needed to read it back) to the device.
    public func sync() throws {
        guard fdatasync(fd) == 0 else { throw StorageError.errno("cannot fsync", path) }
    }

    public func truncate(to size: Int) throws {
        guard ftruncate(fd, off_t(size)) == 0 else { throw StorageError.errno("cannot truncate", path) }
    }
}

/// Small file-system helpers used by the log layer.
public enum FileSystem {
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func createDirectory(_ path: String) throws {
        if isDirectory(path) { return }
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if !isDirectory(current) && mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw StorageError.errno("cannot create directory", current)
            }
        }
    }

    /// The inode change time (a rename updates it) in ms since the epoch; 0 if unknown.
    public static func changeTimeMs(_ path: String) -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        return Int64(st.st_ctim.tv_sec) * 1000 + Int64(st.st_ctim.tv_nsec) / 1_000_000
    }

    public static func list(_ path: String) throws -> [String] {
        guard let d = opendir(path) else { throw StorageError.errno("cannot list", path) }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    public static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw StorageError.errno("cannot rename \(from) to", to) }
    }

    public static func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw StorageError.errno("cannot delete", path) }
    }

    public static func removeTree(_ path: String) throws {
        if isDirectory(path) {
            for n in try list(path) { try removeTree(path + "/" + n) }
            guard rmdir(path) == 0 || errno == ENOENT else { throw StorageError.errno("cannot delete", path) }
        } else {
            try remove(path)
        }
    }

    /// fsyncs a directory so that creates, renames and deletes in it are durable.
    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StorageError.errno("cannot open directory", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StorageError.errno("cannot fsync directory", path) }
    }

    /// Writes `contents` to `path` durably: temp file, fsync, rename, fsync of the directory.
    public static func writeAtomically(_ path: String, contents: String) throws {
        let tmp = path + ".tmp"
        let f = try StorageFile(path: tmp, create: true)
        try f.truncate(to: 0)
        try f.write(ByteBuffer(string: contents), at: 0)
        try f.sync()
        try rename(tmp, path)
        try syncDirectory(parent(of: path))
    }

    /// Writes `bytes` to `path` durably, as `writeAtomically(_:contents:)`.
    public static func writeAtomically(_ path: String, bytes: ByteBuffer) throws {
        let tmp = path + ".tmp"
        let f = try StorageFile(path: tmp, create: true)
        try f.truncate(to: 0)
        try f.write(bytes, at: 0)
        try f.sync()
        try rename(tmp, path)
        try syncDirectory(parent(of: path))
    }

    public static func readBytes(_ path: String) throws -> ByteBuffer {
        let f = try StorageFile(path: path, readOnly: true)
        return try f.read(at: 0, count: try f.size())
    }

    public static func readString(_ path: String) throws -> String {
        let f = try StorageFile(path: path, readOnly: true)
        var buf = try f.read(at: 0, count: try f.size())
        return buf.readString(length: buf.readableBytes) ?? ""
    }

    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }

    public static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}


/// A record batch header's first 16 bytes as the leader writes them (see
/// `StorageFile.write(_:at:stamps:)`): base offset, batch length, partition leader epoch.
public struct BatchHeaderStamp: Sendable, Equatable {
    public static let size = 16
    /// Where the batch starts in the written bytes.
    public var position: Int
    public var baseOffset: Int64
    public var batchLength: Int32
    public var leaderEpoch: Int32

    public init(position: Int, baseOffset: Int64, batchLength: Int32, leaderEpoch: Int32) {
        self.position = position
        self.baseOffset = baseOffset
        self.batchLength = batchLength
        self.leaderEpoch = leaderEpoch
    }
}
