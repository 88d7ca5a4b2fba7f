import Foundation

/// An inclusive version range as the schemas write it: "0+", "3-7", "5", or "none".
struct VersionRange: Equatable {
    var lo: Int
    var hi: Int  // Int(Int16.max) for open-ended
    static let none = VersionRange(lo: 1, hi: 0)
    static let openHigh = Int(Int16.max)

    var isEmpty: Bool { lo > hi }

    init(lo: Int, hi: Int) {
        self.lo = lo
        self.hi = hi
    }

    init(_ text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "none" {
            self = .none
        } else if t.hasSuffix("+"), let lo = Int(t.dropLast()) {
            self.init(lo: lo, hi: Self.openHigh)
        } else if let dash = t.firstIndex(of: "-"), let lo = Int(t[..<dash]), let hi = Int(t[t.index(after: dash)...]) {
            self.init(lo: lo, hi: hi)
        } else if let v = Int(t) {
            self.init(lo: v, hi: v)
        } else {
            throw CodegenError("bad version range '\(text)'")
        }
    }

    func intersect(_ o: VersionRange) -> VersionRange {
        VersionRange(lo: max(lo, o.lo), hi: min(hi, o.hi))
    }

    func contains(_ o: VersionRange) -> Bool { o.isEmpty || (lo <= o.lo && hi >= o.hi) }
    func contains(_ v: Int) -> Bool { v >= lo && v <= hi }
}

struct CodegenError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// One field of a message or struct.
final class Field {
    let name: String
    let type: String            // as written: "int32", "[]Topic", "Topic"
    let versions: VersionRange
    let nullableVersions: VersionRange
    let taggedVersions: VersionRange
    let tag: Int?
    let defaultValue: String?
    let ignorable: Bool
    let flexibleOverride: VersionRange?
    let about: String?
    let fields: [Field]?        // inline struct declaration

    init(json: [String: Any], context: String) throws {
        guard let name = json["name"] as? String, let type = json["type"] as? String else {
            throw CodegenError("\(context): field without name/type")
        }
        self.name = name
        self.type = type
        self.versions = try VersionRange(json["versions"] as? String ?? (json["taggedVersions"] as? String ?? "none"))
        self.nullableVersions = try (json["nullableVersions"] as? String).map(VersionRange.init) ?? .none
        self.taggedVersions = try (json["taggedVersions"] as? String).map(VersionRange.init) ?? .none
        self.tag = json["tag"] as? Int
        if let d = json["default"] {
            if let s = d as? String { defaultValue = s } else if let n = d as? NSNumber { defaultValue = n.stringValue } else { defaultValue = "\(d)" }
        } else {
            defaultValue = nil
        }
        if let b = json["ignorable"] as? Bool { ignorable = b } else { ignorable = false }
        self.flexibleOverride = try (json["flexibleVersions"] as? String).map(VersionRange.init)
        self.about = json["about"] as? String
        if let fs = json["fields"] as? [[String: Any]] {
            self.fields = try fs.map { try Field(json: $0, context: "\(context).\(name)") }
        } else {
            self.fields = nil
        }
    }

    var isArray: Bool { type.hasPrefix("[]") }
    var elementType: String { isArray ? String(type.dropFirst(2)) : type }
    var isTagged: Bool { tag != nil }
    static let primitives: Set<String> = ["int8", "int16", "int32", "int64", "uint16", "float64", "bool", "string", "bytes", "records", "uuid"]
    var elementIsStruct: Bool { !Self.primitives.contains(elementType) }
    var isStruct: Bool { !isArray && elementIsStruct }
    var isNullableAnywhere: Bool { !nullableVersions.isEmpty }
}

/// A named struct: the message itself, a commonStruct, or an inline array/struct field.
struct StructDef {
    let name: String
    let fields: [Field]
    let versions: VersionRange
}

/// One schema file.
struct Schema {
    let fileName: String
    let folder: String           // message, metadata, raft, group-coordinator, transaction-coordinator
    let name: String
    let kind: String             // request, response, header, data, metadata
    let apiKey: Int?
    let validVersions: VersionRange
    let flexibleVersions: VersionRange
    let fields: [Field]
    let commonStructs: [StructDef]
    let listeners: [String]
    let latestVersionUnstable: Bool

    /// Every struct declared inside this schema (commonStructs and inline ones), in order.
    var nestedStructs: [StructDef] {
        var out = commonStructs
        var seen = Set(out.map(\.name))
        func walk(_ fs: [Field]) {
            for f in fs {
                if let sub = f.fields {
                    if !seen.contains(f.elementType) {
                        seen.insert(f.elementType)
                        out.append(StructDef(name: f.elementType, fields: sub, versions: f.versions))
                    }
                    walk(sub)
                }
            }
        }
        walk(fields)
        for cs in commonStructs { walk(cs.fields) }
        return out
    }
}

/// Removes `//` comments outside string literals.
func stripComments(_ s: String) -> String {
    var out = [UInt8]()
    let b = Array(s.utf8)
    out.reserveCapacity(b.count)
    var i = 0
    var inString = false
    while i < b.count {
        let c = b[i]
        if inString {
            out.append(c)
            if c == UInt8(ascii: "\\"), i + 1 < b.count {
                out.append(b[i + 1])
                i += 2
                continue
            }
            if c == UInt8(ascii: "\"") { inString = false }
            i += 1
        } else if c == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "/") {
            while i < b.count, b[i] != UInt8(ascii: "\n") { i += 1 }
        } else {
            if c == UInt8(ascii: "\"") { inString = true }
            out.append(c)
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

func loadSchema(path: String, folder: String) throws -> Schema {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let data = Data(stripComments(text).utf8)
    guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw CodegenError("\(path): not a JSON object")
    }
    guard let name = json["name"] as? String, let kind = json["type"] as? String else {
        throw CodegenError("\(path): missing name/type")
    }
    let fields = try (json["fields"] as? [[String: Any]] ?? []).map { try Field(json: $0, context: name) }
    let common = try (json["commonStructs"] as? [[String: Any]] ?? []).map { cs -> StructDef in
        let n = cs["name"] as? String ?? "?"
        let fs = try (cs["fields"] as? [[String: Any]] ?? []).map { try Field(json: $0, context: "\(name).\(n)") }
        return StructDef(name: n, fields: fs, versions: try VersionRange(cs["versions"] as? String ?? "0+"))
    }
    return Schema(
        fileName: (path as NSString).lastPathComponent,
        folder: folder,
        name: name,
        kind: kind,
        apiKey: json["apiKey"] as? Int,
        validVersions: try VersionRange(json["validVersions"] as? String ?? "0"),
        flexibleVersions: try VersionRange(json["flexibleVersions"] as? String ?? "none"),
        fields: fields,
        commonStructs: common,
        listeners: json["listeners"] as? [String] ?? [],
        latestVersionUnstable: json["latestVersionUnstable"] as? Bool ?? false
    )
}
