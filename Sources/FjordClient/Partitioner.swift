import NIOCore

/// Kafka's partitioning of keyed records: MurmurHash2 (Austin Appleby's 32-bit hash, seed
/// 0x9747b28c, as Kafka's default partitioner uses it), made positive, modulo the partition count.
public enum Murmur2 {
    /// The 32-bit MurmurHash2 of `bytes` with Kafka's seed.
    public static func hash<C: Collection>(_ bytes: C) -> Int32 where C.Element == UInt8 {
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        let length = bytes.count
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
        var it = bytes.makeIterator()
        var i = 0
        while i + 4 <= length {
            let b0 = UInt32(it.next()!), b1 = UInt32(it.next()!), b2 = UInt32(it.next()!), b3 = UInt32(it.next()!)
            var k = b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
            i += 4
        }
        let rest = length - i
        if rest > 0 {
            var tail: [UInt32] = []
            while let b = it.next() { tail.append(UInt32(b)) }
            if rest == 3 { h ^= tail[2] << 16 }
            if rest >= 2 { h ^= tail[1] << 8 }
            h ^= tail[0]
            h = h &* m
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// Kafka's `Utils.toPositive`: clears the sign bit.
    public static func toPositive(_ v: Int32) -> Int32 { v & 0x7fff_ffff }

    /// The partition Kafka's default partitioner picks for `key` among `partitions`.
    public static func partition(forKey key: ByteBuffer, partitions: Int) -> Int32 {
        precondition(partitions > 0)
        let h = key.withUnsafeReadableBytes { hash($0) }
        return toPositive(h) % Int32(partitions)
    }
}

/// How records without a partition are spread: keyed records by murmur2 of the key; records
/// without a key stick to one partition until about `batch.size` bytes went to it, then move
/// on to the next (Kafka's built-in sticky partitioner, KIP-794, without the queue weighting).
public struct Partitioner: Sendable {
    public enum Strategy: String, Sendable {
        /// murmur2 for keys, sticky for null keys (Kafka's default).
        case `default`
        /// Every null-keyed record to the next partition in turn.
        case roundRobin = "round-robin"
    }

    public var strategy: Strategy
    public var stickyBytes: Int
    private var sticky: [String: (partition: Int32, bytes: Int)] = [:]
    private var counters: [String: Int32] = [:]
    /// The sticky state of the topic of the last call, kept out of the dictionary: a producer
    /// usually sends to one topic, and hashing its name for every record costs more than the
    /// rest of the choice.
    private var hotTopic: String?
    private var hot: (partition: Int32, bytes: Int) = (-1, 0)

    public init(strategy: Strategy = .default, stickyBytes: Int = 16_384) {
        self.strategy = strategy
        self.stickyBytes = stickyBytes
        // Start at a random partition, as Kafka does, so short-lived producers spread too.
    }

    /// The partition for a record of `size` bytes with `key` in a topic of `count` partitions;
    /// `available` are the partitions with a leader (used for null keys when not empty).
    public mutating func partition(topic: String, key: ByteBuffer?, size: Int, count: Int, available: [Int32] = []) -> Int32 {
        if let key { return Murmur2.partition(forKey: key, partitions: count) }
        if strategy == .default {
            if hotTopic != topic {
                if let h = hotTopic { sticky[h] = hot }
                hotTopic = topic
                hot = sticky[topic] ?? (-1, 0)
            }
            if hot.partition >= 0, hot.partition < Int32(count), hot.bytes < stickyBytes {
                hot.bytes += size
                return hot.partition
            }
        }
        let choices = available.isEmpty ? Array(0..<Int32(count)) : available
        switch strategy {
        case .roundRobin:
            let n = counters[topic, default: Int32.random(in: 0..<Int32(max(1, choices.count)))]
            counters[topic] = n &+ 1
            return choices[Int(n & 0x7fff_ffff) % choices.count]
        case .default:
            let next: Int32
            if hot.partition >= 0, let i = choices.firstIndex(of: hot.partition) {
                next = choices[(i + 1) % choices.count]
            } else {
                next = choices.randomElement()!
            }
            hot = (next, size)
            return next
        }
    }
}
