import FjordMetadata
import FjordProtocol

extension QuorumController {
    /// Periodic work at `nowMs`; returns the records it generated (already replayed).
    ///
    /// - Fences every unfenced broker not heard from for longer than
    ///   `broker.session.timeout.ms`: it leaves ISRs (never emptying one) and loses its
    ///   leaderships to other ISR members, or the partition goes leaderless.
    /// - Elects leaders uncleanly for leaderless partitions of topics that allow it.
    /// - Every `leader.imbalance.check.interval`, moves leadership back to preferred
    ///   replicas for brokers over `leader.imbalance.per.broker.percentage`.
    public func tick(nowMs: Int64) -> [MetadataRecord] {
        var out: [MetadataRecord] = []
        // An unfenced broker this controller has not tracked yet (unfenced by a replayed
        // record) gets a full session from now.
        for b in image.brokers.values where !b.fenced && sessions[b.id] == nil {
            sessions[b.id] = BrokerSession(lastContactMs: nowMs)
        }
        for id in sessions.keys.sorted() {
            guard let s = sessions[id], let b = image.brokers[id], !b.fenced else {
                sessions[id] = nil
                continue
            }
            if nowMs - s.lastContactMs > config.brokerSessionTimeoutMs {
                out.append(contentsOf: fence(broker: id))
            }
        }
        for (id, since) in suspects.sorted(by: { $0.key < $1.key }) {
            if let s = sessions[id], s.lastContactMs > since {
                suspects[id] = nil
            } else if nowMs - since >= config.brokerHeartbeatIntervalMs {
                suspects[id] = nil
                out.append(contentsOf: brokerUnreachable(id, nowMs: nowMs))
            }
        }
        out.append(contentsOf: electUncleanLeaders())
        if config.autoLeaderRebalanceEnable, nowMs >= nextImbalanceCheckMs {
            nextImbalanceCheckMs = nowMs + config.leaderImbalanceCheckIntervalMs
            out.append(contentsOf: rebalanceLeaders())
        }
        return out
    }

    /// Unclean elections for leaderless partitions of topics with unclean election enabled.
    func electUncleanLeaders() -> [MetadataRecord] {
        var out: [MetadataRecord] = []
        let image = self.image
        for (topic, pid, p) in partitionsWithoutLeader() where uncleanElectionEnabled(topic: topic.name) {
            var builder = PartitionChangeBuilder(partition: p, topicId: topic.id, partitionId: pid,
                                                 isAcceptableLeader: { image.isActive(broker: $0) })
            builder.election = .unclean
            if let rec = builder.build() { emit([.partitionChange(rec)], into: &out) }
        }
        return out
    }

    /// Preferred-leader elections for the partitions of every active broker whose share of
    /// partitions led by others exceeds the configured percentage.
    func rebalanceLeaders() -> [MetadataRecord] {
        let all = image.allPartitions()
        var preferredCount: [Int32: Int] = [:]
        var notLedCount: [Int32: Int] = [:]
        for (_, _, p) in all {
            guard let preferred = p.preferredLeader else { continue }
            preferredCount[preferred, default: 0] += 1
            if p.leader != preferred { notLedCount[preferred, default: 0] += 1 }
        }
        let threshold = Int(config.leaderImbalancePerBrokerPercentage)
        var out: [MetadataRecord] = []
        let image = self.image
        for (topic, pid, p) in all {
            guard let preferred = p.preferredLeader, p.leader != preferred, image.isActive(broker: preferred),
                  p.isr.contains(preferred), let total = preferredCount[preferred], total > 0 else { continue }
            let notLed = notLedCount[preferred] ?? 0
            guard notLed * 100 > threshold * total else { continue }
            var builder = PartitionChangeBuilder(partition: p, topicId: topic.id, partitionId: pid,
                                                 isAcceptableLeader: { image.isActive(broker: $0) })
            builder.election = .preferred
            if let rec = builder.build() { emit([.partitionChange(rec)], into: &out) }
        }
        return out
    }
}

extension QuorumController {
    /// The shell learned that broker `id`'s process is gone (its heartbeat connection
    /// closed, or its controller port refuses connections after a `kill -9`): its session
    /// ends now rather than after `broker.session.timeout.ms`, so its leaderships move at
    /// once. A live broker that only lost a connection heartbeats again and is unfenced
    /// when caught up, as after any fencing.
    public func brokerUnreachable(_ id: Int32, nowMs: Int64) -> [MetadataRecord] {
        suspects[id] = nil
        guard let b = image.brokers[id], !b.fenced else { return [] }
        sessions[id] = nil
        return fence(broker: id)
    }

    /// Broker `id`'s heartbeat connection closed but its process may be alive (a timeout, a
    /// reconnect): it is fenced unless it heartbeats within `broker.heartbeat.interval.ms`.
    public func brokerConnectionLost(_ id: Int32, nowMs: Int64) {
        guard let b = image.brokers[id], !b.fenced else { return }
        suspects[id] = nowMs
    }
}
