/// A Kafka UUID (topic ids, directory ids, cluster ids): 128 bits, printed the way Kafka
/// prints them, as URL-safe base64 without padding (22 characters).
public struct KafkaUUID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The all-zero UUID, Kafka's `Uuid.ZERO_UUID` ("AAAAAAAAAAAAAAAAAAAAAA").
    public static let zero = KafkaUUID(high: 0, low: 0)
    /// Kafka's `Uuid.ONE_UUID`, reserved and never handed out.
    public static let one = KafkaUUID(high: 0, low: 1)

    /// A random version-4 UUID, as Kafka's `Uuid.randomUuid()` makes; never returns the
    /// reserved values or one whose text starts with '-'.
    public static func random<G: RandomNumberGenerator>(using rng: inout G) -> KafkaUUID {
        while true {
            var hi = rng.next() as UInt64
            var lo = rng.next() as UInt64
            hi = (hi & ~0xF000) | 0x4000          // version 4
            lo = (lo & ~(0xC000_0000_0000_0000)) | 0x8000_0000_0000_0000  // IETF variant
            let u = KafkaUUID(high: hi, low: lo)
            if u == .zero || u == .one { continue }
            if u.description.hasPrefix("-") { continue }
            return u
        }
    }

    public static func random() -> KafkaUUID {
        var g = SystemRandomNumberGenerator()
        return random(using: &g)
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            out[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i)))
            out[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i)))
        }
        return out
    }

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16)
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<8 {
            h = (h << 8) | UInt64(bytes[i])
            l = (l << 8) | UInt64(bytes[8 + i])
        }
        self.init(high: h, low: l)
    }

    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// URL-safe base64 without padding.
    public var description: String {
        let b = bytes
        var out: [UInt8] = []
        out.reserveCapacity(22)
        var i = 0
        while i + 3 <= 16 {
            let v = (UInt32(b[i]) << 16) | (UInt32(b[i + 1]) << 8) | UInt32(b[i + 2])
            out.append(Self.alphabet[Int((v >> 18) & 63)])
            out.append(Self.alphabet[Int((v >> 12) & 63)])
            out.append(Self.alphabet[Int((v >> 6) & 63)])
            out.append(Self.alphabet[Int(v & 63)])
            i += 3
        }
        // one byte left (16 = 5*3 + 1)
        let v = UInt32(b[15]) << 16
        out.append(Self.alphabet[Int((v >> 18) & 63)])
        out.append(Self.alphabet[Int((v >> 12) & 63)])
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses Kafka's text form (URL-safe base64, 22 characters, no padding).
    public init?(_ text: String) {
        let chars = Array(text.utf8)
        guard chars.count == 22 else { return nil }
        var vals: [UInt32] = []
        vals.reserveCapacity(22)
        for c in chars {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): vals.append(UInt32(c - UInt8(ascii: "A")))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): vals.append(UInt32(c - UInt8(ascii: "a")) + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): vals.append(UInt32(c - UInt8(ascii: "0")) + 52)
            case UInt8(ascii: "-"): vals.append(62)
            case UInt8(ascii: "_"): vals.append(63)
            default: return nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i + 4 <= 20 {
            let v = (vals[i] << 18) | (vals[i + 1] << 12) | (vals[i + 2] << 6) | vals[i + 3]
            out.append(UInt8(truncatingIfNeeded: v >> 16))
            out.append(UInt8(truncatingIfNeeded: v >> 8))
            out.append(UInt8(truncatingIfNeeded: v))
            i += 4
        }
        guard vals[21] & 0x0F == 0 else { return nil }  // non-canonical trailing bits
        out.append(UInt8(truncatingIfNeeded: (vals[20] << 2) | (vals[21] >> 4)))
        self.init(bytes: out)
    }

    public static func < (a: KafkaUUID, b: KafkaUUID) -> Bool {
        (a.high, a.low) < (b.high, b.low)
    }
}
