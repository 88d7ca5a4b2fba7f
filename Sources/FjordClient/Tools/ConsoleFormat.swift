import FjordRecords
import NIOCore

/// Kafka's console-consumer message formatter (`DefaultMessageFormatter`): optional timestamp,
/// partition, offset, headers and key, then the value, separated by `key.separator`.
public struct ConsoleFormatter: Sendable {
    public var printTimestamp = false
    public var printPartition = false
    public var printOffset = false
    public var printHeaders = false
    public var printKey = false
    public var printValue = true
    public var keySeparator: [UInt8] = Array("\t".utf8)
    public var lineSeparator: [UInt8] = Array("\n".utf8)
    public var headersSeparator: [UInt8] = Array(",".utf8)
    public var headersKeySeparator: [UInt8] = Array(":".utf8)
    public var nullLiteral: [UInt8] = Array("null".utf8)

    public init() {}

    /// The `--property` keys it understands.
    public static let knownKeys: Set<String> = [
        "print.timestamp", "print.partition", "print.offset", "print.headers", "print.key", "print.value",
        "key.separator", "line.separator", "headers.separator", "headers.key.separator", "null.literal",
        "print.delivery", "print.epoch", "key.deserializer", "value.deserializer", "headers.deserializer",
    ]

    /// Settings from `--property k=v` items (unknown keys are ignored; see `knownKeys`).
    public init(properties: [(String, String)]) throws {
        self.init()
        for (k, v) in properties {
            func bool() throws -> Bool {
                switch v.lowercased() {
                case "true": return true
                case "false": return false
                default: throw KafkaClientError.invalidArgument("--property \(k)=\(v): expected true or false")
                }
            }
            switch k {
            case "print.timestamp": printTimestamp = try bool()
            case "print.partition": printPartition = try bool()
            case "print.offset": printOffset = try bool()
            case "print.headers": printHeaders = try bool()
            case "print.key": printKey = try bool()
            case "print.value": printValue = try bool()
            case "key.separator": keySeparator = Array(Self.unescape(v).utf8)
            case "line.separator": lineSeparator = Array(Self.unescape(v).utf8)
            case "headers.separator": headersSeparator = Array(Self.unescape(v).utf8)
            case "headers.key.separator": headersKeySeparator = Array(Self.unescape(v).utf8)
            case "null.literal": nullLiteral = Array(v.utf8)
            default: break
            }
        }
    }

    /// `\t`, `\n`, `\r`, `\\` in property values (as a shell passes them literally).
    public static func unescape(_ s: String) -> String {
        var out = ""
        var esc = false
        for c in s {
            if esc {
                switch c {
                case "t": out.append("\t")
                case "n": out.append("\n")
                case "r": out.append("\r")
                default: out.append(c)
                }
                esc = false
            } else if c == "\\" {
                esc = true
            } else {
                out.append(c)
            }
        }
        if esc { out.append("\\") }
        return out
    }

    /// Appends the formatted record to `out`.
    public func format(_ r: ConsumerRecord, into out: inout [UInt8]) {
        var first = true
        func sep() {
            if !first { out.append(contentsOf: keySeparator) }
            first = false
        }
        func bytes(_ b: ByteBuffer?) {
            if let b { b.withUnsafeReadableBytes { out.append(contentsOf: $0) } } else { out.append(contentsOf: nullLiteral) }
        }
        if printTimestamp {
            sep()
            if r.timestamp < 0 {
                out.append(contentsOf: Array("NO_TIMESTAMP".utf8))
            } else {
                out.append(contentsOf: Array("\(r.timestampType == .logAppendTime ? "LogAppendTime" : "CreateTime"):\(r.timestamp)".utf8))
            }
        }
        if printPartition {
            sep()
            out.append(contentsOf: Array("Partition:\(r.partition)".utf8))
        }
        if printOffset {
            sep()
            out.append(contentsOf: Array("Offset:\(r.offset)".utf8))
        }
        if printHeaders {
            sep()
            if r.headers.isEmpty {
                out.append(contentsOf: Array("NO_HEADERS".utf8))
            } else {
                for (i, h) in r.headers.enumerated() {
                    if i > 0 { out.append(contentsOf: headersSeparator) }
                    h.key.withUnsafeReadableBytes { out.append(contentsOf: $0) }
                    out.append(contentsOf: headersKeySeparator)
                    bytes(h.value)
                }
            }
        }
        if printKey {
            sep()
            bytes(r.key)
        }
        if printValue {
            sep()
            bytes(r.value)
        }
        out.append(contentsOf: lineSeparator)
    }
}

