import FjordMetadata
import FjordProtocol
import FjordRecords
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Options of `fjord dump-log`, named after `kafka-dump-log.sh`'s flags.
public struct DumpLogOptions: Sendable {
    /// The files to dump (`--files`), in order.
    public var files: [String]
    /// Print each record's key and value as UTF-8 (`--print-data-log`); implies deep iteration.
    public var printDataLog: Bool
    /// Print a line per record, not only per batch (`--deep-iteration`).
    public var deepIteration: Bool
    /// Leave out the record metadata, print only key and payload (`--skip-record-metadata`).
    public var skipRecordMetadata: Bool
    /// Read only the batches within the first `maxBytes` bytes of each file (`--max-bytes`);
    /// nil reads the whole file (and reports trailing invalid bytes).
    public var maxBytes: Int?
    /// Bound on the decompressed records of one batch.
    public var maxDecompressedBytes: Int
    /// Size of each read from the file; batches larger than this are read whole.
    public var readChunkSize: Int
    /// Describes a control record that is not a transaction marker (KRaft `LEADER_CHANGE`,
    /// `SNAPSHOT_HEADER`, ...), e.g. as Kafka's JSON; the text follows the record metadata.
    /// nil, or a nil result, prints ` controlType: <NAME>(<id>)`.
    public var describeControlRecord: (@Sendable (ControlRecordType, Record) -> String?)?
    /// Decodes a data record's value for `--cluster-metadata-decoder` (printed after
    /// ` payload: `); nil prints the value as UTF-8 (with `--print-data-log`).
    public var decodePayload: (@Sendable (Record) -> String)?

    public init(files: [String], printDataLog: Bool = false, deepIteration: Bool = false,
                skipRecordMetadata: Bool = false, maxBytes: Int? = nil,
                maxDecompressedBytes: Int = RecordBatch.defaultMaxDecompressedBytes,
                readChunkSize: Int = 1 << 20,
                describeControlRecord: (@Sendable (ControlRecordType, Record) -> String?)? = nil) {
        self.files = files
        self.printDataLog = printDataLog
        self.deepIteration = deepIteration
        self.skipRecordMetadata = skipRecordMetadata
        self.maxBytes = maxBytes
        self.maxDecompressedBytes = maxDecompressedBytes
        self.readChunkSize = readChunkSize
        self.describeControlRecord = describeControlRecord
        self.decodePayload = nil
    }

    /// Whether records are listed: `--deep-iteration` or `--print-data-log`.
    public var isDeepIteration: Bool { deepIteration || printDataLog }
}

/// `kafka-dump-log.sh` for Fjord: prints the batches and records of `.log` segments (and
/// KRaft `.checkpoint` snapshots) in Kafka's exact format.
///
/// Standard output gets what Kafka prints to stdout (`Dumping <file>`, `Log starting offset:`,
/// one line per batch, `| offset:` lines per record, `Found N invalid bytes at the end of
/// <name>`); diagnostics go to the error stream (non-consecutive offsets, unreadable records,
/// files of kinds not supported yet). Files are read in chunks of about one batch, so memory
/// stays bounded whatever the segment size. Corrupt or truncated data is reported, never a
/// crash.
public enum DumpLog {
    /// Dumps every file in `options.files` to `output` / `errors`.
    /// - Returns: false if some file could not be opened or read (the CLI exits with 1).
    @discardableResult
    public static func run<Out: TextOutputStream, Err: TextOutputStream>(
        _ options: DumpLogOptions, output: inout Out, errors: inout Err
    ) -> Bool {
        var ok = true
        var nonConsecutive: [(file: String, pairs: [(Int64, Int64)])] = []
        for path in options.files {
            output.write("Dumping \(path)\n")
            let name = fileName(path)
            guard let dot = name.lastIndex(of: ".") else {
                errors.write("Ignoring unknown file \(path)\n")
                continue
            }
            let suffix = String(name[dot...])
            switch suffix {
            case ".log", ".checkpoint":
                var pairs: [(Int64, Int64)] = []
                do {
                    try dumpLog(path: path, name: name, options: options, output: &output, errors: &errors,
                                nonConsecutive: &pairs)
                } catch {
                    errors.write("\(error)\n")
                    ok = false
                }
                if !pairs.isEmpty { nonConsecutive.append((absolutePath(path), pairs)) }
            case ".index", ".timeindex", ".txnindex", ".snapshot":
                errors.write("Dumping \(suffix) files is not supported by fjord dump-log yet: \(path)\n")
            default:
                errors.write("Ignoring unknown file \(path)\n")
            }
        }
        for (file, pairs) in nonConsecutive {
            errors.write("Non-consecutive offsets in \(file)\n")
            // Kafka keeps these in a map sorted by the earlier offset.
            var byPrevious: [Int64: Int64] = [:]
            for (a, b) in pairs { byPrevious[a] = b }
            for a in byPrevious.keys.sorted() { errors.write("  \(a) is followed by \(byPrevious[a] ?? 0)\n") }
        }
        return ok
    }

