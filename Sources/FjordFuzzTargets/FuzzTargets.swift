import FjordProtocol
import FjordRecords
import FjordWire
import NIOCore

/// Entry points for the libFuzzer harness (fuzz/Harness.swift): arbitrary bytes must only
/// ever produce values or thrown errors — never a trap, hang or unbounded allocation.
public enum FuzzTargets {
    /// Frames → request header → request body, as the server's read path does.
    public static func frameAndRequest(_ bytes: UnsafeRawBufferPointer) {
        var buf = ByteBuffer(bytes: bytes)
        while true {
            let frame: ByteBuffer?
            do {
                frame = try KafkaFrameDecoder.nextFrame(from: &buf, maxFrameSize: 1 << 20)
            } catch {
                return
            }
            guard let frame else { break }
            if let req = try? RequestFrame(parsing: frame) {
                _ = try? req.decodeBody()
            }
        }
        // The same bytes as a bare body of every API at every version.
        if bytes.count >= 2 {
            let key = ApiKey.allCases[Int(bytes[0]) % ApiKey.allCases.count]
            let versions = key.schemaVersions
            let version = versions.lowerBound + Int16(Int(bytes[1]) % versions.count)
            var body = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes.dropFirst(2)))
            _ = try? key.requestType.init(from: &body, version: version)
            body = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes.dropFirst(2)))
            _ = try? key.responseType.init(from: &body, version: version)
        }
    }

    /// Record batches: the walk over a segment or fetch payload, validation and full iteration
    /// (with bounded decompression).
    public static func recordBatches(_ bytes: UnsafeRawBufferPointer) {
        FuzzRecordBatches.run(ByteBuffer(bytes: bytes))
    }
}
