import FjordStorage

/// A Java `.properties` file as Kafka reads it: `key=value`, `key:value` or `key value`,
/// comments starting with `#` or `!`, a trailing `\` continues the line, `\t \n \\ \=`
/// escapes. Later keys override earlier ones.
public struct JavaProperties: Sendable, Equatable {
    public var values: [String: String] = [:]
    /// The keys in file order (for warnings that read like the file).
    public var order: [String] = []

    public init(_ values: [String: String] = [:]) {
        self.values = values
        self.order = values.keys.sorted()
    }

    public subscript(key: String) -> String? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { order.append(key) }
            values[key] = newValue
            if newValue == nil { order.removeAll { $0 == key } }
        }
    }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var line: Int
        public var reason: String
        public var description: String { "\(path):\(line): \(reason)" }
    }

    public static func load(path: String) throws -> JavaProperties {
        guard FileSystem.exists(path) else {
            throw ParseError(path: path, line: 0, reason: "no such properties file")
        }
        return try parse(try FileSystem.readString(path), path: path)
    }

    public static func parse(_ text: String, path: String = "<properties>") throws -> JavaProperties {
        var props = JavaProperties()
        var logical = ""
        var startLine = 0
        var lineNo = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if logical.isEmpty {
                line = line.drop(while: { $0 == " " || $0 == "\t" || $0 == "\u{0C}" })
                if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
                startLine = lineNo
            } else {
                line = line.drop(while: { $0 == " " || $0 == "\t" })
            }
            // An odd number of trailing backslashes continues the logical line.
            let trailing = line.reversed().prefix(while: { $0 == "\\" }).count
            if trailing % 2 == 1 {
                logical += line.dropLast()
                continue
            }
            logical += line
            let (k, v) = try split(logical, path: path, line: startLine)
            props[k] = v
            logical = ""
        }
        if !logical.isEmpty {
            let (k, v) = try split(logical, path: path, line: startLine)
            props[k] = v
        }
        return props
    }

    private static func split(_ line: String, path: String, line no: Int) throws -> (String, String) {
        var key = ""
        var i = line.startIndex
        var escaped = false
        while i < line.endIndex {
            let c = line[i]
            if escaped {
                key.append(unescape(c))
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "=" || c == ":" || c == " " || c == "\t" {
                break
            } else {
                key.append(c)
            }
            i = line.index(after: i)
        }
        // Skip whitespace, one separator, whitespace.
        while i < line.endIndex, line[i] == " " || line[i] == "\t" { i = line.index(after: i) }
        if i < line.endIndex, line[i] == "=" || line[i] == ":" { i = line.index(after: i) }
        while i < line.endIndex, line[i] == " " || line[i] == "\t" { i = line.index(after: i) }
        var value = ""
        escaped = false
        while i < line.endIndex {
            let c = line[i]
            if escaped {
                value.append(unescape(c))
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                value.append(c)
            }
            i = line.index(after: i)
        }
        guard !key.isEmpty else { throw ParseError(path: path, line: no, reason: "a line with a value but no key: \"\(line)\"") }
        // Kafka trims values of its typed configs; trailing blanks in a file are a common slip.
        while value.last == " " || value.last == "\t" { value.removeLast() }
        return (key, value)
    }

    private static func unescape(_ c: Character) -> Character {
        switch c {
        case "t": return "\t"
        case "n": return "\n"
        case "r": return "\r"
        case "f": return "\u{0C}"
        default: return c
        }
    }
}
