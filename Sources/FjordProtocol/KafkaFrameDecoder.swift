import NIOCore

/// Errors from the frame layer. Any of these means the connection cannot continue: Kafka
/// closes it (there is no correlation id to answer to).
public enum KafkaFrameError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The size prefix exceeds `socket.request.max.bytes` (or is negative).
    case frameTooLarge(size: Int32, max: Int)

    public var description: String {
        switch self {
        case let .frameTooLarge(size, max):
            return "frame of \(size) bytes is larger than socket.request.max.bytes (\(max)) or invalid"
        }
    }
}

/// Splits a byte stream into Kafka frames: a 4-byte big-endian size, then that many bytes.
///
/// Emits each frame body (without the size) as a `ByteBuffer` slice. The reader index moves
/// only once a whole frame is buffered, so partial frames cost nothing but waiting. A size
/// above `maxFrameSize` (Kafka's `socket.request.max.bytes`, default 104857600) is rejected
/// before any of it is buffered.
public struct KafkaFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// Kafka's default `socket.request.max.bytes`.
    public static let defaultMaxFrameSize = 104_857_600

    public let maxFrameSize: Int
    /// The most the decoder reserves for the rest of a frame at once (larger frames grow the
    /// buffer as their bytes arrive).
    static let reserveLimit = 4 << 20

    public init(maxFrameSize: Int = KafkaFrameDecoder.defaultMaxFrameSize) {
        self.maxFrameSize = maxFrameSize
    }

    /// Returns the next whole frame, or nil (without consuming anything) if it is not all there.
    public static func nextFrame(from buffer: inout ByteBuffer, maxFrameSize: Int) throws -> ByteBuffer? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else {
            return nil
        }
        guard size >= 0, Int(size) <= maxFrameSize else {
            throw KafkaFrameError.frameTooLarge(size: size, max: maxFrameSize)
        }
        guard buffer.readableBytes >= 4 + Int(size) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(size))
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.nextFrame(from: &buffer, maxFrameSize: maxFrameSize) else {
            // A frame larger than what has arrived (produce requests of up to a few MB come in
            // many socket reads): grow the cumulation buffer once to hold it, rather than
            // doubling it (and copying what it holds) again and again as the reads are appended.
            // At most `reserveLimit` ahead of the bytes: a bare size header must not make a
            // connection hold up to socket.request.max.bytes (100 MB) before anything arrives.
            if let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) {
                let missing = min(4 + Int(size) - buffer.readableBytes, Self.reserveLimit)
                if missing > buffer.writableBytes { buffer.reserveCapacity(minimumWritableBytes: missing) }
            }
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial frame at EOF is dropped: the peer went away mid-request.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Prefixes each outbound frame body with its 4-byte size.
public struct KafkaFrameEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = ByteBuffer

    public init() {}

    public func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.reserveCapacity(4 + data.readableBytes)
        out.writeInteger(Int32(data.readableBytes))
        var d = data
        out.writeBuffer(&d)
    }
}