    /// Runs the dump and returns both streams as strings (tests, small files).
    public static func run(_ options: DumpLogOptions) -> (output: String, errors: String, succeeded: Bool) {
        var out = ""
        var err = ""
        let ok = run(options, output: &out, errors: &err)
        return (out, err, ok)
    }

    // MARK: one file

    static func dumpLog<Out: TextOutputStream, Err: TextOutputStream>(
        path: String, name: String, options: DumpLogOptions, output: inout Out, errors: inout Err,
        nonConsecutive: inout [(Int64, Int64)]
    ) throws {
        let stem = name.split(separator: ".", omittingEmptySubsequences: false).first.map(String.init) ?? name
        if name.hasSuffix(".log") {
            if let start = Int64(stem) {
                output.write("Log starting offset: \(start)\n")
            } else {
                errors.write("Cannot read the starting offset from the file name \(name)\n")
            }
        } else if name == "bootstrap.checkpoint" {
            output.write("KRaft bootstrap snapshot\n")
        } else {
            let parts = stem.split(separator: "-")
            if parts.count == 2, let end = Int64(parts[0]), let epoch = Int32(parts[1]) {
                output.write("Snapshot end offset: \(end), epoch: \(epoch)\n")
            } else {
                errors.write("Cannot read the snapshot id from the file name \(name)\n")
            }
        }

        let file = try SegmentFile(path: path)
        defer { file.close() }
        let end = min(file.size, options.maxBytes ?? Int.max)
        let chunk = max(options.readChunkSize, RecordBatch.Layout.headerSize)
        let maxBatchSize = Int(Int32.max) + RecordBatch.Layout.logOverhead
        var window = ByteBuffer()
        var windowStart = 0
        var position = 0
        var lastOffset: Int64 = -1

        func refill(from start: Int, want: Int) throws {
            window.clear()
            let n = min(want, end - start)
            try file.read(at: start, count: n, into: &window)
            windowStart = start
        }

        while position < end {
            let remaining = end - position
            var inWindow = windowStart + window.readableBytes - position
            if position < windowStart || inWindow < min(remaining, RecordBatch.Layout.headerSizeUpToMagic) {
                try refill(from: position, want: chunk)
                inWindow = window.readableBytes
            }
            var framing = RecordBatch.frame(window, at: window.readerIndex + (position - windowStart),
                                            maxBatchSize: maxBatchSize)
            if case let .incomplete(size) = framing, inWindow < remaining {
                let need = size ?? RecordBatch.Layout.headerSizeUpToMagic
                if need <= remaining {
                    try refill(from: position, want: max(chunk, need))
                    framing = RecordBatch.frame(window, at: window.readerIndex, maxBatchSize: maxBatchSize)
                }
            }
            guard case let .complete(size) = framing else {
                if case let .invalid(error) = framing {
                    errors.write("Cannot read the batch at position \(position) of \(path): \(error)\n")
                }
                break
            }
            guard let bytes = window.getSlice(at: window.readerIndex + (position - windowStart), length: size),
                  let batch = try? RecordBatch(bytes, maxBatchSize: maxBatchSize)
            else { break }
            output.write(batchLine(batch, position: position))
            output.write("\n")
            if options.isDeepIteration {
                dumpRecords(batch, position: position, options: options, lastOffset: &lastOffset,
                            nonConsecutive: &nonConsecutive, output: &output, errors: &errors)
            }
            position += size
        }

        let trailing = file.size - position
        if trailing > 0 && options.maxBytes == nil {
            output.write("Found \(trailing) invalid bytes at the end of \(name)\n")
        }
    }

