import Foundation

/// Swift keywords that need backticks when used as property names.
let swiftKeywords: Set<String> = [
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
    "inout", "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public",
    "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue",
    "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw",
    "switch", "where", "while", "as", "await", "false", "is", "nil", "self", "Self", "super", "throws",
    "true", "try", "Any", "Type",
]

func lowerFirst(_ s: String) -> String {
    guard let f = s.first else { return s }
    return f.lowercased() + s.dropFirst()
}

func propertyName(_ f: Field) -> String {
    let n = lowerFirst(f.name)
    return swiftKeywords.contains(n) ? "`\(n)`" : n
}

/// The property name without backticks, for use inside string literals.
func plainName(_ f: Field) -> String { lowerFirst(f.name) }

func swiftLiteral(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}

/// Writes the Swift source for one schema.
struct Emitter {
    let schema: Schema
    var lines: [String] = []
    var indent = 0

    /// Versions in which the message (and hence each of its structs) can be encoded.
    var valid: VersionRange { schema.validVersions }
    var flexible: VersionRange { schema.flexibleVersions.intersect(schema.validVersions) }
    var hasFlexible: Bool { !flexible.isEmpty }
    var structNames: Set<String> { Set(schema.nestedStructs.map(\.name)) }

    init(schema: Schema) { self.schema = schema }

    mutating func line(_ s: String = "") {
        lines.append(s.isEmpty ? "" : String(repeating: "    ", count: indent) + s)
    }

    mutating func block(_ head: String, _ body: (inout Emitter) throws -> Void) rethrows {
        line(head + " {")
        indent += 1
        try body(&self)
        indent -= 1
        line("}")
    }

    // MARK: types and defaults

    func elementSwiftType(_ t: String) -> String {
        switch t {
        case "int8": return "Int8"
        case "int16": return "Int16"
        case "int32": return "Int32"
        case "int64": return "Int64"
        case "uint16": return "UInt16"
        case "float64": return "Double"
        case "bool": return "Bool"
        case "string": return "String"
        case "bytes", "records": return "ByteBuffer"
        case "uuid": return "KafkaUUID"
        default: return t
        }
    }

    /// Whether the Swift property is an Optional.
    func isOptional(_ f: Field) -> Bool {
        if !f.isNullableAnywhere { return false }
        switch f.elementType {
        case "string", "bytes", "records": return true
        default: return f.isArray || f.isStruct
        }
    }

    func swiftType(_ f: Field) -> String {
        let base = f.isArray ? "[\(elementSwiftType(f.elementType))]" : elementSwiftType(f.type)
        return isOptional(f) ? base + "?" : base
    }

    func defaultExpr(_ f: Field) throws -> String {
        let d = f.defaultValue
        if isOptional(f), d == "null" || d == "None" { return "nil" }
        if d == "null" && !isOptional(f) && !f.isArray && !f.isStruct && f.elementType != "string" {
            throw CodegenError("\(schema.name).\(f.name): null default on a non-nullable field")
        }
        if f.isArray { return "[]" }
        switch f.type {
        case "int8", "int16", "int32", "int64", "uint16":
            guard let d, !d.isEmpty else { return "0" }
            if d.lowercased().hasPrefix("0x") || d.lowercased().hasPrefix("-0x") { return d }
            guard Int64(d) != nil else { throw CodegenError("\(schema.name).\(f.name): bad integer default \(d)") }
            return d
        case "float64":
            guard let d, !d.isEmpty else { return "0" }
            return d
        case "bool":
            return (d?.lowercased() == "true") ? "true" : "false"
        case "string":
            if d == "null" { return "nil" }
            return swiftLiteral(d ?? "")
        case "bytes", "records":
            return "ByteBuffer()"
        case "uuid":
            return "KafkaUUID.zero"
        default:
            return "\(f.type)()"
        }
    }

