import FjordProtocol
import FjordWire
import NIOCore
import NIOEmbedded
import NIOTestUtils
import XCTest

final class FramingTests: XCTestCase {
    private func frame(_ body: [UInt8]) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(Int32(body.count))
        b.writeBytes(body)
        return b
    }

    /// NIO's verifier drip-feeds the input one byte at a time and also hands it over in one
    /// piece, checking the decoder yields the same frames either way and leaves nothing behind.
    func testDripFeedAndManyFramesInOneBuffer() throws {
        let bodies: [[UInt8]] = [[], [1], [1, 2, 3], Array(repeating: 7, count: 1000), [0, 0, 0, 0]]
        var all = ByteBuffer()
        for b in bodies { var f = frame(b); all.writeBuffer(&f) }
        let expected = bodies.map { ByteBuffer(bytes: $0) }
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(all, expected)] + bodies.map { (frame($0), [ByteBuffer(bytes: $0)]) },
            decoderFactory: { KafkaFrameDecoder(maxFrameSize: 4096) }
        )
    }

    func testPartialFrameDoesNotMoveReaderIndex() throws {
        var b = frame([1, 2, 3, 4, 5])
        b.moveWriterIndex(to: b.writerIndex - 1)
        let before = b.readerIndex
        XCTAssertNil(try KafkaFrameDecoder.nextFrame(from: &b, maxFrameSize: 100))
        XCTAssertEqual(b.readerIndex, before)
        var three = ByteBuffer(bytes: [0, 0, 0])
        XCTAssertNil(try KafkaFrameDecoder.nextFrame(from: &three, maxFrameSize: 100))
        XCTAssertEqual(three.readerIndex, 0)
    }

    func testOversizedAndNegativeFramesAreRejected() throws {
        var big = ByteBuffer()
        big.writeInteger(Int32(104_857_601))
        XCTAssertThrowsError(try KafkaFrameDecoder.nextFrame(from: &big, maxFrameSize: KafkaFrameDecoder.defaultMaxFrameSize)) {
            XCTAssertEqual($0 as? KafkaFrameError, .frameTooLarge(size: 104_857_601, max: 104_857_600))
        }
        var neg = ByteBuffer()
        neg.writeInteger(Int32(-5))
        XCTAssertThrowsError(try KafkaFrameDecoder.nextFrame(from: &neg, maxFrameSize: 100))
        // The limit applies before the body arrives: no buffering of a huge frame.
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: 10)))
        var b = ByteBuffer()
        b.writeInteger(Int32(11))
        XCTAssertThrowsError(try channel.writeInbound(b))
        _ = try? channel.finish()
    }

    func testRequestRoundTripThroughFrames() throws {
        var req = MetadataRequest()
        req.topics = [.init()]
        req.topics![0].name = "orders"
        req.allowAutoTopicCreation = false
        for version in MetadataRequest.validVersions {
            if version < 4 { req.allowAutoTopicCreation = true }
            if version >= 10 { req.topics![0].topicId = KafkaUUID(high: 1, low: 2) } else { req.topics![0].topicId = .zero }
            if version < 10 { req.topics![0].name = "orders" }
            let body = try KafkaFrames.request(req, version: version, correlationId: 42, clientId: "c1")
            var wire = ByteBuffer()
            try KafkaFrameEncoder().encode(data: body, out: &wire)
            let f = try XCTUnwrap(try KafkaFrameDecoder.nextFrame(from: &wire, maxFrameSize: 1 << 20))
            let parsed = try RequestFrame(parsing: f)
            XCTAssertEqual(parsed.apiKey, .metadata)
            XCTAssertEqual(parsed.header.correlationId, 42)
            XCTAssertEqual(parsed.header.clientId, "c1")
            XCTAssertEqual(parsed.headerVersion, version >= 9 ? 2 : 1)
            XCTAssertEqual(try parsed.decodeBody(as: MetadataRequest.self), req)
            XCTAssertEqual(try parsed.decodeBody() as? MetadataRequest, req)
        }
    }

    func testApiVersionsResponseAlwaysUsesHeaderV0() throws {
        XCTAssertEqual(ApiKey.apiVersions.responseHeaderVersion(for: 3), 0)
        XCTAssertEqual(ApiKey.apiVersions.requestHeaderVersion(for: 3), 2)
        XCTAssertEqual(ApiKey.metadata.responseHeaderVersion(for: 9), 1)
        XCTAssertEqual(ApiKey.metadata.responseHeaderVersion(for: 8), 0)
        XCTAssertEqual(ApiKey.controlledShutdown.requestHeaderVersion(for: 0), 0)
        var r = ApiVersionsResponse()
        r.apiKeys = [.init()]
        let buf = try KafkaFrames.response(r, version: 3, correlationId: 9)
        // header v0 is just the correlation id: no tagged-field byte after it.
        XCTAssertEqual(buf.getInteger(at: 0, as: Int32.self), 9)
        XCTAssertEqual(buf.getInteger(at: 4, as: Int16.self), 0)  // error code follows directly
    }

    func testGarbageHeaderIsAnErrorNotACrash() {
        var rng = SystemRandomNumberGenerator()
        for n in 0..<2000 {
            let len = Int(rng.next() as UInt8)
            var bytes = (0..<len).map { _ in rng.next() as UInt8 }
            if n % 2 == 0 && len >= 4 { bytes[0] = 0; bytes[1] = UInt8(n % 70); bytes[2] = 0; bytes[3] = UInt8(n % 13) }
            if let frame = try? RequestFrame(parsing: ByteBuffer(bytes: bytes)) {
                _ = try? frame.decodeBody()
            }
        }
    }

    func testErrorCodes() {
        XCTAssertEqual(ErrorCode.notLeaderOrFollower.rawValue, 6)
        XCTAssertEqual(ErrorCode.notLeaderOrFollower.name, "NOT_LEADER_OR_FOLLOWER")
        XCTAssertTrue(ErrorCode.notLeaderOrFollower.isRetriable)
        XCTAssertFalse(ErrorCode.messageTooLarge.isRetriable)
        XCTAssertEqual(ErrorCode(rawValue: 35), .unsupportedVersion)
        XCTAssertEqual(ErrorCode.noError.rawValue, 0)
        XCTAssertEqual(ErrorCode.unknownServerError.rawValue, -1)
    }
}