    static func dumpRecords<Out: TextOutputStream, Err: TextOutputStream>(
        _ batch: RecordBatch, position: Int, options: DumpLogOptions, lastOffset: inout Int64,
        nonConsecutive: inout [(Int64, Int64)], output: inout Out, errors: inout Err
    ) {
        do {
            var records = try batch.makeRecordIterator(maxDecompressedBytes: options.maxDecompressedBytes)
            while let record = try records.next() {
                if record.offset != lastOffset &+ 1 { nonConsecutive.append((lastOffset, record.offset)) }
                lastOffset = record.offset
                var line = ""
                if !options.skipRecordMetadata {
                    line = recordLine(record, in: batch, describeControl: options.describeControlRecord)
                }
                if let decode = options.decodePayload, !batch.isControl {
                    line += (options.skipRecordMetadata ? "| " : " ") + "payload: " + decode(record)
                } else if options.printDataLog && !batch.isControl {
                    var prefix = options.skipRecordMetadata ? "| " : " "
                    if let key = record.key {
                        line += prefix + "key: " + String(buffer: key)
                        prefix = " "
                    }
                    if let value = record.value {
                        line += prefix + "payload: " + String(buffer: value)
                    }
                }
                output.write(line)
                output.write("\n")
            }
        } catch {
            errors.write("Cannot read the records of the batch at position \(position): \(error)\n")
        }
    }

    // MARK: formatting (Kafka's DumpLogSegments wording)

    /// The batch line: `baseOffset: … isvalid: …`, exactly as Kafka prints a v2 batch.
    public static func batchLine(_ batch: RecordBatch, position: Int) -> String {
        let deleteHorizon = batch.deleteHorizonMs.map { "OptionalLong[\($0)]" } ?? "OptionalLong.empty"
        let codec = batch.compression?.name ?? "unknown(\(batch.attributes.codecID))"
        return "baseOffset: \(batch.baseOffset) lastOffset: \(batch.lastOffset) count: \(batch.recordCount)"
            + " baseSequence: \(batch.baseSequence) lastSequence: \(batch.lastSequence)"
            + " producerId: \(batch.producerId) producerEpoch: \(batch.producerEpoch)"
            + " partitionLeaderEpoch: \(batch.partitionLeaderEpoch) isTransactional: \(batch.isTransactional)"
            + " isControl: \(batch.isControl) deleteHorizonMs: \(deleteHorizon)"
            + " position: \(position) \(batch.timestampType): \(batch.maxTimestamp) size: \(batch.sizeInBytes)"
            + " magic: \(batch.magic) compresscodec: \(codec) crc: \(batch.crc) isvalid: \(batch.isValid)"
    }

    /// The record metadata: `| offset: … headerKeys: […]`, plus the marker of a control record.
    public static func recordLine(_ record: Record, in batch: RecordBatch,
                                  describeControl: (@Sendable (ControlRecordType, Record) -> String?)? = nil) -> String {
        var line = "| offset: \(record.offset) \(batch.timestampType): \(record.timestamp)"
            + " keySize: \(record.keySize) valueSize: \(record.valueSize)"
            + " sequence: \(record.sequence) headerKeys: ["
        var first = true
        for header in record.headers {
            if !first { line += "," }
            first = false
            line += header.keyString
        }
        line += "]"
        if batch.isControl {
            line += controlDescription(record, describeControl: describeControl)
        }
        return line
    }

    static func controlDescription(_ record: Record,
                                   describeControl: (@Sendable (ControlRecordType, Record) -> String?)?) -> String {
        let type: ControlRecordType
        do {
            type = try record.controlRecordType()
        } catch {
            return " controlType: invalid (\(error))"
        }
        if type == .abort || type == .commit {
            do {
                let marker = try EndTransactionMarker(record: record)
                return " endTxnMarker: \(marker.type.name) coordinatorEpoch: \(marker.coordinatorEpoch)"
            } catch {
                return " endTxnMarker: invalid (\(error))"
            }
        }
        if let text = describeControl?(type, record) { return text }
        return " controlType: \(type.name)(\(type.rawValue))"
    }

    // MARK: paths

