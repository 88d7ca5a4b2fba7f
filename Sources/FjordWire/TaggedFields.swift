import NIOCore

/// A tagged field this code does not know (a newer peer's addition). Decoders keep them
/// and encoders write them back, so a message passes through Fjord unchanged.
public struct RawTaggedField: Hashable, Sendable {
    public var tag: UInt32
    public var data: ByteBuffer

    public init(tag: UInt32, data: ByteBuffer) {
        self.tag = tag
        self.data = data
    }
}

/// Collects a struct's tagged fields during encoding and writes them in ascending tag order.
public struct TaggedFieldWriter {
    @usableFromInline var fields: [RawTaggedField] = []

    @inlinable public init() {}

    @inlinable
    public mutating func add(tag: UInt32, data: ByteBuffer) {
        fields.append(RawTaggedField(tag: tag, data: data))
    }

    /// Writes the count, then each tag, size and payload.
    @inlinable
    public mutating func write(to buf: inout ByteBuffer, unknown: [RawTaggedField]) {
        if fields.isEmpty && unknown.isEmpty {
            buf.writeInteger(UInt8(0))
            return
        }
        fields.append(contentsOf: unknown)
        fields.sort { $0.tag < $1.tag }
        buf.writeUnsignedVarint(UInt32(fields.count))
        for f in fields {
            buf.writeUnsignedVarint(f.tag)
            buf.writeUnsignedVarint(UInt32(f.data.readableBytes))
            var d = f.data
            buf.writeBuffer(&d)
        }
    }
}

/// Reads the header of a tagged-field section: call `next` until it returns nil.
public struct TaggedFieldReader {
    @usableFromInline var remaining: UInt32
    @usableFromInline var lastTag: Int64 = -1

    @inlinable
    public init(from buf: inout ByteBuffer) throws {
        remaining = try buf.readUnsignedVarint()
    }

    /// The next tag and its payload as a slice; tags must be strictly ascending.
    @inlinable
    public mutating func next(from buf: inout ByteBuffer) throws -> (tag: UInt32, data: ByteBuffer)? {
        guard remaining > 0 else { return nil }
        remaining -= 1
        let tag = try buf.readUnsignedVarint()
        guard Int64(tag) > lastTag else { throw WireError.malformed("tagged fields out of order (tag \(tag))") }
        lastTag = Int64(tag)
        let size = Int(try buf.readUnsignedVarint())
        guard let data = buf.readSlice(length: size) else {
            throw WireError.truncated(needed: size, available: buf.readableBytes)
        }
        return (tag, data)
    }
}

/// A value that can be read from and written to the Kafka wire at a given version.
public protocol KafkaCodable: Sendable {
    init(from buf: inout ByteBuffer, version: Int16) throws
    func encode(to buf: inout ByteBuffer, version: Int16) throws
}
