import FjordMetadata
import FjordProtocol
import FjordWire

extension QuorumController {
    /// The most partitions one topic may gain in one request (Kafka's `MAX_PARTITIONS_PER_BATCH`).
    public static let maxPartitionsPerRequest = 10_000

    /// CreateTopics at request version `version`: validates names, partition counts,
    /// replication factors, manual assignments and configs as Kafka does; places replicas on
    /// active brokers; writes a `TopicRecord`, its `ConfigRecord`s and `PartitionRecord`s per
    /// topic (nothing when `validateOnly`). Results carry the topic id (v7+) and the
    /// partition count, replication factor and effective configs (v5+).
    public func createTopics(_ request: CreateTopicsRequest, version: Int16) -> ControllerResult<CreateTopicsResponse> {
        var response = CreateTopicsResponse()
        var out: [MetadataRecord] = []
        var counts: [String: Int] = [:]
        for t in request.topics { counts[t.name, default: 0] += 1 }
        var reportedDuplicates = Set<String>()
        for topic in request.topics {
            var result = CreateTopicsResponse.CreatableTopicResult()
            result.name = topic.name
            if (counts[topic.name] ?? 0) > 1 {
                guard reportedDuplicates.insert(topic.name).inserted else { continue }
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "Duplicate topic name."
                response.topics.append(result)
                continue
            }
            do {
                let (records, id, partitions, rf, configs) = try planTopic(topic)
                result.errorCode = ErrorCode.noError.rawValue
                result.errorMessage = nil
                if version >= 7 { result.topicId = id }
                if version >= 5 {
                    result.numPartitions = partitions
                    result.replicationFactor = rf
                    result.configs = image.effectiveTopicConfigs(overrides: configs).map {
                        var c = CreateTopicsResponse.CreatableTopicConfigs()
                        c.name = $0.name
                        c.value = $0.isSensitive ? nil : $0.value
                        c.readOnly = $0.readOnly
                        c.configSource = $0.source.rawValue
                        c.isSensitive = $0.isSensitive
                        return c
                    }
                }
                if !request.validateOnly { emit(records, into: &out) }
            } catch {
                result.errorCode = error.code.rawValue
                result.errorMessage = error.message
            }
            response.topics.append(result)
        }
        return ControllerResult(records: out, response: response)
    }

