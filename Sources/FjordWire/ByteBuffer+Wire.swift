import NIOCore

// Kafka wire primitives on ByteBuffer. All reads are bounds-checked and throw `WireError`;
// nothing here traps on untrusted input. Names carry a `kafka` prefix where NIO already
// has a similarly named method with different semantics.

extension ByteBuffer {
    // MARK: fixed-width integers (big endian)

    @inlinable
    public mutating func readKafkaInt<T: FixedWidthInteger>(as: T.Type = T.self) throws -> T {
        guard let v = self.readInteger(endianness: .big, as: T.self) else {
            throw WireError.truncated(needed: MemoryLayout<T>.size, available: self.readableBytes)
        }
        return v
    }

    @inlinable
    public mutating func readKafkaBool() throws -> Bool {
        let b: UInt8 = try readKafkaInt()
        return b != 0
    }

    @inlinable
    public mutating func writeKafkaBool(_ v: Bool) {
        self.writeInteger(v ? UInt8(1) : UInt8(0))
    }

    @inlinable
    public mutating func readKafkaFloat64() throws -> Double {
        let bits: UInt64 = try readKafkaInt()
        return Double(bitPattern: bits)
    }

    @inlinable
    public mutating func writeKafkaFloat64(_ v: Double) {
        self.writeInteger(v.bitPattern, endianness: .big)
    }

    // MARK: varints

