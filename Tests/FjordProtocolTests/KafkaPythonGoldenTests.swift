import FjordProtocol
import FjordTestSupport
import FjordWire
import Foundation
import NIOCore
import XCTest

/// Golden tests against kafka-python, an implementation of the wire protocol written
/// independently of Fjord's generator. kafka-python 3 ships two, and both are checked:
///
/// - `legacy`: `kafka.protocol.old`, the hand-written per-version `Struct` classes of
///   kafka-python 2.x (37 APIs, e.g. Produce v0-8, Fetch v0-11, Metadata v0-8);
/// - `json`: `kafka.protocol.*` (`MetadataRequest`, ...), kafka-python 3's own codec driven by
///   the Kafka JSON schemas it bundles (a newer Kafka than ../shared/kafka-schemas; 51 of its
///   APIs are in ours), at versions 0 through its maximum.
///
/// For each message kafka-python defines, at every version both it and our schema define, a
/// builder in `KafkaPythonGolden+Cases.swift` makes a value with every field of that version
/// set (not to the default; arrays of two or more; nulls where nullable). The value goes to a
/// single Python process as JSON (Swift property names; kafka-python's are matched ignoring
/// case and underscores, plus a few aliases), which builds the kafka-python object from it and
/// encodes it. Swift then decodes Python's bytes, which must give back an equal value with no
/// bytes left, and encodes its own value, which must give Python's bytes exactly.
///
/// The generated `sample(version:)` values are run the same way for every message kafka-python
/// defines: the only values for the messages without a hand-written builder, and a second set
/// for the others. Where kafka-python disagrees with the schema, the schema wins: see
/// `kafkaPythonKnownDisagreements`.
final class KafkaPythonGoldenTests: XCTestCase {

    // MARK: Bodies

    func testBodiesMatchKafkaPython() throws {
        let catalog = try GoldenPython.catalog()
        var cases: [GoldenCase] = []
        var counts: [String: (messages: Set<String>, versions: Int)] = [:]
        for b in GoldenBuilders.all() {
            for impl in GoldenImpl.allCases {
                for v in catalog.versions(of: b.name, impl: impl) where b.validVersions.contains(v) {
                    let ctx = GoldenContext(v: v, impl: impl, batches: catalog.batches)
                    cases.append(b.bodyCase(ctx))
                    let key = "\(impl.rawValue) \(b.handWritten ? "hand-written" : "generated sample")"
                    counts[key, default: ([], 0)].messages.insert(b.name)
                    counts[key, default: ([], 0)].versions += 1
                }
            }
        }
        let summary = try GoldenPython.run(cases, name: "bodies")
        for (k, c) in counts.sorted(by: { $0.key < $1.key }) {
            print("kafka-python golden, \(k): \(c.messages.count) messages, \(c.versions) message versions")
        }
        print("kafka-python golden: \(summary.passed) cases agree, \(summary.excluded) known disagreements")
        // Guard against the catalog silently shrinking (a kafka-python upgrade renaming things).
        XCTAssertEqual(counts["legacy hand-written"]?.messages.count, 74)
        XCTAssertEqual(counts["json hand-written"]?.messages.count, 76)
    }

    // MARK: Headers