    /// A Swift boolean expression that is true when `version` lies in `r` (nil: always).
    func versionCond(_ r: VersionRange) -> String? {
        let v = valid
        let rr = r.intersect(v)
        if rr.isEmpty { return "false" }
        if rr.lo <= v.lo && rr.hi >= v.hi { return nil }
        if rr.lo <= v.lo { return "version <= \(rr.hi)" }
        if rr.hi >= v.hi { return "version >= \(rr.lo)" }
        if rr.lo == rr.hi { return "version == \(rr.lo)" }
        return "(version >= \(rr.lo) && version <= \(rr.hi))"
    }

    func compactExpr(_ f: Field) throws -> String {
        if let o = f.flexibleOverride {
            // Only "none" occurs in Kafka's schemas (RequestHeader.ClientId); anything else
            // would need per-field flexible ranges, which this generator does not emit.
            guard o.isEmpty else { throw CodegenError("\(schema.name).\(f.name): field-level flexibleVersions other than \"none\" is not supported") }
            return "false"
        }
        if flexible.isEmpty { return "false" }
        if flexible.contains(valid) { return "true" }
        return "flexible"
    }

    func minElementSize(_ t: String) -> Int {
        switch t {
        case "int16", "uint16": return 2
        case "int32": return 4
        case "int64", "float64": return 8
        case "uuid": return 16
        default: return 1
        }
    }

    // MARK: encode

    /// One statement writing a non-null scalar or struct value.
    func writeScalar(_ t: String, _ v: String, _ buf: String, _ c: String, nullable: Bool) -> String {
        switch t {
        case "int8", "int16", "int32", "int64", "uint16": return "\(buf).writeInteger(\(v))"
        case "float64": return "\(buf).writeKafkaFloat64(\(v))"
        case "bool": return "\(buf).writeKafkaBool(\(v))"
        case "uuid": return "\(buf).writeKafkaUUID(\(v))"
        case "string": return nullable ? "\(buf).writeKafkaNullableString(\(v), compact: \(c))" : "\(buf).writeKafkaString(\(v), compact: \(c))"
        case "bytes", "records": return nullable ? "\(buf).writeKafkaNullableBytes(\(v), compact: \(c))" : "\(buf).writeKafkaBytes(\(v), compact: \(c))"
        default: return "try \(v).encode(to: &\(buf), version: version)"
        }
    }

    func nullError(_ f: Field, _ structName: String) -> String {
        "throw WireError.unexpectedNull(field: \(swiftLiteral("\(structName).\(plainName(f))")))"
    }

    /// Statements that write field `f` (value `self.x`) to `buf`.
    mutating func emitWrite(_ f: Field, _ structName: String, buf: String, compact c: String) {
        let v = "self.\(propertyName(f))"
        let opt = isOptional(f)
        let nullCond = versionCond(f.nullableVersions.intersect(f.versions))
        let alwaysNullable = opt && f.nullableVersions.contains(f.versions.intersect(valid))
        if f.isArray {
            let et = f.elementType
            let body: (inout Emitter, String) -> Void = { e, arr in
                e.line("\(buf).writeKafkaArrayLength(\(arr).count, compact: \(c))")
                e.block("for element in \(arr)") { e in
                    e.line(e.writeScalar(et, "element", buf, c, nullable: false))
                }
            }
            if opt {
                block("if let array = \(v)") { e in body(&e, "array") }
                if alwaysNullable {
                    block("else") { e in e.line("\(buf).writeKafkaArrayLength(-1, compact: \(c))") }
                } else {
                    block("else if \(nullCond ?? "true")") { e in e.line("\(buf).writeKafkaArrayLength(-1, compact: \(c))") }
                    block("else") { e in e.line(e.nullError(f, structName)) }
                }
            } else {
                body(&self, v)
            }
        } else if f.isStruct {
            if opt {
                if alwaysNullable {
                    block("if let value = \(v)") { e in
                        e.line("\(buf).writeInteger(Int8(1))")
                        e.line("try value.encode(to: &\(buf), version: version)")
                    }
                    block("else") { e in e.line("\(buf).writeInteger(Int8(-1))") }
                } else {
                    block("if \(nullCond ?? "true")") { e in
                        e.block("if let value = \(v)") { e in
                            e.line("\(buf).writeInteger(Int8(1))")
                            e.line("try value.encode(to: &\(buf), version: version)")
                        }
                        e.block("else") { e in e.line("\(buf).writeInteger(Int8(-1))") }
                    }
                    block("else") { e in
                        e.block("guard let value = \(v) else") { e in e.line(e.nullError(f, structName)) }
                        e.line("try value.encode(to: &\(buf), version: version)")
                    }
                }
            } else {
                line("try \(v).encode(to: &\(buf), version: version)")
            }
        } else {
            if opt && !alwaysNullable {
                block("if \(nullCond ?? "true")") { e in e.line(e.writeScalar(f.type, v, buf, c, nullable: true)) }
                block("else") { e in
                    e.block("guard let value = \(v) else") { e in e.line(e.nullError(f, structName)) }
                    e.line(e.writeScalar(f.type, "value", buf, c, nullable: false))
                }
            } else {
                line(writeScalar(f.type, v, buf, c, nullable: opt))
            }
        }
    }

