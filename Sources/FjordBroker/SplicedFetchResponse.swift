import FjordProtocol
import FjordStorage
import FjordWire
import NIOConcurrencyHelpers
import NIOCore

/// A Fetch response whose record sets stay in the segment files until they are sent: each
/// such partition's `records` holds a 16-byte marker, and `splices` say which file range
/// replaces it. The server encodes the response, cuts it at the markers and sends the file
/// ranges with `sendfile` (no copy of the records through user space). Anything else that
/// encodes it gets the records read from the files (`materialized()`).
public struct SplicedFetchResponse: KafkaResponse {
    public static var apiKey: ApiKey { FetchResponse.apiKey }
    public static var messageName: String { FetchResponse.messageName }
    public static var validVersions: ClosedRange<Int16> { FetchResponse.validVersions }
    public static var firstFlexibleVersion: Int16? { FetchResponse.firstFlexibleVersion }

    public struct Splice: Sendable {
        public var marker: ByteBuffer
        public var slice: FileSlice
    }

    public var response: FetchResponse
    public var splices: [Splice]

    public init() {
        response = FetchResponse()
        splices = []
    }

    public init(response: FetchResponse, splices: [Splice] = []) {
        self.response = response
        self.splices = splices
    }

    public init(from buf: inout ByteBuffer, version: Int16) throws {
        response = try FetchResponse(from: &buf, version: version)
        splices = []
    }

    public func encode(to buf: inout ByteBuffer, version: Int16) throws {
        try materialized().encode(to: &buf, version: version)
    }

    /// The response with every marker replaced by its records, read from the files.
    public func materialized() throws -> FetchResponse {
        guard !splices.isEmpty else { return response }
        var r = response
        for ti in r.responses.indices {
            for pi in r.responses[ti].partitions.indices {
                guard let rec = r.responses[ti].partitions[pi].records, rec.readableBytes == Self.markerLength,
                      let s = splices.first(where: { $0.marker == rec }) else { continue }
                r.responses[ti].partitions[pi].records = try s.slice.read()
            }
        }
        return r
    }

    public static func == (a: SplicedFetchResponse, b: SplicedFetchResponse) -> Bool {
        a.response == b.response && a.splices.map(\.marker) == b.splices.map(\.marker)
    }

    public func hash(into h: inout Hasher) { h.combine(response) }

    // MARK: markers

    public static let markerLength = 16
    private static let counter = NIOLockedValueBox<UInt64>(UInt64.random(in: 0...UInt64.max))

    /// A marker no record set will contain by chance: 8 fixed bytes and a process-wide
    /// counter that starts at a random value.
    static func newMarker() -> ByteBuffer {
        let n = counter.withLockedValue { c -> UInt64 in
            c &+= 1
            return c
        }
        var b = ByteBuffer()
        b.writeBytes([0xF1, 0x0D, 0x5E, 0x7D, 0xF1, 0x1E, 0x5C, 0xA7])
        b.writeInteger(n)
        return b
    }
}