    /// kafka-python's request headers (`with_header` + `encode(header=True)`) decode as Fjord's
    /// `RequestHeader` at `ApiKey.requestHeaderVersion(for:)` (v1 for a non-flexible API
    /// version, v2 for a flexible one), the body follows, and both re-encode identically.
    /// Responses: ApiVersions v3 (a flexible body) still uses response header v0 (KIP-511);
    /// other flexible responses use v1.
    func testHeadersMatchKafkaPython() throws {
        let catalog = try GoldenPython.catalog()
        func ctx(_ v: Int16, _ impl: GoldenImpl) -> GoldenContext {
            GoldenContext(v: v, impl: impl, batches: catalog.batches)
        }
        let b = GoldenBuilders.self
        let cases: [GoldenCase] = [
            // Non-flexible: header v1.
            .requestHeader(b.metadataRequest(ctx(8, .legacy)), ctx(8, .legacy), correlationId: 7, clientId: "legacy-client"),
            .requestHeader(b.produceRequest(ctx(8, .legacy)), ctx(8, .legacy), correlationId: -5, clientId: nil),
            .requestHeader(b.metadataRequest(ctx(4, .json)), ctx(4, .json), correlationId: 123_456, clientId: "cli-é"),
            .requestHeader(b.fetchRequest(ctx(11, .json)), ctx(11, .json), correlationId: 1, clientId: ""),
            .requestHeader(b.listGroupsRequest(ctx(2, .legacy)), ctx(2, .legacy), correlationId: 3, clientId: "x"),
            // Flexible: header v2 (client id still a non-compact string, then tagged fields).
            .requestHeader(b.apiVersionsRequest(ctx(3, .legacy)), ctx(3, .legacy), correlationId: 42, clientId: "legacy-client"),
            .requestHeader(b.apiVersionsRequest(ctx(3, .json)), ctx(3, .json), correlationId: 43, clientId: "kafka-python"),
            .requestHeader(b.metadataRequest(ctx(12, .json)), ctx(12, .json), correlationId: Int32.max, clientId: "cli"),
            .requestHeader(b.produceRequest(ctx(9, .json)), ctx(9, .json), correlationId: 99, clientId: nil),
            .requestHeader(b.fetchRequest(ctx(17, .json)), ctx(17, .json), correlationId: 100, clientId: "fetcher"),
            // Responses.
            .responseHeader(b.apiVersionsResponse(ctx(3, .json)), ctx(3, .json), correlationId: 43, expectedHeaderVersion: 0),
            .responseHeader(b.apiVersionsResponse(ctx(3, .legacy)), ctx(3, .legacy), correlationId: 42, expectedHeaderVersion: 0),
            .responseHeader(b.apiVersionsResponse(ctx(2, .json)), ctx(2, .json), correlationId: 41, expectedHeaderVersion: 0),
            .responseHeader(b.metadataResponse(ctx(9, .json)), ctx(9, .json), correlationId: 12, expectedHeaderVersion: 1),
            .responseHeader(b.metadataResponse(ctx(8, .json)), ctx(8, .json), correlationId: 11, expectedHeaderVersion: 0),
            .responseHeader(b.fetchResponse(ctx(12, .json)), ctx(12, .json), correlationId: 13, expectedHeaderVersion: 1),
        ]
        let summary = try GoldenPython.run(cases, name: "headers")
        XCTAssertEqual(summary.passed + summary.excluded, cases.count)
    }
}

// MARK: - Cases

enum GoldenImpl: String, CaseIterable {
    case legacy, json
}

/// What a builder gets: the version, which kafka-python implementation the value is for
/// (only to leave out what the legacy classes cannot express, each documented where it
/// happens) and the record batches kafka-python built.
struct GoldenContext {
    let v: Int16
    let impl: GoldenImpl
    let batches: [ByteBuffer]

    var legacy: Bool { impl == .legacy }
    /// Alternates with the version, so nullable fields are both null and set across versions.
    var odd: Bool { v % 2 == 1 }
}

struct GoldenBuilder {
    let name: String
    let validVersions: ClosedRange<Int16>
    let handWritten: Bool
    let bodyCase: (GoldenContext) -> GoldenCase

    init<M: KafkaMessage>(_ type: M.Type, handWritten: Bool = true, _ make: @escaping (GoldenContext) -> M) {
        name = M.messageName
        validVersions = M.validVersions
        self.handWritten = handWritten
        bodyCase = { ctx in .body(make(ctx), ctx, sample: !handWritten) }
    }
}

/// One thing for Python to encode, and how to check its bytes.
struct GoldenCase {
    let label: String
    /// The JSON object for the Python side (without "id").
    let request: [String: GoldenJSON]
    /// Returns the failures, empty when Fjord agrees with kafka-python's bytes.
    let verify: ([UInt8]) -> [String]