    static func fileName(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        if let slash = p.lastIndex(of: "/") { return String(p[p.index(after: slash)...]) }
        return String(p)
    }

    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }
}

/// A read-only file read with `pread` into reusable buffers.
struct SegmentFile {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let fd: Int32
    let size: Int
    let path: String

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Failure(description: "Cannot open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let why = String(cString: strerror(errno))
            _ = Self.closeFD(fd)
            throw Failure(description: "Cannot stat \(path): \(why)")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            _ = Self.closeFD(fd)
            throw Failure(description: "\(path) is a directory")
        }
        self.fd = fd
        self.size = Int(st.st_size)
    }

    private static func closeFD(_ fd: Int32) -> Int32 {
        #if canImport(Darwin)
        return Darwin.close(fd)
        #elseif canImport(Musl)
        return Musl.close(fd)
        #else
        return Glibc.close(fd)
        #endif
    }

    func close() { _ = Self.closeFD(fd) }

    /// Appends `count` bytes at file offset `offset` to `buffer` (fewer only at end of file).
    func read(at offset: Int, count: Int, into buffer: inout ByteBuffer) throws {
        guard count > 0 else { return }
        buffer.reserveCapacity(minimumWritableBytes: count)
        var done = 0
        while done < count {
            var failure: Int32 = 0
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - done) { raw -> Int in
                let r = pread(fd, raw.baseAddress, min(raw.count, count - done), off_t(offset + done))
                if r < 0 { failure = errno; return 0 }
                return r
            }
            if failure != 0 {
                if failure == EINTR { continue }
                throw Failure(description: "Cannot read \(path): \(String(cString: strerror(failure)))")
            }
            if n == 0 { break }
            done += n
        }
    }
}

/// `--cluster-metadata-decoder`: metadata records and KRaft control records as Kafka's
/// decoder prints them, `{"type":"REGISTER_BROKER_RECORD","version":3,"data":{...}}`.
public enum ClusterMetadataDecoder {
    public static func payload(_ record: Record) -> String {
        guard let value = record.value else { return "null" }
        do {
            let m = try MetadataRecord.decode(value)
            let data = m.fields().map { "\"\($0.0)\":\(json($0.1))" }.joined(separator: ",")
            return "{\"type\":\"\(snake(MetadataRecord.recordName(m.type)))\",\"version\":\(m.version),\"data\":{\(data)}}"
        } catch {
            return "(undecodable metadata record: \(error))"
        }
    }

    /// LeaderChange, SnapshotHeader/Footer, KRaftVersion and Voters control records.
    public static func control(_ type: ControlRecordType, _ record: Record) -> String? {
        guard var v = record.value else { return nil }
        switch type.rawValue {
        case 2:
            guard let m = try? LeaderChangeMessage(from: &v, version: 0) else { return nil }
            let voters = m.voters.map { "{\"voterId\":\($0.voterId)}" }.joined(separator: ",")
            let granting = m.grantingVoters.map { "{\"voterId\":\($0.voterId)}" }.joined(separator: ",")
            return " LeaderChange: {\"version\":\(m.version),\"leaderId\":\(m.leaderId),\"voters\":[\(voters)],\"grantingVoters\":[\(granting)]}"
        case 3:
            guard let m = try? SnapshotHeaderRecord(from: &v, version: 0) else { return nil }
            return " SnapshotHeader {\"version\":\(m.version),\"lastContainedLogTimestamp\":\(m.lastContainedLogTimestamp)}"
        case 4:
            guard let m = try? SnapshotFooterRecord(from: &v, version: 0) else { return nil }
            return " SnapshotFooter {\"version\":\(m.version)}"
        default:
            return nil
        }
    }

    static func json(_ text: String) -> String {
        if text == "true" || text == "false" || Int64(text) != nil { return text }
        if text.hasPrefix("["), text.hasSuffix("]"), text.dropFirst().dropLast().split(separator: ",").allSatisfy({ Int64($0) != nil }) {
            return text
        }
        return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// "RegisterBrokerRecord" → "REGISTER_BROKER_RECORD".
    static func snake(_ name: String) -> String {
        var out = ""
        for (i, c) in name.enumerated() {
            if c.isUppercase, i > 0 { out += "_" }
            out += c.uppercased()
        }
        return out
    }
}