    // MARK: decode

    func readScalar(_ t: String, _ buf: String, _ c: String, nullable: Bool) -> String {
        switch t {
        case "int8", "int16", "int32", "int64", "uint16": return "try \(buf).readKafkaInt(as: \(elementSwiftType(t)).self)"
        case "float64": return "try \(buf).readKafkaFloat64()"
        case "bool": return "try \(buf).readKafkaBool()"
        case "uuid": return "try \(buf).readKafkaUUID()"
        case "string": return nullable ? "try \(buf).readKafkaNullableString(compact: \(c))" : "try \(buf).readKafkaString(compact: \(c))"
        case "bytes", "records": return nullable ? "try \(buf).readKafkaNullableBytes(compact: \(c))" : "try \(buf).readKafkaBytes(compact: \(c))"
        default: return "try \(t)(from: &\(buf), version: version)"
        }
    }

    mutating func emitRead(_ f: Field, _ structName: String, buf: String, compact c: String) {
        let v = "self.\(propertyName(f))"
        let opt = isOptional(f)
        let nullCond = versionCond(f.nullableVersions.intersect(f.versions))
        let alwaysNullable = opt && f.nullableVersions.contains(f.versions.intersect(valid))
        if f.isArray {
            let et = f.elementType
            block("do") { e in
                e.line("let count = try \(buf).readKafkaArrayLength(compact: \(c), minElementSize: \(e.minElementSize(et)))")
                e.block("if count < 0") { e in
                    if opt && alwaysNullable {
                        e.line("\(v) = nil")
                    } else if opt {
                        e.block("guard \(nullCond ?? "true") else") { e in e.line(e.nullError(f, structName)) }
                        e.line("\(v) = nil")
                    } else {
                        e.line(e.nullError(f, structName))
                    }
                }
                e.block("else") { e in
                    e.line("var array: [\(e.elementSwiftType(et))] = []")
                    e.line("array.reserveCapacity(count)")
                    e.block("for _ in 0..<count") { e in
                        e.line("array.append(\(e.readScalar(et, buf, c, nullable: false)))")
                    }
                    e.line("\(v) = array")
                }
            }
        } else if f.isStruct {
            if opt {
                let readNullable: (inout Emitter) -> Void = { e in
                    e.line("let present = try \(buf).readKafkaInt(as: Int8.self)")
                    e.line("\(v) = present < 0 ? nil : try \(f.type)(from: &\(buf), version: version)")
                }
                if alwaysNullable {
                    readNullable(&self)
                } else {
                    block("if \(nullCond ?? "true")") { e in readNullable(&e) }
                    block("else") { e in e.line("\(v) = try \(f.type)(from: &\(buf), version: version)") }
                }
            } else {
                line("\(v) = try \(f.type)(from: &\(buf), version: version)")
            }
        } else {
            if opt && !alwaysNullable {
                block("if \(nullCond ?? "true")") { e in e.line("\(v) = \(e.readScalar(f.type, buf, c, nullable: true))") }
                block("else") { e in e.line("\(v) = \(e.readScalar(f.type, buf, c, nullable: false))") }
            } else {
                line("\(v) = \(readScalar(f.type, buf, c, nullable: opt))")
            }
        }
    }