    static func body<M: KafkaMessage>(_ value: M, _ ctx: GoldenContext, sample: Bool = false) -> GoldenCase {
        GoldenCase(
            label: "\(ctx.impl.rawValue) \(M.messageName) v\(ctx.v)" + (sample ? " (generated sample)" : ""),
            request: [
                "impl": .string(ctx.impl.rawValue), "msg": .string(M.messageName),
                "v": .int(Int64(ctx.v)), "value": GoldenJSON.of(value),
            ],
            verify: { python in
                var buf = ByteBuffer(bytes: python)
                return checkBody(value, version: ctx.v, python: python, buf: &buf)
            })
    }

    static func requestHeader<M: KafkaRequest>(_ value: M, _ ctx: GoldenContext, correlationId: Int32, clientId: String?) -> GoldenCase {
        GoldenCase(
            label: "\(ctx.impl.rawValue) request header + \(M.messageName) v\(ctx.v)",
            request: [
                "impl": .string(ctx.impl.rawValue), "msg": .string(M.messageName), "v": .int(Int64(ctx.v)),
                "value": GoldenJSON.of(value), "kind": .string("header"),
                "correlationId": .int(Int64(correlationId)), "clientId": clientId.map { .string($0) } ?? .null,
            ],
            verify: { python in
                var failures: [String] = []
                let hv = M.apiKey.requestHeaderVersion(for: ctx.v)
                if hv != (M.isFlexible(ctx.v) ? 2 : 1) { failures.append("requestHeaderVersion(for: \(ctx.v)) = \(hv)") }
                var expected = RequestHeader()
                expected.requestApiKey = M.apiKey.rawValue
                expected.requestApiVersion = ctx.v
                expected.correlationId = correlationId
                expected.clientId = clientId
                var buf = ByteBuffer(bytes: python)
                do {
                    let header = try RequestHeader(from: &buf, version: hv)
                    if header != expected { failures.append("header decoded as \(header), expected \(expected)") }
                    var mine = try header.encoded(version: hv)
                    mine.writeImmutableBuffer(try value.encoded(version: ctx.v))
                    if Array(mine.readableBytesView) != python {
                        failures.append(byteDiff(swift: Array(mine.readableBytesView), python: python))
                    }
                } catch {
                    return ["header v\(hv) decode/encode threw \(error)"]
                }
                let headerLength = python.count - buf.readableBytes
                return failures + checkBody(value, version: ctx.v, python: Array(python[headerLength...]), buf: &buf)
            })
    }

    static func responseHeader<M: KafkaResponse>(_ value: M, _ ctx: GoldenContext, correlationId: Int32, expectedHeaderVersion: Int16)
        -> GoldenCase
    {
        GoldenCase(
            label: "\(ctx.impl.rawValue) response header + \(M.messageName) v\(ctx.v)",
            request: [
                "impl": .string(ctx.impl.rawValue), "msg": .string(M.messageName), "v": .int(Int64(ctx.v)),
                "value": GoldenJSON.of(value), "kind": .string("header"), "correlationId": .int(Int64(correlationId)),
            ],
            verify: { python in
                var failures: [String] = []
                let hv = M.apiKey.responseHeaderVersion(for: ctx.v)
                if hv != expectedHeaderVersion {
                    failures.append("responseHeaderVersion(for: \(ctx.v)) = \(hv), expected \(expectedHeaderVersion)")
                }
                var expected = ResponseHeader()
                expected.correlationId = correlationId
                var buf = ByteBuffer(bytes: python)
                do {
                    let header = try ResponseHeader(from: &buf, version: hv)
                    if header != expected { failures.append("header decoded as \(header), expected \(expected)") }
                    var mine = try header.encoded(version: hv)
                    mine.writeImmutableBuffer(try value.encoded(version: ctx.v))
                    if Array(mine.readableBytesView) != python {
                        failures.append(byteDiff(swift: Array(mine.readableBytesView), python: python))
                    }
                } catch {
                    return ["header v\(hv) decode/encode threw \(error)"]
                }
                let headerLength = python.count - buf.readableBytes
                return failures + checkBody(value, version: ctx.v, python: Array(python[headerLength...]), buf: &buf)
            })
    }
}

