import FjordMetadata
import FjordProtocol

/// DescribeTopicPartitions (KIP-966): topics and partitions from the image, sorted by name
/// and partition, at most `responsePartitionLimit` partitions per response with a cursor to
/// continue from. An empty topic list means every topic.
enum TopicPartitionsDescriber {
    static let maxPartitionLimit: Int32 = 2000

    static func describe(_ r: DescribeTopicPartitionsRequest, image: MetadataImage) -> DescribeTopicPartitionsResponse {
        var resp = DescribeTopicPartitionsResponse()
        var names = r.topics.isEmpty ? image.topics.keys.sorted() : r.topics.map(\.name).sorted()
        if let c = r.cursor { names = names.filter { $0 >= c.topicName } }
        var budget = Int(max(1, min(r.responsePartitionLimit, maxPartitionLimit)))
        for name in names {
            var t = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic()
            t.name = name
            guard let topic = image.topics[name] else {
                t.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                resp.topics.append(t)
                continue
            }
            t.topicId = topic.id
            t.isInternal = name.hasPrefix("__")
            let start: Int32 = (r.cursor?.topicName == name) ? (r.cursor?.partitionIndex ?? 0) : 0
            for pid in topic.sortedPartitionIds where pid >= start {
                if budget == 0 {
                    var next = DescribeTopicPartitionsResponse.Cursor()
                    next.topicName = name
                    next.partitionIndex = pid
                    resp.nextCursor = next
                    if !t.partitions.isEmpty { resp.topics.append(t) }
                    return resp
                }
                guard let p = topic.partitions[pid] else { continue }
                var x = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition()
                x.partitionIndex = pid
                x.leaderId = p.leader
                x.leaderEpoch = p.leaderEpoch
                x.replicaNodes = p.replicas
                x.isrNodes = p.isr
                x.eligibleLeaderReplicas = []
                x.lastKnownElr = []
                x.offlineReplicas = p.replicas.filter { image.brokers[$0] == nil || image.brokers[$0]?.fenced == true }
                t.partitions.append(x)
                budget -= 1
            }
            resp.topics.append(t)
        }
        return resp
    }
}