    // MARK: structs

    mutating func emitStruct(name: String, fields: [Field], isRoot: Bool) throws {
        let conformance: String
        switch (isRoot, schema.kind) {
        case (true, "request"): conformance = "KafkaRequest"
        case (true, "response"): conformance = "KafkaResponse"
        case (true, _): conformance = "KafkaMessage"
        default: conformance = "KafkaCodable, Hashable"
        }
        let regular = fields.filter { !$0.isTagged }
        let tagged = fields.filter { $0.isTagged }.sorted { $0.tag! < $1.tag! }
        try block("public struct \(name): \(conformance)") { e in
            if isRoot {
                if e.schema.apiKey != nil, e.schema.kind == "request" || e.schema.kind == "response" {
                    e.line("public static let apiKey: ApiKey = .\(apiKeyCaseName(e.schema.name))")
                }
                e.line("public static let messageName = \(swiftLiteral(e.schema.name))")
                e.line("public static let validVersions: ClosedRange<Int16> = \(e.valid.lo)...\(e.valid.hi)")
                if e.hasFlexible {
                    e.line("public static let firstFlexibleVersion: Int16? = \(e.flexible.lo)")
                } else {
                    e.line("public static let firstFlexibleVersion: Int16? = nil")
                }
                e.line()
            }
            for f in fields {
                if let about = f.about { e.line("/// \(about.replacingOccurrences(of: "\n", with: " "))") }
                e.line("public var \(propertyName(f)): \(e.swiftType(f)) = \(try e.defaultExpr(f))")
            }
            if e.hasFlexible {
                e.line("/// Tagged fields this version of Fjord does not know; written back unchanged.")
                e.line("public var unknownTaggedFields: [RawTaggedField] = []")
            }
            e.line()
            e.line("public init() {}")
            e.line()
            // decode
            try e.block("public init(from buf: inout ByteBuffer, version: Int16) throws") { e in
                if isRoot {
                    e.block("guard Self.validVersions.contains(version) else") { e in
                        e.line("throw WireError.unsupportedVersion(message: Self.messageName, version: version)")
                    }
                }
                if e.hasFlexible && !e.flexible.contains(e.valid) {
                    e.line("let flexible = version >= \(e.flexible.lo)")
                }
                for f in regular {
                    let present = f.versions
                    if present.intersect(e.valid).isEmpty { continue }
                    let c = try e.compactExpr(f)
                    if let cond = e.versionCond(present) {
                        e.block("if \(cond)") { e in e.emitRead(f, name, buf: "buf", compact: c) }
                    } else {
                        e.emitRead(f, name, buf: "buf", compact: c)
                    }
                }
                if e.hasFlexible {
                    let flex = e.flexible.contains(e.valid) ? nil : "flexible"
                    let body: (inout Emitter) -> Void = { e in
                        e.line("var tagged = try TaggedFieldReader(from: &buf)")
                        e.block("while let (tag, data) = try tagged.next(from: &buf)") { e in
                            if tagged.isEmpty {
                                e.line("unknownTaggedFields.append(RawTaggedField(tag: tag, data: data))")
                            } else {
                                e.block("switch tag") { e in
                                    for f in tagged {
                                        let cond = e.versionCond(f.taggedVersions)
                                        e.line("case \(f.tag!)\(cond.map { " where \($0)" } ?? ""):")
                                        e.indent += 1
                                        e.line("var sub = data")
                                        e.emitRead(f, name, buf: "sub", compact: "true")
                                        e.indent -= 1
                                    }
                                    e.line("default:")
                                    e.line("    unknownTaggedFields.append(RawTaggedField(tag: tag, data: data))")
                                }
                            }
                        }
                    }
                    if let flex { e.block("if \(flex)") { e in body(&e) } } else { body(&e) }
                }
            }
            e.line()
            // encode
            try e.block("public func encode(to buf: inout ByteBuffer, version: Int16) throws") { e in
                if isRoot {
                    e.block("guard Self.validVersions.contains(version) else") { e in
                        e.line("throw WireError.unsupportedVersion(message: Self.messageName, version: version)")
                    }
                }
                if e.hasFlexible && !e.flexible.contains(e.valid) {
                    e.line("let flexible = version >= \(e.flexible.lo)")
                }
                for f in regular {
                    let c = try e.compactExpr(f)
                    let present = f.versions
                    let notSupported = "throw WireError.fieldNotSupported(field: \(swiftLiteral("\(name).\(plainName(f))")), version: version)"
                    if present.intersect(e.valid).isEmpty {
                        if !f.ignorable {
                            e.block("if self.\(propertyName(f)) != \(try e.defaultExpr(f))") { e in e.line(notSupported) }
                        }
                        continue
                    }
                    if let cond = e.versionCond(present) {
                        e.block("if \(cond)") { e in e.emitWrite(f, name, buf: "buf", compact: c) }
                        if !f.ignorable {
                            e.block("else if self.\(propertyName(f)) != \(try e.defaultExpr(f))") { e in e.line(notSupported) }
                        }
                    } else {
                        e.emitWrite(f, name, buf: "buf", compact: c)
                    }
                }
                // A non-ignorable tagged field set where the version cannot carry it is an error.
                for f in tagged where !f.ignorable && !f.taggedVersions.intersect(e.flexible).contains(e.valid) {
                    let cond = e.versionCond(f.taggedVersions.intersect(e.flexible)) ?? "true"
                    e.block("if !(\(cond)), self.\(propertyName(f)) != \(try e.defaultExpr(f))") { e in
                        e.line("throw WireError.fieldNotSupported(field: \(swiftLiteral("\(name).\(plainName(f))")), version: version)")
                    }
                }
                if e.hasFlexible {
                    let flex = e.flexible.contains(e.valid) ? nil : "flexible"
                    let body: (inout Emitter) throws -> Void = { e in
                        if tagged.isEmpty {
                            e.line("var tagged = TaggedFieldWriter()")
                        } else {
                            e.line("var tagged = TaggedFieldWriter()")
                            for f in tagged {
                                var conds = ["self.\(propertyName(f)) != \(try e.defaultExpr(f))"]
                                if let vc = e.versionCond(f.taggedVersions) { conds.insert(vc, at: 0) }
                                e.block("if \(conds.joined(separator: ", "))") { e in
                                    e.line("var sub = ByteBuffer()")
                                    e.emitWrite(f, name, buf: "sub", compact: "true")
                                    e.line("tagged.add(tag: \(f.tag!), data: sub)")
                                }
                            }
                        }
                        e.line("tagged.write(to: &buf, unknown: unknownTaggedFields)")
                    }
                    if let flex { try e.block("if \(flex)") { e in try body(&e) } } else { try body(&e) }
                }
            }
        }
    }

    mutating func emitFile() throws -> String {
        line("// Generated by fjord-codegen from \(schema.folder)/\(schema.fileName). Do not edit.")
        line("// Regenerate: swift run fjord-codegen --schemas ../shared/kafka-schemas --output Sources/FjordProtocol/Generated")
        line()
        line("import FjordWire")
        line("import NIOCore")
        line()
        try emitStruct(name: schema.name, fields: schema.fields, isRoot: true)
        for s in schema.nestedStructs {
            line()
            try block("extension \(schema.name)") { e in
                try e.emitStruct(name: s.name, fields: s.fields, isRoot: false)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `ProduceRequest` → `produce`; `DescribeQuorumResponse` → `describeQuorum`.
func apiKeyCaseName(_ messageName: String) -> String {
    var n = messageName
    for suffix in ["Request", "Response"] where n.hasSuffix(suffix) {
        n = String(n.dropLast(suffix.count))
    }
    return lowerFirst(n)
}
