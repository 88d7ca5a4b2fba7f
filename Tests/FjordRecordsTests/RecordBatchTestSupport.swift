import FjordRecords
import NIOCore
import XCTest

/// One record of the deterministic test data set shared by the Swift and Python sides.
struct SampleRecord: Equatable, CustomStringConvertible {
    var key: [UInt8]?
    var value: [UInt8]?
    var headers: [Header]
    var timestamp: Int64

    struct Header: Equatable {
        var key: String
        var value: [UInt8]?
    }

    var description: String {
        "key=\(key.map { String(decoding: $0, as: UTF8.self) } ?? "nil") value=\(value.map { "\($0.count)B" } ?? "nil") "
            + "headers=\(headers.map { "\($0.key)=\($0.value.map { "\($0)" } ?? "nil")" }) ts=\(timestamp)"
    }

    /// Same formula as `samplePython` below.
    static func make(tag: String, _ i: Int) -> SampleRecord {
        let key: [UInt8]?
        switch i % 10 {
        case 3: key = nil
        case 7: key = []
        default: key = Array("key-\(tag)-\(i)".utf8)
        }
        let value: [UInt8]? = i % 10 == 5 ? nil : Array(("value-\(tag)-\(i)-" + String(repeating: "abc", count: i)).utf8)
        let headers: [Header]
        switch i % 4 {
        case 0: headers = []
        case 1: headers = [Header(key: "h", value: Array("1".utf8))]
        case 2: headers = [Header(key: "h1", value: nil), Header(key: "h2", value: Array("xyz".utf8))]
        default: headers = [Header(key: "ünï", value: [0, 255])]
        }
        return SampleRecord(key: key, value: value, headers: headers,
                            timestamp: 1_700_000_000_000 + Int64((i * 7919) % 1000))
    }

    init(key: [UInt8]?, value: [UInt8]?, headers: [Header], timestamp: Int64) {
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    /// The decoded form of `record`.
    init(_ record: Record) {
        key = record.key.map { Array($0.readableBytesView) }
        value = record.value.map { Array($0.readableBytesView) }
        headers = record.headers.map { Header(key: $0.keyString, value: $0.value.map { Array($0.readableBytesView) }) }
        timestamp = record.timestamp
    }

    func append(to builder: inout RecordBatchBuilder) {
        builder.append(key: key.map { ByteBuffer(bytes: $0) }, value: value.map { ByteBuffer(bytes: $0) },
                       headers: headers.map { RecordHeader(key: $0.key, value: $0.value) }, timestamp: timestamp)
    }
}

/// Python definition of the same data set (`sample(tag, i)` returns key, value, headers, ts).
let samplePython = """
def sample(tag, i):
    if i % 10 == 3:
        key = None
    elif i % 10 == 7:
        key = b""
    else:
        key = f"key-{tag}-{i}".encode()
    value = None if i % 10 == 5 else (f"value-{tag}-{i}-" + "abc" * i).encode()
    m = i % 4
    if m == 0:
        headers = []
    elif m == 1:
        headers = [("h", b"1")]
    elif m == 2:
        headers = [("h1", None), ("h2", b"xyz")]
    else:
        headers = [("ünï", bytes([0, 255]))]
    return key, value, headers, 1700000000000 + (i * 7919) % 1000
"""

let allCodecs: [CompressionCodec] = [.none, .gzip, .snappy, .lz4, .zstd]

/// Deterministic pseudo-random numbers (SplitMix64) so failures reproduce from the seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension ByteBuffer {
    var bytes: [UInt8] { Array(readableBytesView) }
}

/// Builds a batch of `count` sample records.
func makeSampleBatch(codec: CompressionCodec, tag: String, count: Int, baseOffset: Int64 = 0,
                     configure: (inout RecordBatchBuilder) -> Void = { _ in }) throws -> (RecordBatch, [SampleRecord]) {
    var b = RecordBatchBuilder(baseOffset: baseOffset, codec: codec)
    configure(&b)
    let samples = (0..<count).map { SampleRecord.make(tag: tag, $0) }
    for s in samples { s.append(to: &b) }
    return (try b.build(), samples)
}

/// Sets the CRC of raw batch bytes to match their content (to reach the record parser in
/// robustness tests).
func fixCRC(_ bytes: inout [UInt8]) {
    guard bytes.count > RecordBatch.Layout.attributes else { return }
    let crc = bytes[RecordBatch.Layout.attributes...].withUnsafeBytes { CRC32C.checksum($0) }
    bytes[17] = UInt8(truncatingIfNeeded: crc >> 24)
    bytes[18] = UInt8(truncatingIfNeeded: crc >> 16)
    bytes[19] = UInt8(truncatingIfNeeded: crc >> 8)
    bytes[20] = UInt8(truncatingIfNeeded: crc)
}