    /// Reads an unsigned LEB128 varint of at most 5 bytes (Kafka's `UNSIGNED_VARINT`).
    @inlinable
    public mutating func readUnsignedVarint() throws -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        var i = self.readerIndex
        let end = self.writerIndex
        while true {
            guard i < end else { throw WireError.truncated(needed: 1, available: 0) }
            let b = self.getInteger(at: i, as: UInt8.self)!
            i += 1
            if shift == 28 && b & 0xF0 != 0 { throw WireError.malformedVarint }
            result |= UInt32(b & 0x7F) << shift
            if b & 0x80 == 0 { break }
            shift += 7
            if shift > 28 { throw WireError.malformedVarint }
        }
        self.moveReaderIndex(to: i)
        return result
    }

    /// Reads an unsigned LEB128 varint of at most 10 bytes.
    @inlinable
    public mutating func readUnsignedVarlong() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = self.readerIndex
        let end = self.writerIndex
        while true {
            guard i < end else { throw WireError.truncated(needed: 1, available: 0) }
            let b = self.getInteger(at: i, as: UInt8.self)!
            i += 1
            if shift == 63 && b & 0xFE != 0 { throw WireError.malformedVarint }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { break }
            shift += 7
            if shift > 63 { throw WireError.malformedVarint }
        }
        self.moveReaderIndex(to: i)
        return result
    }

    /// Reads a zig-zag encoded signed 32-bit varint (record fields).
    @inlinable
    public mutating func readVarint() throws -> Int32 {
        let u = try readUnsignedVarint()
        return Int32(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// Reads a zig-zag encoded signed 64-bit varint (record fields).
    @inlinable
    public mutating func readVarlong() throws -> Int64 {
        let u = try readUnsignedVarlong()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarint(_ value: UInt32) -> Int {
        var v = value
        var n = 0
        while v >= 0x80 {
            self.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
            n += 1
        }
        self.writeInteger(UInt8(truncatingIfNeeded: v))
        return n + 1
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarlong(_ value: UInt64) -> Int {
        var v = value
        var n = 0
        while v >= 0x80 {
            self.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
            n += 1
        }
        self.writeInteger(UInt8(truncatingIfNeeded: v))
        return n + 1
    }

    @inlinable
    @discardableResult
    public mutating func writeVarint(_ value: Int32) -> Int {
        writeUnsignedVarint(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    }

    @inlinable
    @discardableResult
    public mutating func writeVarlong(_ value: Int64) -> Int {
        writeUnsignedVarlong(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    // MARK: lengths

    /// Reads a length prefix: INT16 for classic strings, INT32 for classic bytes/arrays,
    /// or an unsigned varint holding `length + 1` for compact forms. Returns -1 for null.
    @inlinable
    mutating func readKafkaLength(compact: Bool, wide: Bool) throws -> Int {
        if compact {
            let u = try readUnsignedVarint()
            return Int(u) - 1
        } else if wide {
            let n: Int32 = try readKafkaInt()
            return Int(n)
        } else {
            let n: Int16 = try readKafkaInt()
            return Int(n)
        }
    }

    @inlinable
    mutating func writeKafkaLength(_ n: Int, compact: Bool, wide: Bool) {
        if compact {
            writeUnsignedVarint(UInt32(truncatingIfNeeded: n + 1))
        } else if wide {
            writeInteger(Int32(truncatingIfNeeded: n), endianness: .big)
        } else {
            writeInteger(Int16(truncatingIfNeeded: n), endianness: .big)
        }
    }

    // MARK: strings

    @inlinable
    public mutating func readKafkaNullableString(compact: Bool) throws -> String? {
        let n = try readKafkaLength(compact: compact, wide: false)
        if n < 0 {
            if n == -1 { return nil }
            throw WireError.invalidLength(n)
        }
        guard n <= readableBytes else { throw WireError.truncated(needed: n, available: readableBytes) }
        // Malformed UTF-8 becomes U+FFFD, as Java's `new String(bytes, UTF_8)` does in Kafka,
        // so a request Kafka accepts (say an odd client.id) is accepted here too.
        let s = String(decoding: self.readableBytesView.prefix(n), as: UTF8.self)
        self.moveReaderIndex(forwardBy: n)
        return s
    }

    @inlinable
    public mutating func readKafkaString(compact: Bool, field: StaticString = "string") throws -> String {
        guard let s = try readKafkaNullableString(compact: compact) else {
            throw WireError.unexpectedNull(field: "\(field)")
        }
        return s
    }

    @inlinable
    public mutating func writeKafkaString(_ s: String, compact: Bool) {
        var s = s
        s.withUTF8 { utf8 in
            writeKafkaLength(utf8.count, compact: compact, wide: false)
            writeBytes(UnsafeRawBufferPointer(utf8))
        }
    }

    @inlinable
    public mutating func writeKafkaNullableString(_ s: String?, compact: Bool) {
        if let s { writeKafkaString(s, compact: compact) } else { writeKafkaLength(-1, compact: compact, wide: false) }
    }

    // MARK: bytes (returned as slices: no copy)

    @inlinable
    public mutating func readKafkaNullableBytes(compact: Bool) throws -> ByteBuffer? {
        let n = try readKafkaLength(compact: compact, wide: true)
        if n < 0 {
            if n == -1 { return nil }
            throw WireError.invalidLength(n)
        }
        guard let slice = readSlice(length: n) else { throw WireError.truncated(needed: n, available: readableBytes) }
        return slice
    }

    @inlinable
    public mutating func readKafkaBytes(compact: Bool, field: StaticString = "bytes") throws -> ByteBuffer {
        guard let b = try readKafkaNullableBytes(compact: compact) else {
            throw WireError.unexpectedNull(field: "\(field)")
        }
        return b
    }

    @inlinable
    public mutating func writeKafkaBytes(_ b: ByteBuffer, compact: Bool) {
        writeKafkaLength(b.readableBytes, compact: compact, wide: true)
        var b = b
        writeBuffer(&b)
    }

    @inlinable
    public mutating func writeKafkaNullableBytes(_ b: ByteBuffer?, compact: Bool) {
        if let b { writeKafkaBytes(b, compact: compact) } else { writeKafkaLength(-1, compact: compact, wide: true) }
    }

    // MARK: arrays

    /// Reads an array length; -1 means null. A length that cannot possibly fit in the
    /// remaining bytes (each element takes at least `minElementSize`) is rejected up front,
    /// so a hostile count cannot make us allocate.
    @inlinable
    public mutating func readKafkaArrayLength(compact: Bool, minElementSize: Int = 1) throws -> Int {
        let n = try readKafkaLength(compact: compact, wide: true)
        if n < -1 { throw WireError.invalidLength(n) }
        if n > 0 && minElementSize > 0 && n > readableBytes / minElementSize {
            throw WireError.invalidLength(n)
        }
        return n
    }

    @inlinable
    public mutating func writeKafkaArrayLength(_ n: Int, compact: Bool) {
        writeKafkaLength(n, compact: compact, wide: true)
    }

    // MARK: UUID

    @inlinable
    public mutating func readKafkaUUID() throws -> KafkaUUID {
        let hi: UInt64 = try readKafkaInt()
        let lo: UInt64 = try readKafkaInt()
        return KafkaUUID(high: hi, low: lo)
    }

    @inlinable
    public mutating func writeKafkaUUID(_ u: KafkaUUID) {
        writeInteger(u.high, endianness: .big)
        writeInteger(u.low, endianness: .big)
    }
}
