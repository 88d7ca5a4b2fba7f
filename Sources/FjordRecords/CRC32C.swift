import CFjordCRC32C
import NIOCore

/// CRC-32C (Castagnoli), the checksum of Kafka record batches (magic 2): reflected
/// polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
///
/// Computed in C with the CPU's CRC instruction (x86_64 SSE4.2, AArch64 CRC32) when
/// available, else with a portable slicing-by-8 table; see ``isHardwareAccelerated``.
/// Every function reads the bytes in place (no copies).
///
/// ```swift
/// CRC32C.checksum(buffer)                          // whole readable region
/// CRC32C.update(CRC32C.update(0, head), tail)      // == CRC of head + tail
/// ```
public enum CRC32C {
    /// The CRC-32C of the readable bytes of `buffer` (reader index not moved).
    @inlinable
    public static func checksum(_ buffer: ByteBuffer) -> UInt32 {
        update(0, buffer)
    }

    /// The CRC-32C of `bytes`.
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0, bytes)
    }

    /// The CRC-32C of a byte sequence (convenience for tests and tools; hot paths should
    /// pass a `ByteBuffer` or a raw buffer pointer).
    @inlinable
    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        if let crc = bytes.withContiguousStorageIfAvailable({ update(0, UnsafeRawBufferPointer($0)) }) {
            return crc
        }
        return Array(bytes).withUnsafeBytes { update(0, $0) }
    }

    /// Extends `crc` (0 to start) over the readable bytes of `buffer`.
    @inlinable
    public static func update(_ crc: UInt32, _ buffer: ByteBuffer) -> UInt32 {
        buffer.withUnsafeReadableBytes { update(crc, $0) }
    }

    /// Extends `crc` (0 to start) over `bytes`: `update(update(0, a), b)` is the CRC of `a`
    /// followed by `b`.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        fjord_crc32c_update(crc, bytes.baseAddress, bytes.count)
    }

    /// Like `update(_:_:)` but always with the portable table code, whatever the CPU
    /// offers. For tests and benchmarks of the fallback.
    public static func updatePortable(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        fjord_crc32c_update_portable(crc, bytes.baseAddress, bytes.count)
    }

    /// Whether `update(_:_:)` uses a CPU CRC instruction rather than the table code.
    public static var isHardwareAccelerated: Bool {
        fjord_crc32c_hardware() != 0
    }
}