/// Decodes `buf` (Python's encoding of `expected`) and encodes `expected`.
private func checkBody<M: KafkaMessage>(_ expected: M, version: Int16, python: [UInt8], buf: inout ByteBuffer) -> [String] {
    var failures: [String] = []
    do {
        let decoded = try M(from: &buf, version: version)
        if buf.readableBytes != 0 { failures.append("decode left \(buf.readableBytes) of \(python.count) bytes") }
        if decoded != expected {
            failures.append("decoded value differs: " + GoldenJSON.diff(GoldenJSON.of(decoded), GoldenJSON.of(expected)))
        }
    } catch {
        failures.append("decoding Python's \(python.count) bytes threw \(error)")
    }
    do {
        let mine = Array(try expected.encoded(version: version).readableBytesView)
        if mine != python { failures.append(byteDiff(swift: mine, python: python)) }
    } catch {
        failures.append("encoding threw \(error)")
    }
    return failures
}

private func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined()
}

private func byteDiff(swift: [UInt8], python: [UInt8]) -> String {
    let n = min(swift.count, python.count)
    let at = (0..<n).first { swift[$0] != python[$0] } ?? n
    let from = max(0, at - 8)
    return "encoding differs at byte \(at) (Swift \(swift.count) bytes, Python \(python.count)): "
        + "Swift …\(hex(swift[from..<min(swift.count, at + 24)])) Python …\(hex(python[from..<min(python.count, at + 24)]))"
}

// MARK: - Python

/// Known, explained disagreements between kafka-python and the official schema (which wins),
/// by case label (covering the generated-sample case of the same message version too). Each
/// is still run: if it starts agreeing the test fails so the entry is removed.
let kafkaPythonKnownDisagreements: [String: String] = [
    // kafka.protocol.old.admin: DescribeAclsRequest_v2 / DescribeAclsResponse_v2 say "Enable
    // flexible version" but reuse the v1 SCHEMA (INT16-length strings, INT32-length arrays,
    // no tagged fields). DescribeAcls is flexible from v2 ("flexibleVersions": "2+").
    "legacy DescribeAclsRequest v2": "kafka-python's legacy v2 is not flexible",
    "legacy DescribeAclsResponse v2": "kafka-python's legacy v2 is not flexible",
    // kafka.protocol.old.admin: DescribeLogDirsRequest_v0 declares Topics[].Partitions as a
    // single Int32; the schema has "[]int32", so kafka-python cannot encode a real request.
    "legacy DescribeLogDirsRequest v0": "kafka-python's legacy Partitions is Int32, not []int32",
    // kafka.protocol.old.admin: ListGroupsRequest_v2 has API_VERSION = 1, so the header it
    // writes says version 1 (the v2 body is empty, so the body alone agrees).
    "legacy request header + ListGroupsRequest v2": "kafka-python's ListGroupsRequest_v2 claims API version 1",
    // kafka.protocol.old.api_versions: ApiVersionsResponse_v3/v4 end in a raw `tags` dict and
    // have no named SupportedFeatures / FinalizedFeaturesEpoch / FinalizedFeatures /
    // ZkMigrationReady tagged fields, which the generated sample sets (the hand-written
    // builder leaves them out for the legacy classes).
    "legacy ApiVersionsResponse v3 (generated sample)": "kafka-python's legacy class has no named tagged fields",
    "legacy ApiVersionsResponse v4 (generated sample)": "kafka-python's legacy class has no named tagged fields",
]

struct GoldenCatalog {
    var legacy: [String: [Int16]]
    var json: [String: ClosedRange<Int16>]
    var batches: [ByteBuffer]

    func versions(of name: String, impl: GoldenImpl) -> [Int16] {
        switch impl {
        case .legacy: return legacy[name] ?? []
        case .json: return json[name].map { Array($0) } ?? []
        }
    }
}

enum GoldenPython {
    struct Summary { var passed = 0; var excluded = 0 }

