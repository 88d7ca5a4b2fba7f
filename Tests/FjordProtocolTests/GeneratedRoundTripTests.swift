import FjordProtocol
import FjordWire
import NIOCore
import XCTest

/// Implemented by the generated `Samples.swift`: a value with every field of `version` set.
protocol SampleMessage: KafkaMessage {
    static func sample(version: Int16) -> Self
}

final class GeneratedRoundTripTests: XCTestCase {
    /// Every message of every schema, at every version: encode a fully populated sample,
    /// decode it back to an equal value with no bytes left over, and re-encode to the same
    /// bytes; every strict prefix of the encoding must fail to decode with an error.
    func testEveryMessageAtEveryVersionRoundTrips() throws {
        var versions = 0
        for type in allGeneratedMessages {
            versions += try roundTrip(type)
        }
        XCTAssertEqual(versions, 754, "every version of every schema (244 schemas, 754 versions) must be exercised")
    }

    private func roundTrip<M: SampleMessage>(_ type: M.Type) throws -> Int {
        var n = 0
        for v in M.validVersions {
            let sample = M.sample(version: v)
            let bytes: ByteBuffer
            do {
                bytes = try sample.encoded(version: v)
            } catch {
                XCTFail("\(M.messageName) v\(v): encode failed: \(error)")
                continue
            }
            var reader = bytes
            let decoded = try M(from: &reader, version: v)
            XCTAssertEqual(reader.readableBytes, 0, "\(M.messageName) v\(v): bytes left over")
            XCTAssertEqual(decoded, sample, "\(M.messageName) v\(v): decoded value differs")
            XCTAssertEqual(try decoded.encoded(version: v), bytes, "\(M.messageName) v\(v): re-encoding differs")
            for cut in stride(from: 0, to: bytes.readableBytes, by: max(1, bytes.readableBytes / 64)) {
                var prefix = bytes.getSlice(at: bytes.readerIndex, length: cut)!
                XCTAssertThrowsError(try M(from: &prefix, version: v), "\(M.messageName) v\(v): prefix of \(cut) bytes decoded")
            }
            n += 1
        }
        let top = M.validVersions.upperBound
        var beyond = try M.sample(version: top).encoded(version: top)
        XCTAssertThrowsError(try M(from: &beyond, version: top + 1), "\(M.messageName): decoded an undefined version")
        return n
    }

    /// Unknown tagged fields survive decode and re-encode (a newer peer's additions pass through).
    func testUnknownTaggedFieldsArePreserved() throws {
        var m = MetadataRequest.sample(version: 12)
        m.unknownTaggedFields = [RawTaggedField(tag: 7, data: ByteBuffer(bytes: [9, 9])),
                                 RawTaggedField(tag: 200, data: ByteBuffer(bytes: []))]
        var buf = try m.encoded(version: 12)
        let d = try MetadataRequest(from: &buf, version: 12)
        XCTAssertEqual(d.unknownTaggedFields, m.unknownTaggedFields)
        XCTAssertEqual(d, m)
    }

    /// A known tagged field sent at its default is omitted, and one set is written.
    func testTaggedFieldsWrittenOnlyWhenNotDefault() throws {
        var r = ApiVersionsResponse()
        r.apiKeys = [.init()]
        let plain = try r.encoded(version: 3)
        r.finalizedFeaturesEpoch = 5
        let withTag = try r.encoded(version: 3)
        // tag 1, size 8, int64
        XCTAssertEqual(withTag.readableBytes, plain.readableBytes + 10)
    }

    /// A field the version cannot carry is an error unless the schema marks it ignorable.
    func testNonIgnorableFieldAtOldVersionThrows() throws {
        var r = MetadataRequest()
        r.topics = []
        r.includeTopicAuthorizedOperations = true  // v8+, not ignorable
        XCTAssertThrowsError(try r.encoded(version: 7))
        XCTAssertNoThrow(try r.encoded(version: 8))
    }

    func testNullInNonNullableVersionThrows() throws {
        var r = MetadataRequest()
        r.topics = nil  // nullable from v1
        XCTAssertThrowsError(try r.encoded(version: 0))
        XCTAssertNoThrow(try r.encoded(version: 1))
    }
}
