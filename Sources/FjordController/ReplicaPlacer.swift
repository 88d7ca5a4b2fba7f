/// Places the replicas of new partitions on active brokers (rack-unaware).
///
/// Brokers are taken in id order. Partition `p` (counted from the first new partition) is
/// led by broker `(start + p) mod n`, so leaders stripe evenly across brokers; its
/// followers are the next brokers after the leader at an offset that shifts once per full
/// round, so follower sets spread too. `start` and the initial shift come from the
/// controller's seeded random source, so consecutive topics do not all start on the same
/// broker.
struct ReplicaPlacer {
    /// Why placement is impossible (Kafka's INVALID_REPLICATION_FACTOR message).
    struct Failure: Error {
        var message: String
    }

    static func place(partitions: Int, replicationFactor: Int, brokers: [Int32],
                      rng: inout SeededRandom) throws(Failure) -> [[Int32]] {
        let n = brokers.count
        if n == 0 {
            throw Failure(message: "Unable to replicate the partition \(replicationFactor) time(s): All brokers are currently fenced.")
        }
        if replicationFactor > n {
            throw Failure(message: "Unable to replicate the partition \(replicationFactor) time(s): The target replication factor "
                + "of \(replicationFactor) cannot be reached because only \(n) broker(s) are registered and unfenced.")
        }
        let start = rng.below(n)
        let shift = n > 1 ? rng.below(n - 1) : 0
        var out: [[Int32]] = []
        out.reserveCapacity(partitions)
        for p in 0..<partitions {
            let first = (start + p) % n
            var replicas = [brokers[first]]
            if replicationFactor > 1 {
                let s = (shift + p / n) % (n - 1)
                for j in 0..<(replicationFactor - 1) {
                    replicas.append(brokers[(first + 1 + (s + j) % (n - 1)) % n])
                }
            }
            out.append(replicas)
        }
        return out
    }
}