    /// The kafka-python classes and versions, and record batches built by kafka-python's
    /// `DefaultRecordBatchBuilder` (for Produce and Fetch records).
    static func catalog() throws -> GoldenCatalog {
        let out = try TestPython.run(kafkaPythonGoldenScript, args: ["catalog"])
        let obj = try JSONSerialization.jsonObject(with: Data(out)) as! [String: Any]
        let legacy = (obj["legacy"] as! [String: [Int]]).mapValues { $0.map(Int16.init) }
        let json = (obj["json"] as! [String: [Int]]).mapValues { Int16($0[0])...Int16($0[1]) }
        let batches = (obj["batches"] as! [String]).map { ByteBuffer(bytes: bytes(fromHex: $0)) }
        return GoldenCatalog(legacy: legacy, json: json, batches: batches)
    }

    /// Encodes every case in one Python process and checks each against Fjord.
    @discardableResult
    static func run(_ cases: [GoldenCase], name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Summary {
        var items: [GoldenJSON] = []
        for (i, c) in cases.enumerated() {
            var r = c.request
            r["id"] = .int(Int64(i))
            items.append(.object(r))
        }
        let input = GoldenJSON.object(["cases": .array(items)]).text
        // To debug the Python side by hand: FJORD_GOLDEN_DUMP=/tmp/golden writes
        // /tmp/golden-bodies.json etc.; then `python -c "$script" encode < /tmp/golden-bodies.json`.
        if let path = ProcessInfo.processInfo.environment["FJORD_GOLDEN_DUMP"] {
            try input.write(toFile: "\(path)-\(name).json", atomically: true, encoding: .utf8)
        }
        let out = try TestPython.run(kafkaPythonGoldenScript, args: ["encode"], stdin: Array(input.utf8))
        let obj = try JSONSerialization.jsonObject(with: Data(out)) as! [String: Any]
        let results = obj["results"] as! [[String: Any]]
        XCTAssertEqual(results.count, cases.count, file: file, line: line)
        var summary = Summary()
        for r in results {
            let c = cases[r["id"] as! Int]
            var failures: [String]
            if let error = r["error"] as? String {
                failures = ["kafka-python could not encode it: \(error)"]
            } else {
                failures = c.verify(bytes(fromHex: r["hex"] as! String))
                if !failures.isEmpty, let unused = r["unused"] as? [String], !unused.isEmpty {
                    failures.append("(Swift fields kafka-python did not take: \(unused.joined(separator: ", ")))")
                }
            }
            let known =
                kafkaPythonKnownDisagreements[c.label]
                ?? kafkaPythonKnownDisagreements[c.label.replacingOccurrences(of: " (generated sample)", with: "")]
            if let reason = known {
                if failures.isEmpty {
                    XCTFail("\(c.label): listed as a known disagreement (\(reason)) but now agrees; remove it", file: file, line: line)
                }
                summary.excluded += 1
            } else if failures.isEmpty {
                summary.passed += 1
            } else {
                XCTFail("\(c.label): " + failures.joined(separator: "; "), file: file, line: line)
            }
        }
        return summary
    }

    static func bytes(fromHex s: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count / 2)
        var it = s.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57 }
        while let h = it.next(), let l = it.next() { out.append(nibble(h) << 4 | nibble(l)) }
        return out
    }
}

// MARK: - JSON for the Python side