/// The console producer's line reader (Kafka's `LineMessageReader`): `parse.key` with
/// `key.separator`, `parse.headers` with `headers.delimiter`/`headers.separator`/`headers.key.separator`,
/// and `null.marker`.
public struct LineReaderConfig: Sendable {
    public var parseKey = false
    public var keySeparator = "\t"
    public var parseHeaders = false
    public var headersDelimiter = "\t"
    public var headersSeparator = ","
    public var headersKeySeparator = ":"
    public var nullMarker: String?
    public var ignoreError = false

    public init() {}

    public static let knownKeys: Set<String> = [
        "parse.key", "key.separator", "parse.headers", "headers.delimiter", "headers.separator", "headers.key.separator",
        "null.marker", "ignore.error",
    ]

    public init(properties: [(String, String)]) throws {
        self.init()
        for (k, v) in properties {
            switch k {
            case "parse.key": parseKey = v.lowercased() == "true"
            case "key.separator": keySeparator = ConsoleFormatter.unescape(v)
            case "parse.headers": parseHeaders = v.lowercased() == "true"
            case "headers.delimiter": headersDelimiter = ConsoleFormatter.unescape(v)
            case "headers.separator": headersSeparator = ConsoleFormatter.unescape(v)
            case "headers.key.separator": headersKeySeparator = ConsoleFormatter.unescape(v)
            case "null.marker": nullMarker = v
            case "ignore.error": ignoreError = v.lowercased() == "true"
            default: break
            }
        }
        if keySeparator.isEmpty { throw KafkaClientError.invalidArgument("key.separator must not be empty") }
    }

    /// One parsed line: key, value, headers.
    public struct Message: Sendable {
        public var key: ByteBuffer?
        public var value: ByteBuffer?
        public var headers: [RecordHeader]
    }

    /// Parses `line` (without its newline); `lineNumber` is for error messages.
    public func parse(_ line: String, lineNumber: Int) throws -> Message {
        var rest = Substring(line)
        var headers: [RecordHeader] = []
        func null(_ s: Substring) -> ByteBuffer? {
            if let m = nullMarker, s == m { return nil }
            return ByteBuffer(string: String(s))
        }
        if parseHeaders {
            if let r = Self.find(headersDelimiter, in: rest) {
                let h = rest[..<r.lowerBound]
                rest = rest[r.upperBound...]
                if h != "" && !(nullMarker != nil && h == nullMarker!) {
                    for item in Self.split(h, by: headersSeparator) {
                        if let kv = Self.find(headersKeySeparator, in: item) {
                            let k = item[..<kv.lowerBound]
                            headers.append(RecordHeader(key: ByteBuffer(string: String(k)), value: null(item[kv.upperBound...])))
                        } else {
                            headers.append(RecordHeader(key: ByteBuffer(string: String(item)), value: nil))
                        }
                    }
                }
            } else if !ignoreError {
                throw KafkaClientError.invalidArgument("No headers delimiter found on line number \(lineNumber): '\(line)'")
            }
        }
        var key: ByteBuffer? = nil
        if parseKey {
            if let r = Self.find(keySeparator, in: rest) {
                key = null(rest[..<r.lowerBound])
                rest = rest[r.upperBound...]
            } else if !ignoreError {
                throw KafkaClientError.invalidArgument("No key separator found on line number \(lineNumber): '\(line)'")
            }
        }
        return Message(key: key, value: null(rest), headers: headers)
    }

    static func find(_ needle: String, in s: Substring) -> Range<Substring.Index>? {
        guard !needle.isEmpty else { return nil }
        var i = s.startIndex
        while i < s.endIndex {
            if s[i...].hasPrefix(needle) { return i..<s.index(i, offsetBy: needle.count) }
            i = s.index(after: i)
        }
        return nil
    }

    static func split(_ s: Substring, by sep: String) -> [Substring] {
        var out: [Substring] = []
        var rest = s
        while let r = find(sep, in: rest) {
            out.append(rest[..<r.lowerBound])
            rest = rest[r.upperBound...]
        }
        out.append(rest)
        return out
    }
}