    /// The records for one new topic, or the error that refuses it.
    private func planTopic(_ topic: CreateTopicsRequest.CreatableTopic) throws(ApiError)
        -> (records: [MetadataRecord], id: KafkaUUID, partitions: Int32, replicationFactor: Int16, configs: [String: String]) {
        let name = topic.name
        if let why = TopicName.validationError(name) { throw ApiError(.invalidTopicException, why) }
        if image.topics[name] != nil { throw ApiError(.topicAlreadyExists, "Topic '\(name)' already exists.") }
        let key = TopicName.collisionKey(name)
        if let other = image.topics.keys.sorted().first(where: { TopicName.collisionKey($0) == key }) {
            throw ApiError(.invalidTopicException, "Topic '\(name)' collides with existing topic: \(other)")
        }

        // Replica assignments: manual or placed.
        var assignments: [[Int32]] = []
        if !topic.assignments.isEmpty {
            if topic.numPartitions != -1 || topic.replicationFactor != -1 {
                throw ApiError(.invalidRequest,
                               "A manual partition assignment was specified, but numPartitions or replicationFactor was not set to -1.")
            }
            if topic.assignments.count > Self.maxPartitionsPerRequest {
                throw ApiError(.invalidPartitions, "Excessively large number of partitions per request.")
            }
            var byIndex: [Int32: [Int32]] = [:]
            var rf: Int?
            for a in topic.assignments {
                if byIndex[a.partitionIndex] != nil {
                    throw ApiError(.invalidReplicaAssignment,
                                   "Found multiple manual partition assignments for partition \(a.partitionIndex)")
                }
                try validateManualAssignment(a.brokerIds, replicationFactor: rf)
                rf = a.brokerIds.count
                byIndex[a.partitionIndex] = a.brokerIds
            }
            for i in 0..<Int32(byIndex.count) {
                guard let replicas = byIndex[i] else {
                    throw ApiError(.invalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence")
                }
                assignments.append(replicas)
            }
        } else {
            let numPartitions = topic.numPartitions == -1 ? config.defaultNumPartitions : topic.numPartitions
            let rf = topic.replicationFactor == -1 ? config.defaultReplicationFactor : topic.replicationFactor
            if numPartitions <= 0 {
                throw ApiError(.invalidPartitions, "Number of partitions was set to an invalid non-positive value.")
            }
            if numPartitions > Self.maxPartitionsPerRequest {
                throw ApiError(.invalidPartitions, "Excessively large number of partitions per request.")
            }
            if rf <= 0 {
                throw ApiError(.invalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
            }
            do {
                assignments = try ReplicaPlacer.place(partitions: Int(numPartitions), replicationFactor: Int(rf),
                                                      brokers: image.activeBrokerIds, rng: &rng)
            } catch {
                throw ApiError(.invalidReplicationFactor, error.message)
            }
        }

        // Configs.
        var configs: [String: String] = [:]
        for c in topic.configs {
            guard let value = c.value else {
                throw ApiError(.invalidConfig, "Null value not supported for topic configs: \(c.name)")
            }
            if let why = TopicConfigs.validationError(name: c.name, value: value) { throw ApiError(.invalidConfig, why) }
            configs[c.name] = value
        }

        // Partitions: the ISR is the active replicas, the first of them leads.
        var partitionRecords: [MetadataRecord] = []
        let id = newTopicId()
        for (index, replicas) in assignments.enumerated() {
            let isr = replicas.filter { image.isActive(broker: $0) }
            guard let leader = isr.first else {
                throw ApiError(.invalidReplicaAssignment,
                               "All brokers specified in the manual partition assignment for partition \(index) "
                                   + "are fenced or in controlled shutdown.")
            }
            let record = newPartitionRecord(topicId: id, partition: Int32(index), replicas: replicas, isr: isr, leader: leader)
            partitionRecords.append(.partition(record))
        }

        var records: [MetadataRecord] = []
        var topicRecord = TopicRecord()
        topicRecord.name = name
        topicRecord.topicId = id
        records.append(.topic(topicRecord))
        for k in configs.keys.sorted() {
            var c = ConfigRecord()
            c.resourceType = ConfigResourceType.topic.rawValue
            c.resourceName = name
            c.name = k
            c.value = configs[k]
            records.append(.config(c))
        }
        records.append(contentsOf: partitionRecords)
        let rf = Int16(clamping: assignments.first?.count ?? 0)
        return (records, id, Int32(assignments.count), rf, configs)
    }

    func newPartitionRecord(topicId: KafkaUUID, partition: Int32, replicas: [Int32], isr: [Int32], leader: Int32) -> PartitionRecord {
        var r = PartitionRecord()
        r.topicId = topicId
        r.partitionId = partition
        r.replicas = replicas
        r.isr = isr
        r.leader = leader
        r.leaderEpoch = 0
        r.partitionEpoch = 0
        r.leaderRecoveryState = 0
        r.directories = replicas.map { defaultDirectory(broker: $0) }
        return r
    }

    /// Kafka's checks of one manually assigned replica list.
    func validateManualAssignment(_ replicas: [Int32], replicationFactor: Int?) throws(ApiError) {
        if replicas.isEmpty {
            throw ApiError(.invalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
        }
        var previous: Int32?
        for b in replicas.sorted() {
            if image.brokers[b] == nil {
                throw ApiError(.invalidReplicaAssignment,
                               "The manual partition assignment includes broker \(b), but no such broker is registered.")
            }
            if b == previous {
                throw ApiError(.invalidReplicaAssignment, "The manual partition assignment includes the broker \(b) more than once.")
            }
            previous = b
        }
        if let rf = replicationFactor, rf != replicas.count {
            throw ApiError(.invalidReplicaAssignment,
                           "The manual partition assignment includes a partition with \(replicas.count) replica(s), but this is not "
                           + "consistent with previous partitions, which have \(rf) replica(s).")
        }
    }

    /// CreatePartitions: raises a topic's partition count (never lowers it), placing the new
    /// partitions' replicas like CreateTopics does, or as assigned.
    public func createPartitions(_ request: CreatePartitionsRequest) -> ControllerResult<CreatePartitionsResponse> {
        var response = CreatePartitionsResponse()
        var out: [MetadataRecord] = []
        var counts: [String: Int] = [:]
        for t in request.topics { counts[t.name, default: 0] += 1 }
        var reportedDuplicates = Set<String>()
        for topic in request.topics {
            var result = CreatePartitionsResponse.CreatePartitionsTopicResult()
            result.name = topic.name
            if (counts[topic.name] ?? 0) > 1 {
                guard reportedDuplicates.insert(topic.name).inserted else { continue }
                result.errorCode = ErrorCode.invalidRequest.rawValue
                result.errorMessage = "Duplicate topic name."
                response.results.append(result)
                continue
            }
            do {
                let records = try planPartitions(topic)
                if !request.validateOnly { emit(records, into: &out) }
                result.errorCode = ErrorCode.noError.rawValue
                result.errorMessage = nil
            } catch {
                result.errorCode = error.code.rawValue
                result.errorMessage = error.message
            }
            response.results.append(result)
        }
        return ControllerResult(records: out, response: response)
    }

    private func planPartitions(_ topic: CreatePartitionsRequest.CreatePartitionsTopic) throws(ApiError) -> [MetadataRecord] {
        guard let t = image.topics[topic.name] else {
            throw ApiError(.unknownTopicOrPartition, ErrorCode.unknownTopicOrPartition.message)
        }
        let current = t.partitions.count
        if Int(topic.count) == current { throw ApiError(.invalidPartitions, "Topic already has \(current) partitions.") }
        if Int(topic.count) < current {
            throw ApiError(.invalidPartitions,
                           "Topic currently has \(current) partitions, which is higher than the requested \(topic.count).")
        }
        let additional = Int(topic.count) - current
        if additional > Self.maxPartitionsPerRequest {
            throw ApiError(.invalidPartitions, "Excessively large number of partitions per request.")
        }
        guard let rf = t.sortedPartitionIds.first.flatMap({ t.partitions[$0]?.replicas.count }) else {
            throw ApiError(.unknownServerError, "Invalid state: topic \(topic.name) appears to have no partitions.")
        }
        var assignments: [[Int32]] = []
        if let manual = topic.assignments, !manual.isEmpty {
            if manual.count != additional {
                throw ApiError(.invalidReplicaAssignment,
                               "Attempted to add \(additional) additional partition(s), but only \(manual.count) "
                                   + "assignment(s) were specified.")
            }
            for a in manual {
                try validateManualAssignment(a.brokerIds, replicationFactor: rf)
                assignments.append(a.brokerIds)
            }
        } else {
            do {
                assignments = try ReplicaPlacer.place(partitions: additional, replicationFactor: rf,
                                                      brokers: image.activeBrokerIds, rng: &rng)
            } catch {
                throw ApiError(.invalidReplicationFactor, error.message)
            }
        }
        var records: [MetadataRecord] = []
        for (i, replicas) in assignments.enumerated() {
            let index = Int32(current + i)
            let isr = replicas.filter { image.isActive(broker: $0) }
            guard let leader = isr.first else {
                throw ApiError(.invalidReplicaAssignment,
                               "All brokers specified in the manual partition assignment for partition \(index) "
                                   + "are fenced or in controlled shutdown.")
            }
            let record = newPartitionRecord(topicId: t.id, partition: index, replicas: replicas, isr: isr, leader: leader)
            records.append(.partition(record))
        }
        return records
    }

    /// DeleteTopics at request version `version` (names before v6, names or ids from v6):
    /// one `RemoveTopicRecord` per topic; its partitions and configs go with it on replay.
    public func deleteTopics(_ request: DeleteTopicsRequest, version: Int16) -> ControllerResult<DeleteTopicsResponse> {
        var response = DeleteTopicsResponse()
        var out: [MetadataRecord] = []
        let entries: [(name: String?, id: KafkaUUID)] = version >= 6
            ? request.topics.map { ($0.name, $0.topicId) }
            : request.topicNames.map { ($0, KafkaUUID.zero) }
        var nameCounts: [String: Int] = [:]
        var idCounts: [KafkaUUID: Int] = [:]
        for e in entries {
            if let n = e.name { nameCounts[n, default: 0] += 1 } else if e.id != .zero { idCounts[e.id, default: 0] += 1 }
        }
        for e in entries {
            var result = DeleteTopicsResponse.DeletableTopicResult()
            result.name = e.name
            result.topicId = e.id
            result.errorMessage = nil
            func fail(_ code: ErrorCode, _ message: String) {
                result.errorCode = code.rawValue
                result.errorMessage = message
                response.responses.append(result)
            }
            if e.name != nil, e.id != .zero { fail(.invalidRequest, "You may not specify both topic name and topic id."); continue }
            if e.name == nil && e.id == .zero { fail(.invalidRequest, "Neither topic name nor id were specified."); continue }
            if let n = e.name, (nameCounts[n] ?? 0) > 1 { fail(.invalidRequest, "Duplicate topic name."); continue }
            if e.name == nil, (idCounts[e.id] ?? 0) > 1 { fail(.invalidRequest, "Duplicate topic id."); continue }
            if !config.deleteTopicEnable { fail(.topicDeletionDisabled, ErrorCode.topicDeletionDisabled.message); continue }
            let topic: TopicImage
            if let n = e.name {
                guard let t = image.topics[n] else {
                    fail(.unknownTopicOrPartition, ErrorCode.unknownTopicOrPartition.message)
                    continue
                }
                topic = t
            } else {
                guard let t = image.topic(id: e.id) else {
                    fail(.unknownTopicId, ErrorCode.unknownTopicId.message)
                    continue
                }
                topic = t
            }
            result.name = topic.name
            if version >= 6 { result.topicId = topic.id }
            var rec = RemoveTopicRecord()
            rec.topicId = topic.id
            emit([.removeTopic(rec)], into: &out)
            response.responses.append(result)
        }
        return ControllerResult(records: out, response: response)
    }
}