/// A JSON value. `of(_:)` turns any generated message into one by reflection: structs become
/// objects keyed by the Swift property names, `ByteBuffer` becomes `{"$b": hex}`, `KafkaUUID`
/// `{"$u": hex}`, nil `null`. Unknown tagged fields are left out.
indirect enum GoldenJSON: Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([GoldenJSON])
    case object([String: GoldenJSON])

    static func of(_ value: Any) -> GoldenJSON {
        switch value {
        case let b as ByteBuffer: return .object(["$b": .string(hex(b.readableBytesView))])
        case let u as KafkaUUID:
            let h = String(u.high, radix: 16), l = String(u.low, radix: 16)
            return .object([
                "$u": .string(String(repeating: "0", count: 16 - h.count) + h + String(repeating: "0", count: 16 - l.count) + l)
            ])
        case let s as String: return .string(s)
        case let b as Bool: return .bool(b)
        case let d as Double: return .double(d)
        case let i as any BinaryInteger: return .int(Int64(i))
        default: break
        }
        let m = Mirror(reflecting: value)
        switch m.displayStyle {
        case .optional: return m.children.first.map { of($0.value) } ?? .null
        case .collection: return .array(m.children.map { of($0.value) })
        case .struct:
            var obj: [String: GoldenJSON] = [:]
            for child in m.children {
                guard let label = child.label, label != "unknownTaggedFields" else { continue }
                obj[label] = of(child.value)
            }
            return .object(obj)
        default:
            preconditionFailure("no JSON for \(type(of: value))")
        }
    }

    var text: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return "\(d)"
        case .string(let s): return Self.quote(s)
        case .array(let a): return "[" + a.map(\.text).joined(separator: ",") + "]"
        case .object(let o):
            return "{" + o.sorted { $0.key < $1.key }.map { Self.quote($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        }
    }

    private static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// The first few paths where `a` (decoded) and `b` (expected) differ.
    static func diff(_ a: GoldenJSON, _ b: GoldenJSON) -> String {
        var out: [String] = []
        walk(a, b, "", &out)
        return out.prefix(5).joined(separator: ", ")
    }

    private static func walk(_ a: GoldenJSON, _ b: GoldenJSON, _ path: String, _ out: inout [String]) {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            for k in Set(x.keys).union(y.keys).sorted() where x[k] != y[k] {
                walk(x[k] ?? .null, y[k] ?? .null, path + "." + k, &out)
            }
        case (.array(let x), .array(let y)) where x.count == y.count:
            for (i, (p, q)) in zip(x, y).enumerated() where p != q { walk(p, q, path + "[\(i)]", &out) }
        default:
            if a != b { out.append("\(path.isEmpty ? "." : path): decoded \(a.text) expected \(b.text)") }
        }
    }
}

// MARK: - The Python side

