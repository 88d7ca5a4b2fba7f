#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Helpers shared by the operator tools: `k=v` lists, properties files, number formatting,
/// buffered byte output.
public enum ToolSupport {
    /// Parses `key=value` items (as `--producer-property`, `--property`, `--producer-props` take them).
    public static func keyValues(_ items: [String], option: String) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for item in items {
            guard let eq = item.firstIndex(of: "=") else {
                throw KafkaClientError.invalidArgument("\(option) \(item): expected key=value")
            }
            let k = item[..<eq].trimmingCharacters(in: " \t")
            let v = item[item.index(after: eq)...].trimmingCharacters(in: " \t")
            guard !k.isEmpty else { throw KafkaClientError.invalidArgument("\(option) \(item): empty key") }
            out.append((k, v))
        }
        return out
    }

    /// Reads a Java properties file (`key=value` or `key: value`, `#`/`!` comments, trailing `\` continuations).
    public static func loadProperties(path: String) throws -> [(String, String)] {
        guard let f = fopen(path, "r") else {
            throw KafkaClientError.invalidArgument("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var text: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            text.append(contentsOf: buf[0..<n])
        }
        return parseProperties(String(decoding: text, as: UTF8.self))
    }

    /// Parses Java properties text.
    public static func parseProperties(_ text: String) -> [(String, String)] {
        var out: [(String, String)] = []
        var pending = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = rawLine.trimmingCharacters(in: " \t\r")
            if pending.isEmpty && (line.hasPrefix("#") || line.hasPrefix("!") || line.isEmpty) { continue }
            if line.hasSuffix("\\") {
                line.removeLast()
                pending += line
                continue
            }
            line = pending + line
            pending = ""
            let sep = line.firstIndex { $0 == "=" || $0 == ":" }
            if let sep {
                out.append((line[..<sep].trimmingCharacters(in: " \t"), line[line.index(after: sep)...].trimmingCharacters(in: " \t")))
            } else {
                out.append((line, ""))
            }
        }
        return out
    }

    /// Splits Kafka's `--add-config` syntax: `k1=v1,k2=[v2,v3]` (brackets group list values).
    public static func configList(_ text: String) throws -> [(String, String)] {
        var items: [String] = []
        var cur = ""
        var depth = 0
        for ch in text {
            if ch == "[" { depth += 1 }
            if ch == "]" { depth = max(0, depth - 1) }
            if ch == "," && depth == 0 {
                items.append(cur)
                cur = ""
            } else {
                cur.append(ch)
            }
        }
        if !cur.isEmpty { items.append(cur) }
        var out: [(String, String)] = []
        for item in items where !item.trimmingCharacters(in: " ").isEmpty {
            guard let eq = item.firstIndex(of: "=") else {
                throw KafkaClientError.invalidArgument("--add-config \(item): expected key=value (several as k1=v1,k2=[v1,v2])")
            }
            let k = item[..<eq].trimmingCharacters(in: " ")
            var v = item[item.index(after: eq)...].trimmingCharacters(in: " ")
            if v.hasPrefix("[") && v.hasSuffix("]") { v = String(v.dropFirst().dropLast()) }
            out.append((k, v))
        }
        return out
    }

    /// `x` with `decimals` digits after the point, rounding half away from zero (as Java's `%.Nf`).
    public static func fixed(_ x: Double, _ decimals: Int) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x > 0 ? "Infinity" : "-Infinity" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(x) * scale).rounded(.toNearestOrAwayFromZero)
        guard scaled < 9.0e18 else { return "\(x)" }
        let n = UInt64(scaled)
        let s = UInt64(scale)
        var text = "\(n / s)"
        if decimals > 0 {
            var frac = "\(n % s)"
            while frac.count < decimals { frac = "0" + frac }
            text += "." + frac
        }
        return (x < 0 && n != 0 ? "-" : "") + text
    }

    /// Local time as Kafka's perf tools print it: `yyyy-MM-dd HH:mm:ss:SSS`.
    public static func localTimestamp(ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tmv = tm()
        localtime_r(&t, &tmv)
        func pad(_ v: Int32, _ w: Int) -> String {
            var s = "\(v)"
            while s.count < w { s = "0" + s }
            return s
        }
        return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2)) "
            + "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)):\(pad(Int32(ms % 1000), 3))"
    }

    /// JSON string literal.
    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// Buffered writes of raw bytes to a file descriptor (the console consumer's output).
public final class ByteOutput {
    private var buffer: [UInt8] = []
    private let fd: Int32
    private let limit: Int

    public init(fd: Int32 = 1, limit: Int = 1 << 16) {
        self.fd = fd
        self.limit = limit
        buffer.reserveCapacity(limit + 1024)
    }

    deinit { flush() }

    public func write(_ s: String) {
        var s = s
        s.withUTF8 { buffer.append(contentsOf: $0) }
        if buffer.count >= limit { flush() }
    }

    public func write(_ b: ByteBuffer) {
        b.withUnsafeReadableBytes { buffer.append(contentsOf: $0) }
        if buffer.count >= limit { flush() }
    }

    public func write(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= limit { flush() }
    }

    /// Writes out the buffer; false when the output is closed (e.g. a pipe to `head`).
    @discardableResult
    public func flush() -> Bool {
        guard !buffer.isEmpty else { return true }
        defer { buffer.removeAll(keepingCapacity: true) }
        return buffer.withUnsafeBufferPointer { p -> Bool in
            var done = 0
            while done < p.count {
                let n = Glibc.write(fd, p.baseAddress! + done, p.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                done += n
            }
            return true
        }
    }
}
