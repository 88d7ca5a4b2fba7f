import FjordWire
import NIOCore

/// A decoded request frame: its header, and the body still as bytes (decoded by the handler
/// of the API so that it can answer errors with the right correlation id).
public struct RequestFrame: Sendable {
    /// The API, or nil for an api key this build does not know.
    public var apiKey: ApiKey?
    public var rawApiKey: Int16
    public var apiVersion: Int16
    public var header: RequestHeader
    public var headerVersion: Int16
    /// The request body, positioned after the header.
    public var body: ByteBuffer

    /// Parses the header of one frame (as produced by `KafkaFrameDecoder`).
    ///
    /// The header version follows from the API and version (KIP-482): flexible versions use
    /// header v2 (with tagged fields), others v1; ControlledShutdown v0 uses v0. An unknown
    /// API key is parsed as v1, enough to log who sent it.
    public init(parsing frame: ByteBuffer) throws {
        var buf = frame
        guard let key = buf.getInteger(at: buf.readerIndex, endianness: .big, as: Int16.self),
              let version = buf.getInteger(at: buf.readerIndex + 2, endianness: .big, as: Int16.self)
        else {
            throw WireError.truncated(needed: 4, available: buf.readableBytes)
        }
        self.rawApiKey = key
        self.apiVersion = version
        self.apiKey = ApiKey(rawValue: key)
        self.headerVersion = apiKey?.requestHeaderVersion(for: version) ?? 1
        self.header = try RequestHeader(from: &buf, version: headerVersion)
        self.body = buf
    }

    /// Decodes the body as `R` at the frame's version; the body must be consumed exactly.
    public func decodeBody<R: KafkaRequest>(as type: R.Type) throws -> R {
        var b = body
        let r = try R(from: &b, version: apiVersion)
        guard b.readableBytes == 0 else {
            throw WireError.malformed("\(R.messageName) v\(apiVersion): \(b.readableBytes) trailing bytes")
        }
        return r
    }

    /// Decodes the body with the generated type for its API key.
    public func decodeBody() throws -> any KafkaRequest {
        guard let apiKey else { throw WireError.malformed("unknown api key \(rawApiKey)") }
        return try decodeBody(as: apiKey.requestType)
    }
}

/// Builds request and response frames (without the 4-byte size, which `KafkaFrameEncoder` adds).
public enum KafkaFrames {
    /// A request: header at the right version for the API, then the body.
    public static func request<R: KafkaRequest>(_ body: R, version: Int16, correlationId: Int32, clientId: String?) throws -> ByteBuffer {
        var header = RequestHeader()
        header.requestApiKey = R.apiKey.rawValue
        header.requestApiVersion = version
        header.correlationId = correlationId
        header.clientId = clientId
        var buf = ByteBuffer()
        try header.encode(to: &buf, version: R.apiKey.requestHeaderVersion(for: version))
        try body.encode(to: &buf, version: version)
        return buf
    }

    /// A response: header v0 or v1 as the API and version require, then the body.
    /// A whole response frame: the 4-byte size, then header and body, in one buffer (no
    /// second copy to prepend the size).
    public static func framedResponse<R: KafkaResponse>(_ body: R, version: Int16, correlationId: Int32) throws -> ByteBuffer {
        var buf = ByteBuffer()
        buf.writeInteger(Int32(0))
        var header = ResponseHeader()
        header.correlationId = correlationId
        try header.encode(to: &buf, version: R.apiKey.responseHeaderVersion(for: version))
        try body.encode(to: &buf, version: version)
        buf.setInteger(Int32(buf.readableBytes - 4), at: buf.readerIndex)
        return buf
    }

    public static func response<R: KafkaResponse>(_ body: R, version: Int16, correlationId: Int32) throws -> ByteBuffer {
        var buf = ByteBuffer()
        var header = ResponseHeader()
        header.correlationId = correlationId
        try header.encode(to: &buf, version: R.apiKey.responseHeaderVersion(for: version))
        try body.encode(to: &buf, version: version)
        return buf
    }
}