/// Run as `python -c script catalog` and `python -c script encode` (cases on stdin).
let kafkaPythonGoldenScript = #"""
    """kafka-python side of Fjord's golden tests (KafkaPythonGoldenTests.swift).

    catalog: prints the kafka-python message classes and versions, and some record batches built by
             kafka-python's DefaultRecordBatchBuilder.
    encode:  reads {"cases": [{id, impl, msg, v, value, kind?, correlationId?, clientId?}]} on stdin,
             builds each kafka-python object from `value` (Swift field names) and prints
             {"results": [{id, hex, unused} | {id, error}]}.
    """
    import importlib, inspect, json, pkgutil, sys, uuid

    import kafka.protocol.old as legacy_pkg
    from kafka.protocol.api_message import ApiMessage
    from kafka.protocol.old import types as LT
    from kafka.protocol.schemas.fields.codecs import BitField as JBitField, Bytes as JBytes, Float64 as JFloat64, UUID as JUUID


    def legacy_classes():
        out = {}
        for m in pkgutil.iter_modules(legacy_pkg.__path__):
            mod = importlib.import_module('kafka.protocol.old.' + m.name)
            for n, c in inspect.getmembers(mod, inspect.isclass):
                if c.__module__ == mod.__name__ and isinstance(getattr(c, 'API_VERSION', None), int) and '_v' in n:
                    base, v = n.rsplit('_v', 1)
                    # The class name's version is what the class is registered as; API_VERSION
                    # is what it puts on the wire. They disagree for ListGroupsRequest_v2.
                    out[(base, int(v))] = c
        return out


    def json_classes():
        out = {}
        for sub in ('metadata', 'admin', 'consumer', 'producer'):
            pkg = importlib.import_module('kafka.protocol.' + sub)
            for m in pkgutil.iter_modules(pkg.__path__):
                mod = importlib.import_module('kafka.protocol.%s.%s' % (sub, m.name))
                for n, c in inspect.getmembers(mod, inspect.isclass):
                    if issubclass(c, ApiMessage) and c is not ApiMessage and c.__module__ == mod.__name__:
                        out[n] = c
        mod = importlib.import_module('kafka.protocol.sasl')
        for n, c in inspect.getmembers(mod, inspect.isclass):
            if issubclass(c, ApiMessage) and c is not ApiMessage:
                out[n] = c
        return out


    # kafka-python field names that differ from the schema's (other than by case and underscores):
    # both implementations call the topic and cluster "...AuthorizedOperations" plain
    # "authorized_operations" (the JSON classes patch the schema to do so).
    ALIASES = {
        'authorized_operations': ('topicAuthorizedOperations', 'clusterAuthorizedOperations'),
    }


    def norm(name):
        return name.replace('_', '').lower()


    class Missing(Exception):
        pass


    def lookup(d, name, aliases=()):
        keys = {norm(k): k for k in d}
        for cand in (name,) + tuple(aliases):
            k = keys.get(norm(cand))
            if k is not None:
                return k
        raise Missing('no Swift field for %r (have %s)' % (name, sorted(d)))


    def raw_bytes(v):
        return None if v is None else bytes.fromhex(v['$b'])


    def raw_uuid(v):
        u = uuid.UUID(hex=v['$u'])
        return None if u.int == 0 else u


    def bitfield(v):
        # Kafka's "authorized operations" int32; kafka-python models it as a set of bit indexes,
        # with None for INT32_MIN (only bit 31: "not requested").
        if v == -2147483648:
            return None
        return JBitField.from_32_bit_field(v & 0xFFFFFFFF)


    # ---- kafka-python's JSON-schema-driven classes (kafka.protocol.*) ----

    def j_value(field, v, version):
        if v is None:
            return None
        if field.is_struct_array():
            return [j_struct(field.array_of, e, version) for e in v]
        if field.is_struct():
            return j_struct(field, v, version)
        if field.is_array():
            return [j_value(field.array_of, e, version) for e in v]
        t = field._type
        if t is JUUID:
            return raw_uuid(v)
        if t is JBytes:
            return raw_bytes(v)
        if t is JBitField:
            return bitfield(v)
        if t is JFloat64:
            return float(v)
        return v


    def j_is_default(field, v, version):
        """A tagged field Swift leaves at its default (kafka-python's default for structs is None)."""
        if field.is_struct():
            return all(j_is_default(f, v[lookup(v, f.name)], version)
                       for f in field._fields if f.for_version_q(version))
        return j_value(field, v, version) == field.default


    def j_struct(struct, d, version, used=None):
        kwargs = {}
        for f in struct._fields:
            if not f.for_version_q(version):
                continue
            k = lookup(d, f.name, ALIASES.get(f.name, ()))
            if used is not None:
                used.add(k)
            if f.tagged_field_q(version) and j_is_default(f, d[k], version):
                continue
            kwargs[f.name] = j_value(f, d[k], version)
        return struct.data_class(version=version, **kwargs)


    def j_build(cls, d, version):
        used = set()
        obj = j_struct(cls._struct, d, version, used)
        return obj, [k for k in d if k not in used]


    # ---- kafka-python's hand-written classes (kafka.protocol.old, the 2.x implementation) ----

    def legacy_new_partitions(d):
        # CreatePartitionsRequest: kafka-python nests (count, assignment[[broker ids]]) in a
        # "new_partitions" struct; on the wire it is the schema's Count + Assignments[BrokerIds].
        a = d['assignments']
        return (d['count'], None if a is None else [x['brokerIds'] for x in a])


    LEGACY_OVERRIDES = {
        'new_partitions': legacy_new_partitions,
    }


    def l_value(t, v, used=None):
        if isinstance(t, LT.Schema):
            return tuple(l_struct(t, v, used))
        if isinstance(t, LT.Array):
            if v is None:
                return None
            inner = t.array_of
            out = []
            for e in v:
                if isinstance(e, dict) and not isinstance(inner, LT.Schema):
                    # kafka-python models e.g. MetadataRequest topics as [string]: the schema's
                    # one-field struct (Name) is the string itself.
                    e = e[lookup(e, 'name')]
                out.append(l_value(inner, e))
            return out
        if v is None:
            return None
        if t is LT.Bytes or t is LT.CompactBytes:
            return raw_bytes(v)
        if t is LT.UUID:
            return raw_uuid(v)
        if t is LT.BitField:
            return bitfield(v)
        return v


    def l_struct(schema, d, used=None):
        vals = []
        for name, t in zip(schema.names, schema.fields):
            if t is LT.TaggedFields:
                vals.append({})
                continue
            if name in LEGACY_OVERRIDES:
                vals.append(LEGACY_OVERRIDES[name](d))
                continue
            k = lookup(d, name, ALIASES.get(name, ()))
            if used is not None:
                used.add(k)
            vals.append(l_value(t, d[k]))
        return vals


    def l_build(cls, d):
        used = set()
        vals = l_struct(cls.SCHEMA, d, used)
        return cls(*vals), [k for k in d if k not in used]


    # ---- modes ----

    def record_batches():
        from kafka.record.default_records import DefaultRecordBatchBuilder
        out = []
        b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                      producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
        b.append(0, timestamp=1700000000000, key=b'key-1', value=b'value-1', headers=[('h1', b'x'), ('h2', None)])
        b.append(1, timestamp=1700000000007, key=None, value=b'value-2', headers=[])
        out.append(bytes(b.build()))
        b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=1, producer_id=4242,
                                      producer_epoch=7, base_sequence=11, batch_size=1 << 20)
        b.append(0, timestamp=1700000001000, key=b'k', value=None, headers=[])
        out.append(bytes(b.build()))
        # Over 127 bytes, so a compact (flexible-version) length takes two varint bytes.
        b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                      producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
        b.append(0, timestamp=1700000002000, key=b'big', value=bytes(range(256)) * 2, headers=[('trace', b'abc')])
        out.append(bytes(b.build()))
        return [x.hex() for x in out]


    def catalog():
        legacy = {}
        for (name, v) in legacy_classes():
            legacy.setdefault(name, []).append(v)
        js = {}
        for name, c in json_classes().items():
            # kafka-python's bundled schemas come from a newer Kafka that dropped some old versions
            # (e.g. Produce 3-13); kafka-python still encodes from version 0 (min_version is 0, for
            # old brokers), and those encodings are checked too.
            js[name] = [c.min_version, c.max_version]
        return {'legacy': {k: sorted(v) for k, v in legacy.items()}, 'json': js, 'batches': record_batches()}


    def encode_case(c, legacy, js):
        impl, name, v, d = c['impl'], c['msg'], c['v'], c['value']
        if impl == 'legacy':
            cls = legacy[(name, v)]
            obj, unused = l_build(cls, d)
        else:
            cls = js[name]
            obj, unused = j_build(cls, d, v)
        kind = c.get('kind', 'body')
        if kind == 'body':
            data = obj.encode() if impl == 'legacy' else obj.encode(version=v)
        else:
            # The object already carries its version: with a header, kafka-python's
            # ApiMessage.encode(version=...) tries to set request_api_version on a response header.
            obj.with_header(correlation_id=c['correlationId'], client_id=c.get('clientId'))
            data = obj.encode(header=True)
        return {'hex': bytes(data).hex(), 'unused': unused}


    def main():
        if sys.argv[1] == 'catalog':
            print(json.dumps(catalog()))
            return
        req = json.load(sys.stdin)
        legacy, js = legacy_classes(), json_classes()
        results = []
        for c in req['cases']:
            try:
                r = encode_case(c, legacy, js)
            except Exception as e:  # reported per case; the Swift side fails that case
                r = {'error': '%s: %s' % (type(e).__name__, e)}
            r['id'] = c['id']
            results.append(r)
        print(json.dumps({'results': results}))


    main()
    """#
