import FjordProtocol
import FjordWire
import NIOCore

/// The values the kafka-python golden tests encode: one builder per message, taking the
/// version and setting every field that version has (per the schema's "versions") to a value
/// other than its default, arrays with two or more elements, and nulls where nullable (often
/// alternating with the version's parity, so both null and non-null are exercised).
enum GoldenBuilders {
    static func all() -> [GoldenBuilder] {
        var list: [GoldenBuilder] = [
            GoldenBuilder(ApiVersionsRequest.self, apiVersionsRequest),
            GoldenBuilder(ApiVersionsResponse.self, apiVersionsResponse),
            GoldenBuilder(MetadataRequest.self, metadataRequest),
            GoldenBuilder(MetadataResponse.self, metadataResponse),
            GoldenBuilder(ProduceRequest.self, produceRequest),
            GoldenBuilder(ProduceResponse.self, produceResponse),
            GoldenBuilder(FetchRequest.self, fetchRequest),
            GoldenBuilder(FetchResponse.self, fetchResponse),
            GoldenBuilder(ListOffsetsRequest.self, listOffsetsRequest),
            GoldenBuilder(ListOffsetsResponse.self, listOffsetsResponse),
            GoldenBuilder(FindCoordinatorRequest.self, findCoordinatorRequest),
            GoldenBuilder(FindCoordinatorResponse.self, findCoordinatorResponse),
            GoldenBuilder(JoinGroupRequest.self, joinGroupRequest),
            GoldenBuilder(JoinGroupResponse.self, joinGroupResponse),
            GoldenBuilder(SyncGroupRequest.self, syncGroupRequest),
            GoldenBuilder(SyncGroupResponse.self, syncGroupResponse),
            GoldenBuilder(HeartbeatRequest.self, heartbeatRequest),
            GoldenBuilder(HeartbeatResponse.self, heartbeatResponse),
            GoldenBuilder(LeaveGroupRequest.self, leaveGroupRequest),
            GoldenBuilder(LeaveGroupResponse.self, leaveGroupResponse),
            GoldenBuilder(OffsetCommitRequest.self, offsetCommitRequest),
            GoldenBuilder(OffsetCommitResponse.self, offsetCommitResponse),
            GoldenBuilder(OffsetFetchRequest.self, offsetFetchRequest),
            GoldenBuilder(OffsetFetchResponse.self, offsetFetchResponse),
            GoldenBuilder(CreateTopicsRequest.self, createTopicsRequest),
            GoldenBuilder(CreateTopicsResponse.self, createTopicsResponse),
            GoldenBuilder(DeleteTopicsRequest.self, deleteTopicsRequest),
            GoldenBuilder(DeleteTopicsResponse.self, deleteTopicsResponse),
            GoldenBuilder(DescribeConfigsRequest.self, describeConfigsRequest),
            GoldenBuilder(DescribeConfigsResponse.self, describeConfigsResponse),
            GoldenBuilder(AlterConfigsRequest.self, alterConfigsRequest),
            GoldenBuilder(AlterConfigsResponse.self, alterConfigsResponse),
            GoldenBuilder(DescribeGroupsRequest.self, describeGroupsRequest),
            GoldenBuilder(DescribeGroupsResponse.self, describeGroupsResponse),
            GoldenBuilder(ListGroupsRequest.self, listGroupsRequest),
            GoldenBuilder(ListGroupsResponse.self, listGroupsResponse),
            GoldenBuilder(SaslHandshakeRequest.self, saslHandshakeRequest),
            GoldenBuilder(SaslHandshakeResponse.self, saslHandshakeResponse),
            GoldenBuilder(CreatePartitionsRequest.self, createPartitionsRequest),
            GoldenBuilder(CreatePartitionsResponse.self, createPartitionsResponse),
            GoldenBuilder(DeleteRecordsRequest.self, deleteRecordsRequest),
            GoldenBuilder(DeleteRecordsResponse.self, deleteRecordsResponse),
            GoldenBuilder(DescribeAclsRequest.self, describeAclsRequest),
            GoldenBuilder(DescribeAclsResponse.self, describeAclsResponse),
            GoldenBuilder(InitProducerIdRequest.self, initProducerIdRequest),
            GoldenBuilder(InitProducerIdResponse.self, initProducerIdResponse),
            GoldenBuilder(AddPartitionsToTxnRequest.self, addPartitionsToTxnRequest),
            GoldenBuilder(AddPartitionsToTxnResponse.self, addPartitionsToTxnResponse),
            GoldenBuilder(EndTxnRequest.self, endTxnRequest),
            GoldenBuilder(EndTxnResponse.self, endTxnResponse),
            GoldenBuilder(AddOffsetsToTxnRequest.self, addOffsetsToTxnRequest),
            GoldenBuilder(AddOffsetsToTxnResponse.self, addOffsetsToTxnResponse),
            GoldenBuilder(TxnOffsetCommitRequest.self, txnOffsetCommitRequest),
            GoldenBuilder(TxnOffsetCommitResponse.self, txnOffsetCommitResponse),
            GoldenBuilder(OffsetForLeaderEpochRequest.self, offsetForLeaderEpochRequest),
            GoldenBuilder(OffsetForLeaderEpochResponse.self, offsetForLeaderEpochResponse),
            GoldenBuilder(SaslAuthenticateRequest.self, saslAuthenticateRequest),
            GoldenBuilder(SaslAuthenticateResponse.self, saslAuthenticateResponse),
            GoldenBuilder(CreateAclsRequest.self, createAclsRequest),
            GoldenBuilder(CreateAclsResponse.self, createAclsResponse),
            GoldenBuilder(DeleteAclsRequest.self, deleteAclsRequest),
            GoldenBuilder(DeleteAclsResponse.self, deleteAclsResponse),
            GoldenBuilder(DescribeLogDirsRequest.self, describeLogDirsRequest),
            GoldenBuilder(DescribeLogDirsResponse.self, describeLogDirsResponse),
            GoldenBuilder(DeleteGroupsRequest.self, deleteGroupsRequest),
            GoldenBuilder(DeleteGroupsResponse.self, deleteGroupsResponse),
            GoldenBuilder(ElectLeadersRequest.self, electLeadersRequest),
            GoldenBuilder(ElectLeadersResponse.self, electLeadersResponse),
            GoldenBuilder(AlterPartitionReassignmentsRequest.self, alterPartitionReassignmentsRequest),
            GoldenBuilder(AlterPartitionReassignmentsResponse.self, alterPartitionReassignmentsResponse),
            GoldenBuilder(ListPartitionReassignmentsRequest.self, listPartitionReassignmentsRequest),
            GoldenBuilder(ListPartitionReassignmentsResponse.self, listPartitionReassignmentsResponse),
            GoldenBuilder(DescribeClientQuotasRequest.self, describeClientQuotasRequest),
            GoldenBuilder(DescribeClientQuotasResponse.self, describeClientQuotasResponse),
            // Only in kafka-python's JSON classes; here for the nullable struct (KIP-893).
            GoldenBuilder(DescribeTopicPartitionsRequest.self, describeTopicPartitionsRequest),
            GoldenBuilder(DescribeTopicPartitionsResponse.self, describeTopicPartitionsResponse),
        ]
        // Also the generated samples of every message: the only values for the messages
        // without a builder here, and a second set (every field the generator knows, no
        // nulls) for those with one.
        for type in allGeneratedMessages {
            list.append(sampleBuilder(type))
        }
        return list
    }

    private static func sampleBuilder<M: SampleMessage>(_ type: M.Type) -> GoldenBuilder {
        GoldenBuilder(type, handWritten: false) { M.sample(version: $0.v) }
    }

    // MARK: Helpers

    /// `value` after `body` has set its fields.
    static func mk<T>(_ value: T, _ body: (inout T) -> Void) -> T {
        var v = value
        body(&v)
        return v
    }

    static func bytes(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    static func uuid(_ n: UInt64) -> KafkaUUID { KafkaUUID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_0000_0000 | n) }

    /// An authorized-operations bit set (READ, WRITE, CREATE, DESCRIBE: bits 3, 4, 5, 8).
    static let authorizedOperations: Int32 = 0b1_0011_1000

    // MARK: ApiVersions

    static func apiVersionsRequest(_ c: GoldenContext) -> ApiVersionsRequest {
        mk(ApiVersionsRequest()) { r in
            if c.v >= 3 {
                r.clientSoftwareName = "fjord-golden"
                r.clientSoftwareVersion = "1.2.3-é"
            }
        }
    }

    static func apiVersionsResponse(_ c: GoldenContext) -> ApiVersionsResponse {
        typealias R = ApiVersionsResponse
        return mk(R()) { r in
            r.errorCode = 35
            r.apiKeys = [
                mk(R.ApiVersion()) {
                    $0.apiKey = 0; $0.minVersion = 3; $0.maxVersion = 11
                },
                mk(R.ApiVersion()) {
                    $0.apiKey = 18; $0.minVersion = 0; $0.maxVersion = 4
                },
                mk(R.ApiVersion()) {
                    $0.apiKey = 1; $0.minVersion = 4; $0.maxVersion = 17
                },
            ]
            if c.v >= 1 { r.throttleTimeMs = 250 }
            // The tagged fields (v3+): kafka-python's legacy ApiVersionsResponse_v3 has no
            // names for them (only a raw `tags` dict), so they are set for the JSON classes only.
            if c.v >= 3 && !c.legacy {
                // Long enough that the tagged field's size needs a two-byte varint.
                r.supportedFeatures = [
                    mk(R.SupportedFeatureKey()) {
                        $0.name = "metadata.version"; $0.minVersion = 1; $0.maxVersion = 20
                    },
                    mk(R.SupportedFeatureKey()) {
                        $0.name = "kraft.version"; $0.minVersion = 0; $0.maxVersion = 1
                    },
                    mk(R.SupportedFeatureKey()) {
                        $0.name = String(repeating: "long.feature.name.", count: 9); $0.minVersion = -1; $0.maxVersion = .max
                    },
                ]
                r.finalizedFeaturesEpoch = 77
                r.finalizedFeatures = [
                    mk(R.FinalizedFeatureKey()) {
                        $0.name = "metadata.version"; $0.maxVersionLevel = 19; $0.minVersionLevel = 19
                    },
                    mk(R.FinalizedFeatureKey()) {
                        $0.name = "group.version"; $0.maxVersionLevel = 1; $0.minVersionLevel = 1
                    },
                ]
                r.zkMigrationReady = true
            }
        }
    }

    // MARK: Metadata

    static func metadataRequest(_ c: GoldenContext) -> MetadataRequest {
        typealias R = MetadataRequest
        return mk(R()) { r in
            r.topics = [
                mk(R.MetadataRequestTopic()) { t in
                    if c.v >= 10 { t.topicId = uuid(1) }
                    t.name = "orders"
                },
                mk(R.MetadataRequestTopic()) { t in
                    if c.v >= 10 { t.topicId = uuid(2) }
                    t.name = c.v >= 10 ? nil : "payments-é"
                },
            ]
            // Null (all topics) from v1, on some versions.
            if c.v % 4 == 1 { r.topics = nil }
            if c.v >= 4 { r.allowAutoTopicCreation = false }
            if (8...10).contains(c.v) { r.includeClusterAuthorizedOperations = true }
            if c.v >= 8 { r.includeTopicAuthorizedOperations = true }
        }
    }

    static func metadataResponse(_ c: GoldenContext) -> MetadataResponse {
        typealias R = MetadataResponse
        func partition(_ i: Int32) -> R.MetadataResponsePartition {
            mk(R.MetadataResponsePartition()) { p in
                p.errorCode = i == 0 ? 0 : 9
                p.partitionIndex = i
                p.leaderId = 100 + i
                if c.v >= 7 { p.leaderEpoch = 17 + i }
                p.replicaNodes = [100 + i, 101, 102]
                p.isrNodes = [100 + i, 102]
                if c.v >= 5 { p.offlineReplicas = [101, 103] }
            }
        }
        return mk(R()) { r in
            if c.v >= 3 { r.throttleTimeMs = 12 }
            r.brokers = [
                mk(R.MetadataResponseBroker()) { b in
                    b.nodeId = 100; b.host = "broker-0.example"; b.port = 9092
                    if c.v >= 1 { b.rack = "rack-a" }
                },
                mk(R.MetadataResponseBroker()) { b in
                    b.nodeId = 101; b.host = "broker-1.example"; b.port = 19092
                    if c.v >= 1 { b.rack = nil }
                },
            ]
            if c.v >= 2 { r.clusterId = c.odd ? nil : "cluster-Zx9" }
            if c.v >= 1 { r.controllerId = 101 }
            r.topics = [
                mk(R.MetadataResponseTopic()) { t in
                    t.errorCode = 0
                    t.name = "orders"
                    if c.v >= 10 { t.topicId = uuid(3) }
                    if c.v >= 1 { t.isInternal = true }
                    t.partitions = [partition(0), partition(1)]
                    if c.v >= 8 { t.topicAuthorizedOperations = authorizedOperations }
                },
                mk(R.MetadataResponseTopic()) { t in
                    t.errorCode = 3
                    t.name = c.v >= 12 ? nil : "missing"
                    if c.v >= 10 { t.topicId = uuid(4) }
                    t.partitions = [partition(2), partition(3)]
                    if c.v >= 8 { t.topicAuthorizedOperations = 0b1000 }
                },
            ]
            if (8...10).contains(c.v) { r.clusterAuthorizedOperations = 0b1_1000_0000 }
        }
    }

    // MARK: Produce

    static func produceRequest(_ c: GoldenContext) -> ProduceRequest {
        typealias R = ProduceRequest
        return mk(R()) { r in
            if c.v >= 3 { r.transactionalId = c.odd ? nil : "txn-1" }
            r.acks = -1
            r.timeoutMs = 30_000
            r.topicData = [
                mk(R.TopicProduceData()) { t in
                    t.name = "orders"
                    t.partitionData = [
                        mk(R.PartitionProduceData()) {
                            $0.index = 0; $0.records = c.batches[0]
                        },
                        mk(R.PartitionProduceData()) {
                            $0.index = 3; $0.records = c.batches[1]
                        },
                    ]
                },
                mk(R.TopicProduceData()) { t in
                    t.name = "audit"
                    t.partitionData = [
                        mk(R.PartitionProduceData()) {
                            $0.index = 1; $0.records = nil
                        },
                        mk(R.PartitionProduceData()) {
                            $0.index = 2; $0.records = ByteBuffer()
                        },
                        mk(R.PartitionProduceData()) {
                            $0.index = 4; $0.records = c.batches[2]
                        },
                    ]
                },
            ]
        }
    }

    static func produceResponse(_ c: GoldenContext) -> ProduceResponse {
        typealias R = ProduceResponse
        func partition(_ i: Int32) -> R.PartitionProduceResponse {
            mk(R.PartitionProduceResponse()) { p in
                p.index = i
                p.errorCode = i == 0 ? 0 : 6
                p.baseOffset = 1_000_000_000_000 + Int64(i)
                if c.v >= 2 { p.logAppendTimeMs = 1_700_000_000_123 }
                if c.v >= 5 { p.logStartOffset = 42 }
                if c.v >= 8 {
                    p.recordErrors = [
                        mk(R.BatchIndexAndErrorMessage()) {
                            $0.batchIndex = 0; $0.batchIndexErrorMessage = "bad record"
                        },
                        mk(R.BatchIndexAndErrorMessage()) {
                            $0.batchIndex = 5; $0.batchIndexErrorMessage = nil
                        },
                    ]
                    p.errorMessage = i == 0 ? nil : "not leader"
                }
                if c.v >= 10 {
                    p.currentLeader = mk(R.LeaderIdAndEpoch()) {
                        $0.leaderId = 102; $0.leaderEpoch = 9
                    }
                }
            }
        }
        return mk(R()) { r in
            r.responses = [
                mk(R.TopicProduceResponse()) {
                    $0.name = "orders"; $0.partitionResponses = [partition(0), partition(1)]
                },
                mk(R.TopicProduceResponse()) {
                    $0.name = "audit"; $0.partitionResponses = [partition(2), partition(3)]
                },
            ]
            if c.v >= 1 { r.throttleTimeMs = 3 }
            if c.v >= 10 {
                r.nodeEndpoints = [
                    mk(R.NodeEndpoint()) {
                        $0.nodeId = 102; $0.host = "broker-2.example"; $0.port = 9093; $0.rack = "rack-b"
                    },
                    mk(R.NodeEndpoint()) {
                        $0.nodeId = 103; $0.host = "broker-3.example"; $0.port = 9094; $0.rack = nil
                    },
                ]
            }
        }
    }

    // MARK: Fetch

    static func fetchRequest(_ c: GoldenContext) -> FetchRequest {
        typealias R = FetchRequest
        func partition(_ i: Int32) -> R.FetchPartition {
            mk(R.FetchPartition()) { p in
                p.partition = i
                if c.v >= 9 { p.currentLeaderEpoch = 5 + i }
                p.fetchOffset = 123_456_789_000 + Int64(i)
                if c.v >= 12 { p.lastFetchedEpoch = 4 }
                if c.v >= 5 { p.logStartOffset = 10 }
                p.partitionMaxBytes = 1_048_576
                if c.v >= 17 { p.replicaDirectoryId = uuid(UInt64(20 + i)) }
            }
        }
        return mk(R()) { r in
            if c.v >= 12 { r.clusterId = "cluster-Zx9" }
            if c.v <= 14 { r.replicaId = 7 }
            if c.v >= 15 {
                r.replicaState = mk(R.ReplicaState()) {
                    $0.replicaId = 7; $0.replicaEpoch = 1_000_000
                }
            }
            r.maxWaitMs = 500
            r.minBytes = 1
            if c.v >= 3 { r.maxBytes = 52_428_800 }
            if c.v >= 4 { r.isolationLevel = 1 }
            if c.v >= 7 { r.sessionId = 123; r.sessionEpoch = 4 }
            r.topics = [
                mk(R.FetchTopic()) { t in
                    if c.v <= 12 { t.topic = "orders" }
                    if c.v >= 13 { t.topicId = uuid(5) }
                    t.partitions = [partition(0), partition(1)]
                },
                mk(R.FetchTopic()) { t in
                    if c.v <= 12 { t.topic = "audit" }
                    if c.v >= 13 { t.topicId = uuid(6) }
                    t.partitions = [partition(2), partition(3)]
                },
            ]
            if c.v >= 7 {
                r.forgottenTopicsData = [
                    mk(R.ForgottenTopic()) { t in
                        if c.v <= 12 { t.topic = "old" }
                        if c.v >= 13 { t.topicId = uuid(7) }
                        t.partitions = [0, 4]
                    },
                    mk(R.ForgottenTopic()) { t in
                        if c.v <= 12 { t.topic = "older" }
                        if c.v >= 13 { t.topicId = uuid(8) }
                        t.partitions = Array(0..<200)  // a compact array length over 127
                    },
                ]
            }
            if c.v >= 11 { r.rackId = "rack-a" }
        }
    }

    static func fetchResponse(_ c: GoldenContext) -> FetchResponse {
        typealias R = FetchResponse
        func partition(_ i: Int32) -> R.PartitionData {
            mk(R.PartitionData()) { p in
                p.partitionIndex = i
                p.errorCode = i == 1 ? 1 : 0
                p.highWatermark = 5000 + Int64(i)
                if c.v >= 4 { p.lastStableOffset = 4990 }
                if c.v >= 5 { p.logStartOffset = 100 }
                if c.v >= 12 {
                    p.divergingEpoch = mk(R.EpochEndOffset()) {
                        $0.epoch = 3; $0.endOffset = 4000
                    }
                    p.currentLeader = mk(R.LeaderIdAndEpoch()) {
                        $0.leaderId = 101; $0.leaderEpoch = 8
                    }
                    p.snapshotId = mk(R.SnapshotId()) {
                        $0.endOffset = 3500; $0.epoch = 2
                    }
                }
                if c.v >= 4 {
                    p.abortedTransactions =
                        i == 0
                        ? nil
                        : [
                            mk(R.AbortedTransaction()) {
                                $0.producerId = 4242; $0.firstOffset = 4100
                            },
                            mk(R.AbortedTransaction()) {
                                $0.producerId = 4343; $0.firstOffset = 4200
                            },
                        ]
                }
                if c.v >= 11 { p.preferredReadReplica = 102 }
                p.records = i == 0 ? c.batches[0] : i == 1 ? nil : c.batches[Int(i) - 1]
            }
        }
        return mk(R()) { r in
            if c.v >= 1 { r.throttleTimeMs = 20 }
            if c.v >= 7 { r.errorCode = 0; r.sessionId = 987_654 }
            r.responses = [
                mk(R.FetchableTopicResponse()) { t in
                    if c.v <= 12 { t.topic = "orders" }
                    if c.v >= 13 { t.topicId = uuid(5) }
                    t.partitions = [partition(0), partition(1)]
                },
                mk(R.FetchableTopicResponse()) { t in
                    if c.v <= 12 { t.topic = "audit" }
                    if c.v >= 13 { t.topicId = uuid(6) }
                    t.partitions = [partition(2), partition(3)]
                },
            ]
            if c.v >= 16 {
                r.nodeEndpoints = [
                    mk(R.NodeEndpoint()) {
                        $0.nodeId = 101; $0.host = "broker-1.example"; $0.port = 9092; $0.rack = nil
                    },
                    mk(R.NodeEndpoint()) {
                        $0.nodeId = 102; $0.host = "broker-2.example"; $0.port = 9093; $0.rack = "rack-b"
                    },
                ]
            }
        }
    }

    // MARK: ListOffsets

    static func listOffsetsRequest(_ c: GoldenContext) -> ListOffsetsRequest {
        typealias R = ListOffsetsRequest
        func partition(_ i: Int32) -> R.ListOffsetsPartition {
            mk(R.ListOffsetsPartition()) { p in
                p.partitionIndex = i
                if c.v >= 4 { p.currentLeaderEpoch = 6 }
                p.timestamp = i == 0 ? -2 : 1_700_000_000_000
                if c.v == 0 { p.maxNumOffsets = 3 }
            }
        }
        return mk(R()) { r in
            r.replicaId = -1
            if c.v >= 2 { r.isolationLevel = 1 }
            r.topics = [
                mk(R.ListOffsetsTopic()) {
                    $0.name = "orders"; $0.partitions = [partition(0), partition(1)]
                },
                mk(R.ListOffsetsTopic()) {
                    $0.name = "audit"; $0.partitions = [partition(2), partition(3)]
                },
            ]
            if c.v >= 10 { r.timeoutMs = 15_000 }
        }
    }

    static func listOffsetsResponse(_ c: GoldenContext) -> ListOffsetsResponse {
        typealias R = ListOffsetsResponse
        func partition(_ i: Int32) -> R.ListOffsetsPartitionResponse {
            mk(R.ListOffsetsPartitionResponse()) { p in
                p.partitionIndex = i
                p.errorCode = i == 1 ? 6 : 0
                if c.v == 0 { p.oldStyleOffsets = [900, 500, 0] }
                if c.v >= 1 { p.timestamp = 1_700_000_000_000; p.offset = 77 + Int64(i) }
                if c.v >= 4 { p.leaderEpoch = 12 }
            }
        }
        return mk(R()) { r in
            if c.v >= 2 { r.throttleTimeMs = 1 }
            r.topics = [
                mk(R.ListOffsetsTopicResponse()) {
                    $0.name = "orders"; $0.partitions = [partition(0), partition(1)]
                },
                mk(R.ListOffsetsTopicResponse()) {
                    $0.name = "audit"; $0.partitions = [partition(2), partition(3)]
                },
            ]
        }
    }

    // MARK: FindCoordinator

    static func findCoordinatorRequest(_ c: GoldenContext) -> FindCoordinatorRequest {
        mk(FindCoordinatorRequest()) { r in
            if c.v <= 3 { r.key = "group-é" }
            if c.v >= 1 { r.keyType = 1 }
            if c.v >= 4 { r.coordinatorKeys = ["txn-1", "txn-2", ""] }
        }
    }

    static func findCoordinatorResponse(_ c: GoldenContext) -> FindCoordinatorResponse {
        typealias R = FindCoordinatorResponse
        return mk(R()) { r in
            if c.v >= 1 { r.throttleTimeMs = 9 }
            if c.v <= 3 {
                r.errorCode = 15
                if c.v >= 1 { r.errorMessage = c.odd ? "coordinator not available" : nil }
                r.nodeId = 101
                r.host = "broker-1.example"
                r.port = 9092
            }
            if c.v >= 4 {
                r.coordinators = [
                    mk(R.Coordinator()) {
                        $0.key = "txn-1"; $0.nodeId = 101; $0.host = "broker-1.example"; $0.port = 9092; $0.errorCode = 0;
                        $0.errorMessage = nil
                    },
                    mk(R.Coordinator()) {
                        $0.key = "txn-2"; $0.nodeId = -1; $0.host = ""; $0.port = -1; $0.errorCode = 15; $0.errorMessage = "not available"
                    },
                ]
            }
        }
    }

    // MARK: Group membership

    static func joinGroupRequest(_ c: GoldenContext) -> JoinGroupRequest {
        typealias R = JoinGroupRequest
        return mk(R()) { r in
            r.groupId = "group-1"
            r.sessionTimeoutMs = 45_000
            if c.v >= 1 { r.rebalanceTimeoutMs = 300_000 }
            r.memberId = "member-1"
            if c.v >= 5 { r.groupInstanceId = c.odd ? "instance-1" : nil }
            r.protocolType = "consumer"
            r.protocols = [
                mk(R.JoinGroupRequestProtocol()) {
                    $0.name = "range"; $0.metadata = bytes("\u{0}\u{1}range-meta")
                },
                mk(R.JoinGroupRequestProtocol()) {
                    $0.name = "cooperative-sticky"; $0.metadata = ByteBuffer()
                },
            ]
            if c.v >= 8 { r.reason = c.odd ? "rebalance needed" : nil }
        }
    }

    static func joinGroupResponse(_ c: GoldenContext) -> JoinGroupResponse {
        typealias R = JoinGroupResponse
        return mk(R()) { r in
            if c.v >= 2 { r.throttleTimeMs = 4 }
            r.errorCode = 0
            r.generationId = 12
            if c.v >= 7 { r.protocolType = c.odd ? "consumer" : nil }
            r.protocolName = c.v >= 7 && !c.odd ? nil : "range"
            r.leader = "member-1"
            if c.v >= 9 { r.skipAssignment = true }
            r.memberId = "member-2"
            r.members = [
                mk(R.JoinGroupResponseMember()) { m in
                    m.memberId = "member-1"
                    if c.v >= 5 { m.groupInstanceId = "instance-1" }
                    m.metadata = bytes("meta-1")
                },
                mk(R.JoinGroupResponseMember()) { m in
                    m.memberId = "member-2"
                    if c.v >= 5 { m.groupInstanceId = nil }
                    m.metadata = bytes("meta-2")
                },
            ]
        }
    }

    static func syncGroupRequest(_ c: GoldenContext) -> SyncGroupRequest {
        typealias R = SyncGroupRequest
        return mk(R()) { r in
            r.groupId = "group-1"
            r.generationId = 12
            r.memberId = "member-1"
            if c.v >= 3 { r.groupInstanceId = c.odd ? "instance-1" : nil }
            if c.v >= 5 { r.protocolType = "consumer"; r.protocolName = nil }
            r.assignments = [
                mk(R.SyncGroupRequestAssignment()) {
                    $0.memberId = "member-1"; $0.assignment = bytes("assign-1")
                },
                mk(R.SyncGroupRequestAssignment()) {
                    $0.memberId = "member-2"; $0.assignment = ByteBuffer(bytes: [0, 1, 2, 255])
                },
            ]
        }
    }

    static func syncGroupResponse(_ c: GoldenContext) -> SyncGroupResponse {
        mk(SyncGroupResponse()) { r in
            if c.v >= 1 { r.throttleTimeMs = 5 }
            r.errorCode = 27
            if c.v >= 5 { r.protocolType = nil; r.protocolName = "range" }
            r.assignment = ByteBuffer(bytes: [0, 3, 0, 0, 0, 1, 9])
        }
    }

    static func heartbeatRequest(_ c: GoldenContext) -> HeartbeatRequest {
        mk(HeartbeatRequest()) { r in
            r.groupId = "group-1"
            r.generationId = 12
            r.memberId = "member-1"
            if c.v >= 3 { r.groupInstanceId = c.odd ? "instance-1" : nil }
        }
    }

    static func heartbeatResponse(_ c: GoldenContext) -> HeartbeatResponse {
        mk(HeartbeatResponse()) { r in
            if c.v >= 1 { r.throttleTimeMs = 6 }
            r.errorCode = 27
        }
    }

    static func leaveGroupRequest(_ c: GoldenContext) -> LeaveGroupRequest {
        typealias R = LeaveGroupRequest
        return mk(R()) { r in
            r.groupId = "group-1"
            if c.v <= 2 { r.memberId = "member-1" }
            if c.v >= 3 {
                r.members = [
                    mk(R.MemberIdentity()) { m in
                        m.memberId = "member-1"; m.groupInstanceId = "instance-1"
                        if c.v >= 5 { m.reason = "shutting down" }
                    },
                    mk(R.MemberIdentity()) { m in
                        m.memberId = "member-2"; m.groupInstanceId = nil
                        if c.v >= 5 { m.reason = nil }
                    },
                ]
            }
        }
    }

    static func leaveGroupResponse(_ c: GoldenContext) -> LeaveGroupResponse {
        typealias R = LeaveGroupResponse
        return mk(R()) { r in
            if c.v >= 1 { r.throttleTimeMs = 7 }
            r.errorCode = 25
            if c.v >= 3 {
                r.members = [
                    mk(R.MemberResponse()) {
                        $0.memberId = "member-1"; $0.groupInstanceId = "instance-1"; $0.errorCode = 0
                    },
                    mk(R.MemberResponse()) {
                        $0.memberId = "member-2"; $0.groupInstanceId = nil; $0.errorCode = 25
                    },
                ]
            }
        }
    }

    // MARK: Offsets

    static func offsetCommitRequest(_ c: GoldenContext) -> OffsetCommitRequest {
        typealias R = OffsetCommitRequest
        func partition(_ i: Int32) -> R.OffsetCommitRequestPartition {
            mk(R.OffsetCommitRequestPartition()) { p in
                p.partitionIndex = i
                p.committedOffset = 1000 + Int64(i)
                if c.v >= 6 { p.committedLeaderEpoch = 3 }
                if c.v == 1 { p.commitTimestamp = 1_700_000_000_000 }
                p.committedMetadata = i % 2 == 0 ? "meta-\(i)" : nil
            }
        }
        return mk(R()) { r in
            r.groupId = "group-1"
            if c.v >= 1 { r.generationIdOrMemberEpoch = 12; r.memberId = "member-1" }
            if c.v >= 7 { r.groupInstanceId = c.odd ? "instance-1" : nil }
            if (2...4).contains(c.v) { r.retentionTimeMs = 86_400_000 }
            r.topics = [
                mk(R.OffsetCommitRequestTopic()) {
                    $0.name = "orders"; $0.partitions = [partition(0), partition(1)]
                },
                mk(R.OffsetCommitRequestTopic()) {
                    $0.name = "audit"; $0.partitions = [partition(2), partition(3)]
                },
            ]
        }
    }

    static func offsetCommitResponse(_ c: GoldenContext) -> OffsetCommitResponse {
        typealias R = OffsetCommitResponse
        return mk(R()) { r in
            if c.v >= 3 { r.throttleTimeMs = 8 }
            r.topics = [
                mk(R.OffsetCommitResponseTopic()) { t in
                    t.name = "orders"
                    t.partitions = [
                        mk(R.OffsetCommitResponsePartition()) {
                            $0.partitionIndex = 0; $0.errorCode = 0
                        },
                        mk(R.OffsetCommitResponsePartition()) {
                            $0.partitionIndex = 1; $0.errorCode = 22
                        },
                    ]
                },
                mk(R.OffsetCommitResponseTopic()) { t in
                    t.name = "audit"
                    t.partitions = [
                        mk(R.OffsetCommitResponsePartition()) {
                            $0.partitionIndex = 2; $0.errorCode = 3
                        }
                    ]
                },
            ]
        }
    }

    static func offsetFetchRequest(_ c: GoldenContext) -> OffsetFetchRequest {
        typealias R = OffsetFetchRequest
        return mk(R()) { r in
            if c.v <= 7 {
                r.groupId = "group-1"
                r.topics = [
                    mk(R.OffsetFetchRequestTopic()) {
                        $0.name = "orders"; $0.partitionIndexes = [0, 1, 2]
                    },
                    mk(R.OffsetFetchRequestTopic()) {
                        $0.name = "audit"; $0.partitionIndexes = []
                    },
                ]
                // Null (all topics) from v2, on odd versions.
                if c.v >= 2 && c.odd { r.topics = nil }
            }
            if c.v >= 8 {
                r.groups = [
                    mk(R.OffsetFetchRequestGroup()) { g in
                        g.groupId = "group-1"
                        if c.v >= 9 { g.memberId = "member-1"; g.memberEpoch = 5 }
                        g.topics = [
                            mk(R.OffsetFetchRequestTopics()) {
                                $0.name = "orders"; $0.partitionIndexes = [0, 1]
                            },
                            mk(R.OffsetFetchRequestTopics()) {
                                $0.name = "audit"; $0.partitionIndexes = [7]
                            },
                        ]
                    },
                    mk(R.OffsetFetchRequestGroup()) { g in
                        g.groupId = "group-2"
                        if c.v >= 9 { g.memberId = nil; g.memberEpoch = 6 }
                        g.topics = nil
                    },
                ]
            }
            if c.v >= 7 { r.requireStable = true }
        }
    }

    static func offsetFetchResponse(_ c: GoldenContext) -> OffsetFetchResponse {
        typealias R = OffsetFetchResponse
        return mk(R()) { r in
            if c.v >= 3 { r.throttleTimeMs = 10 }
            if c.v <= 7 {
                func partition(_ i: Int32) -> R.OffsetFetchResponsePartition {
                    mk(R.OffsetFetchResponsePartition()) { p in
                        p.partitionIndex = i
                        p.committedOffset = i == 1 ? -1 : 500 + Int64(i)
                        if c.v >= 5 { p.committedLeaderEpoch = 2 }
                        p.metadata = i == 1 ? nil : "meta"
                        p.errorCode = i == 1 ? 3 : 0
                    }
                }
                r.topics = [
                    mk(R.OffsetFetchResponseTopic()) {
                        $0.name = "orders"; $0.partitions = [partition(0), partition(1)]
                    },
                    mk(R.OffsetFetchResponseTopic()) {
                        $0.name = "audit"; $0.partitions = [partition(2)]
                    },
                ]
                if c.v >= 2 { r.errorCode = 14 }
            }
            if c.v >= 8 {
                func partition(_ i: Int32) -> R.OffsetFetchResponsePartitions {
                    mk(R.OffsetFetchResponsePartitions()) { p in
                        p.partitionIndex = i
                        p.committedOffset = 500 + Int64(i)
                        p.committedLeaderEpoch = 2
                        p.metadata = i == 1 ? nil : "meta"
                        p.errorCode = i == 1 ? 3 : 0
                    }
                }
                r.groups = [
                    mk(R.OffsetFetchResponseGroup()) { g in
                        g.groupId = "group-1"
                        g.topics = [
                            mk(R.OffsetFetchResponseTopics()) {
                                $0.name = "orders"; $0.partitions = [partition(0), partition(1)]
                            },
                            mk(R.OffsetFetchResponseTopics()) {
                                $0.name = "audit"; $0.partitions = [partition(2)]
                            },
                        ]
                        g.errorCode = 0
                    },
                    mk(R.OffsetFetchResponseGroup()) {
                        $0.groupId = "group-2"; $0.topics = []; $0.errorCode = 16
                    },
                ]
            }
        }
    }

    // MARK: Topics

    static func createTopicsRequest(_ c: GoldenContext) -> CreateTopicsRequest {
        typealias R = CreateTopicsRequest
        return mk(R()) { r in
            r.topics = [
                mk(R.CreatableTopic()) { t in
                    t.name = "orders"
                    t.numPartitions = -1
                    t.replicationFactor = -1
                    t.assignments = [
                        mk(R.CreatableReplicaAssignment()) {
                            $0.partitionIndex = 0; $0.brokerIds = [1, 2, 3]
                        },
                        mk(R.CreatableReplicaAssignment()) {
                            $0.partitionIndex = 1; $0.brokerIds = [2, 3, 1]
                        },
                    ]
                    t.configs = [
                        mk(R.CreatableTopicConfig()) {
                            $0.name = "cleanup.policy"; $0.value = "compact"
                        },
                        mk(R.CreatableTopicConfig()) {
                            $0.name = "retention.ms"; $0.value = nil
                        },
                    ]
                },
                mk(R.CreatableTopic()) { t in
                    t.name = "audit"
                    t.numPartitions = 12
                    t.replicationFactor = 3
                },
            ]
            r.timeoutMs = 5000
            if c.v >= 1 { r.validateOnly = true }
        }
    }

    static func createTopicsResponse(_ c: GoldenContext) -> CreateTopicsResponse {
        typealias R = CreateTopicsResponse
        return mk(R()) { r in
            if c.v >= 2 { r.throttleTimeMs = 11 }
            r.topics = [
                mk(R.CreatableTopicResult()) { t in
                    t.name = "orders"
                    if c.v >= 7 { t.topicId = uuid(9) }
                    t.errorCode = 0
                    if c.v >= 1 { t.errorMessage = nil }
                    if c.v >= 5 {
                        t.topicConfigErrorCode = 29
                        t.numPartitions = 2
                        t.replicationFactor = 3
                        t.configs = [
                            mk(R.CreatableTopicConfigs()) {
                                $0.name = "cleanup.policy"; $0.value = "compact"; $0.readOnly = true; $0.configSource = 1;
                                $0.isSensitive = false
                            },
                            mk(R.CreatableTopicConfigs()) {
                                $0.name = "sasl.secret"; $0.value = nil; $0.readOnly = false; $0.configSource = 5; $0.isSensitive = true
                            },
                        ]
                    }
                },
                mk(R.CreatableTopicResult()) { t in
                    t.name = "audit"
                    if c.v >= 7 { t.topicId = .zero }
                    t.errorCode = 36
                    if c.v >= 1 { t.errorMessage = "topic already exists" }
                    if c.v >= 5 { t.numPartitions = 12; t.replicationFactor = 1; t.configs = nil }
                },
            ]
        }
    }

    static func deleteTopicsRequest(_ c: GoldenContext) -> DeleteTopicsRequest {
        typealias R = DeleteTopicsRequest
        return mk(R()) { r in
            if c.v >= 6 {
                r.topics = [
                    mk(R.DeleteTopicState()) {
                        $0.name = "orders"; $0.topicId = .zero
                    },
                    mk(R.DeleteTopicState()) {
                        $0.name = nil; $0.topicId = uuid(10)
                    },
                ]
            }
            if c.v <= 5 { r.topicNames = ["orders", "audit", "é"] }
            r.timeoutMs = 30_000
        }
    }

    static func deleteTopicsResponse(_ c: GoldenContext) -> DeleteTopicsResponse {
        typealias R = DeleteTopicsResponse
        return mk(R()) { r in
            if c.v >= 1 { r.throttleTimeMs = 13 }
            r.responses = [
                mk(R.DeletableTopicResult()) { t in
                    t.name = "orders"
                    if c.v >= 6 { t.topicId = uuid(11) }
                    t.errorCode = 0
                    if c.v >= 5 { t.errorMessage = nil }
                },
                mk(R.DeletableTopicResult()) { t in
                    t.name = c.v >= 6 ? nil : "audit"
                    if c.v >= 6 { t.topicId = uuid(12) }
                    t.errorCode = 100
                    if c.v >= 5 { t.errorMessage = "unknown topic id" }
                },
            ]
        }
    }

    // MARK: Configs

    static func describeConfigsRequest(_ c: GoldenContext) -> DescribeConfigsRequest {
        typealias R = DescribeConfigsRequest
        return mk(R()) { r in
            r.resources = [
                mk(R.DescribeConfigsResource()) {
                    $0.resourceType = 2; $0.resourceName = "orders"; $0.configurationKeys = ["cleanup.policy", "retention.ms"]
                },
                mk(R.DescribeConfigsResource()) {
                    $0.resourceType = 4; $0.resourceName = "1"; $0.configurationKeys = nil
                },
            ]
            if c.v >= 1 { r.includeSynonyms = true }
            if c.v >= 3 { r.includeDocumentation = true }
        }
    }

    static func describeConfigsResponse(_ c: GoldenContext) -> DescribeConfigsResponse {
        typealias R = DescribeConfigsResponse
        func config(_ name: String, _ value: String?) -> R.DescribeConfigsResourceResult {
            mk(R.DescribeConfigsResourceResult()) { e in
                e.name = name
                e.value = value
                e.readOnly = value == nil
                if c.v == 0 { e.isDefault = true }
                if c.v >= 1 {
                    e.configSource = 5
                    e.synonyms = [
                        mk(R.DescribeConfigsSynonym()) {
                            $0.name = name; $0.value = value; $0.source = 1
                        },
                        mk(R.DescribeConfigsSynonym()) {
                            $0.name = "log." + name; $0.value = "x"; $0.source = 4
                        },
                    ]
                }
                e.isSensitive = value == nil
                if c.v >= 3 { e.configType = 5; e.documentation = value == nil ? nil : "The \(name)." }
            }
        }
        return mk(R()) { r in
            r.throttleTimeMs = 14
            r.results = [
                mk(R.DescribeConfigsResult()) { x in
                    x.errorCode = 0; x.errorMessage = nil; x.resourceType = 2; x.resourceName = "orders"
                    x.configs = [config("cleanup.policy", "compact"), config("ssl.key.password", nil)]
                },
                mk(R.DescribeConfigsResult()) { x in
                    x.errorCode = 29; x.errorMessage = "denied"; x.resourceType = 4; x.resourceName = "1"
                    x.configs = []
                },
            ]
        }
    }

    static func alterConfigsRequest(_ c: GoldenContext) -> AlterConfigsRequest {
        typealias R = AlterConfigsRequest
        return mk(R()) { r in
            r.resources = [
                mk(R.AlterConfigsResource()) { x in
                    x.resourceType = 2; x.resourceName = "orders"
                    x.configs = [
                        mk(R.AlterableConfig()) {
                            $0.name = "cleanup.policy"; $0.value = "delete"
                        },
                        mk(R.AlterableConfig()) {
                            $0.name = "retention.ms"; $0.value = nil
                        },
                    ]
                },
                mk(R.AlterConfigsResource()) {
                    $0.resourceType = 4; $0.resourceName = "1"; $0.configs = []
                },
            ]
            r.validateOnly = true
        }
    }

    static func alterConfigsResponse(_ c: GoldenContext) -> AlterConfigsResponse {
        typealias R = AlterConfigsResponse
        return mk(R()) { r in
            r.throttleTimeMs = 15
            r.responses = [
                mk(R.AlterConfigsResourceResponse()) {
                    $0.errorCode = 0; $0.errorMessage = nil; $0.resourceType = 2; $0.resourceName = "orders"
                },
                mk(R.AlterConfigsResourceResponse()) {
                    $0.errorCode = 40; $0.errorMessage = "invalid config"; $0.resourceType = 4; $0.resourceName = "1"
                },
            ]
        }
    }

    // MARK: Groups (admin)

    static func describeGroupsRequest(_ c: GoldenContext) -> DescribeGroupsRequest {
        mk(DescribeGroupsRequest()) { r in
            r.groups = ["group-1", "group-2", ""]
            if c.v >= 3 { r.includeAuthorizedOperations = true }
        }
    }

    static func describeGroupsResponse(_ c: GoldenContext) -> DescribeGroupsResponse {
        typealias R = DescribeGroupsResponse
        func member(_ i: Int) -> R.DescribedGroupMember {
            mk(R.DescribedGroupMember()) { m in
                m.memberId = "member-\(i)"
                if c.v >= 4 { m.groupInstanceId = i == 1 ? "instance-1" : nil }
                m.clientId = "client-\(i)"
                m.clientHost = "/10.0.0.\(i)"
                m.memberMetadata = bytes("md-\(i)")
                m.memberAssignment = ByteBuffer(bytes: [0, 1, UInt8(i)])
            }
        }
        return mk(R()) { r in
            if c.v >= 1 { r.throttleTimeMs = 16 }
            r.groups = [
                mk(R.DescribedGroup()) { g in
                    g.errorCode = 0; g.groupId = "group-1"; g.groupState = "Stable"; g.protocolType = "consumer"; g.protocolData = "range"
                    g.members = [member(1), member(2)]
                    if c.v >= 3 { g.authorizedOperations = authorizedOperations }
                },
                mk(R.DescribedGroup()) { g in
                    g.errorCode = 69; g.groupId = "group-2"; g.groupState = "Dead"; g.protocolType = ""; g.protocolData = ""
                    g.members = []
                    if c.v >= 3 { g.authorizedOperations = 0 }
                },
            ]
        }
    }

    static func listGroupsRequest(_ c: GoldenContext) -> ListGroupsRequest {
        mk(ListGroupsRequest()) { r in
            if c.v >= 4 { r.statesFilter = ["Stable", "Empty"] }
            if c.v >= 5 { r.typesFilter = ["classic", "consumer"] }
        }
    }

    static func listGroupsResponse(_ c: GoldenContext) -> ListGroupsResponse {
        typealias R = ListGroupsResponse
        return mk(R()) { r in
            if c.v >= 1 { r.throttleTimeMs = 17 }
            r.errorCode = 15
            r.groups = [
                mk(R.ListedGroup()) { g in
                    g.groupId = "group-1"; g.protocolType = "consumer"
                    if c.v >= 4 { g.groupState = "Stable" }
                    if c.v >= 5 { g.groupType = "classic" }
                },
                mk(R.ListedGroup()) { g in
                    g.groupId = "connect-1"; g.protocolType = "connect"
                    if c.v >= 4 { g.groupState = "Empty" }
                    if c.v >= 5 { g.groupType = "consumer" }
                },
            ]
        }
    }

    // MARK: SASL

    static func saslHandshakeRequest(_ c: GoldenContext) -> SaslHandshakeRequest {
        mk(SaslHandshakeRequest()) { $0.mechanism = "SCRAM-SHA-512" }
    }

    static func saslHandshakeResponse(_ c: GoldenContext) -> SaslHandshakeResponse {
        mk(SaslHandshakeResponse()) { r in
            r.errorCode = 33
            r.mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        }
    }

    // MARK: Partitions and records

    static func createPartitionsRequest(_ c: GoldenContext) -> CreatePartitionsRequest {
        typealias R = CreatePartitionsRequest
        return mk(R()) { r in
            r.topics = [
                mk(R.CreatePartitionsTopic()) { t in
                    t.name = "orders"; t.count = 6
                    t.assignments = [
                        mk(R.CreatePartitionsAssignment()) { $0.brokerIds = [1, 2] },
                        mk(R.CreatePartitionsAssignment()) { $0.brokerIds = [2, 3] },
                    ]
                },
                mk(R.CreatePartitionsTopic()) {
                    $0.name = "audit"; $0.count = 24; $0.assignments = nil
                },
            ]
            r.timeoutMs = 25_000
            r.validateOnly = true
        }
    }

    static func createPartitionsResponse(_ c: GoldenContext) -> CreatePartitionsResponse {
        typealias R = CreatePartitionsResponse
        return mk(R()) { r in
            r.throttleTimeMs = 18
            r.results = [
                mk(R.CreatePartitionsTopicResult()) {
                    $0.name = "orders"; $0.errorCode = 0; $0.errorMessage = nil
                },
                mk(R.CreatePartitionsTopicResult()) {
                    $0.name = "audit"; $0.errorCode = 37; $0.errorMessage = "invalid partitions"
                },
            ]
        }
    }

    static func deleteRecordsRequest(_ c: GoldenContext) -> DeleteRecordsRequest {
        typealias R = DeleteRecordsRequest
        return mk(R()) { r in
            r.topics = [
                mk(R.DeleteRecordsTopic()) { t in
                    t.name = "orders"
                    t.partitions = [
                        mk(R.DeleteRecordsPartition()) {
                            $0.partitionIndex = 0; $0.offset = 1000
                        },
                        mk(R.DeleteRecordsPartition()) {
                            $0.partitionIndex = 1; $0.offset = -1
                        },
                    ]
                },
                mk(R.DeleteRecordsTopic()) {
                    $0.name = "audit";
                    $0.partitions = [
                        mk(R.DeleteRecordsPartition()) {
                            $0.partitionIndex = 5; $0.offset = 7
                        }
                    ]
                },
            ]
            r.timeoutMs = 12_000
        }
    }

    static func deleteRecordsResponse(_ c: GoldenContext) -> DeleteRecordsResponse {
        typealias R = DeleteRecordsResponse
        return mk(R()) { r in
            r.throttleTimeMs = 19
            r.topics = [
                mk(R.DeleteRecordsTopicResult()) { t in
                    t.name = "orders"
                    t.partitions = [
                        mk(R.DeleteRecordsPartitionResult()) {
                            $0.partitionIndex = 0; $0.lowWatermark = 1000; $0.errorCode = 0
                        },
                        mk(R.DeleteRecordsPartitionResult()) {
                            $0.partitionIndex = 1; $0.lowWatermark = -1; $0.errorCode = 1
                        },
                    ]
                },
                mk(R.DeleteRecordsTopicResult()) {
                    $0.name = "audit"; $0.partitions = []
                },
            ]
        }
    }

    // MARK: ACLs

    static func describeAclsRequest(_ c: GoldenContext) -> DescribeAclsRequest {
        mk(DescribeAclsRequest()) { r in
            r.resourceTypeFilter = 2
            r.resourceNameFilter = c.odd ? nil : "orders"
            if c.v >= 1 { r.patternTypeFilter = 4 }
            r.principalFilter = c.odd ? "User:alice" : nil
            r.hostFilter = c.odd ? nil : "*"
            r.operation = 3
            r.permissionType = 3
        }
    }

    static func describeAclsResponse(_ c: GoldenContext) -> DescribeAclsResponse {
        typealias R = DescribeAclsResponse
        return mk(R()) { r in
            r.throttleTimeMs = 21
            r.errorCode = c.odd ? 0 : 31
            r.errorMessage = c.odd ? nil : "security disabled"
            r.resources = [
                mk(R.DescribeAclsResource()) { x in
                    x.resourceType = 2; x.resourceName = "orders"
                    if c.v >= 1 { x.patternType = 4 }
                    x.acls = [
                        mk(R.AclDescription()) {
                            $0.principal = "User:alice"; $0.host = "*"; $0.operation = 3; $0.permissionType = 3
                        },
                        mk(R.AclDescription()) {
                            $0.principal = "User:bob"; $0.host = "10.0.0.1"; $0.operation = 4; $0.permissionType = 2
                        },
                    ]
                },
                mk(R.DescribeAclsResource()) { x in
                    x.resourceType = 3; x.resourceName = "group-"
                    if c.v >= 1 { x.patternType = 4 }
                    x.acls = []
                },
            ]
        }
    }

    // MARK: Transactions

    static func initProducerIdRequest(_ c: GoldenContext) -> InitProducerIdRequest {
        mk(InitProducerIdRequest()) { r in
            r.transactionalId = c.odd ? nil : "txn-1"
            r.transactionTimeoutMs = 60_000
            if c.v >= 3 { r.producerId = 4242; r.producerEpoch = 7 }
        }
    }

    static func initProducerIdResponse(_ c: GoldenContext) -> InitProducerIdResponse {
        mk(InitProducerIdResponse()) { r in
            r.throttleTimeMs = 22
            r.errorCode = 47
            r.producerId = 4242
            r.producerEpoch = 8
        }
    }

    static func addPartitionsToTxnRequest(_ c: GoldenContext) -> AddPartitionsToTxnRequest {
        typealias R = AddPartitionsToTxnRequest
        let topics = [
            mk(R.AddPartitionsToTxnTopic()) {
                $0.name = "orders"; $0.partitions = [0, 1, 2]
            },
            mk(R.AddPartitionsToTxnTopic()) {
                $0.name = "audit"; $0.partitions = [5]
            },
        ]
        return mk(R()) { r in
            if c.v >= 4 {
                r.transactions = [
                    mk(R.AddPartitionsToTxnTransaction()) { t in
                        t.transactionalId = "txn-1"; t.producerId = 4242; t.producerEpoch = 7; t.verifyOnly = true; t.topics = topics
                    },
                    mk(R.AddPartitionsToTxnTransaction()) { t in
                        t.transactionalId = "txn-2"; t.producerId = 4343; t.producerEpoch = 0; t.verifyOnly = false; t.topics = []
                    },
                ]
            }
            if c.v <= 3 {
                r.v3AndBelowTransactionalId = "txn-1"
                r.v3AndBelowProducerId = 4242
                r.v3AndBelowProducerEpoch = 7
                r.v3AndBelowTopics = topics
            }
        }
    }

    static func addPartitionsToTxnResponse(_ c: GoldenContext) -> AddPartitionsToTxnResponse {
        typealias R = AddPartitionsToTxnResponse
        let results = [
            mk(R.AddPartitionsToTxnTopicResult()) { t in
                t.name = "orders"
                t.resultsByPartition = [
                    mk(R.AddPartitionsToTxnPartitionResult()) {
                        $0.partitionIndex = 0; $0.partitionErrorCode = 0
                    },
                    mk(R.AddPartitionsToTxnPartitionResult()) {
                        $0.partitionIndex = 1; $0.partitionErrorCode = 53
                    },
                ]
            },
            mk(R.AddPartitionsToTxnTopicResult()) {
                $0.name = "audit"; $0.resultsByPartition = []
            },
        ]
        return mk(R()) { r in
            r.throttleTimeMs = 23
            if c.v >= 4 {
                r.errorCode = 48
                r.resultsByTransaction = [
                    mk(R.AddPartitionsToTxnResult()) {
                        $0.transactionalId = "txn-1"; $0.topicResults = results
                    },
                    mk(R.AddPartitionsToTxnResult()) {
                        $0.transactionalId = "txn-2"; $0.topicResults = []
                    },
                ]
            }
            if c.v <= 3 { r.resultsByTopicV3AndBelow = results }
        }
    }

    static func endTxnRequest(_ c: GoldenContext) -> EndTxnRequest {
        mk(EndTxnRequest()) { r in
            r.transactionalId = "txn-1"
            r.producerId = 4242
            r.producerEpoch = 7
            r.committed = true
        }
    }

    static func endTxnResponse(_ c: GoldenContext) -> EndTxnResponse {
        mk(EndTxnResponse()) { r in
            r.throttleTimeMs = 24
            r.errorCode = 48
            if c.v >= 5 { r.producerId = 4242; r.producerEpoch = 8 }
        }
    }

    static func addOffsetsToTxnRequest(_ c: GoldenContext) -> AddOffsetsToTxnRequest {
        mk(AddOffsetsToTxnRequest()) { r in
            r.transactionalId = "txn-1"; r.producerId = 4242; r.producerEpoch = 7; r.groupId = "group-1"
        }
    }

    static func addOffsetsToTxnResponse(_ c: GoldenContext) -> AddOffsetsToTxnResponse {
        mk(AddOffsetsToTxnResponse()) {
            $0.throttleTimeMs = 25; $0.errorCode = 49
        }
    }

    static func txnOffsetCommitRequest(_ c: GoldenContext) -> TxnOffsetCommitRequest {
        typealias R = TxnOffsetCommitRequest
        func partition(_ i: Int32) -> R.TxnOffsetCommitRequestPartition {
            mk(R.TxnOffsetCommitRequestPartition()) { p in
                p.partitionIndex = i
                p.committedOffset = 2000 + Int64(i)
                if c.v >= 2 { p.committedLeaderEpoch = 4 }
                p.committedMetadata = i == 1 ? nil : "m\(i)"
            }
        }
        return mk(R()) { r in
            r.transactionalId = "txn-1"; r.groupId = "group-1"; r.producerId = 4242; r.producerEpoch = 7
            if c.v >= 3 { r.generationId = 12; r.memberId = "member-1"; r.groupInstanceId = c.odd ? "instance-1" : nil }
            r.topics = [
                mk(R.TxnOffsetCommitRequestTopic()) {
                    $0.name = "orders"; $0.partitions = [partition(0), partition(1)]
                },
                mk(R.TxnOffsetCommitRequestTopic()) {
                    $0.name = "audit"; $0.partitions = [partition(2)]
                },
            ]
        }
    }

    static func txnOffsetCommitResponse(_ c: GoldenContext) -> TxnOffsetCommitResponse {
        typealias R = TxnOffsetCommitResponse
        return mk(R()) { r in
            r.throttleTimeMs = 26
            r.topics = [
                mk(R.TxnOffsetCommitResponseTopic()) { t in
                    t.name = "orders"
                    t.partitions = [
                        mk(R.TxnOffsetCommitResponsePartition()) {
                            $0.partitionIndex = 0; $0.errorCode = 0
                        },
                        mk(R.TxnOffsetCommitResponsePartition()) {
                            $0.partitionIndex = 1; $0.errorCode = 15
                        },
                    ]
                },
                mk(R.TxnOffsetCommitResponseTopic()) {
                    $0.name = "audit"; $0.partitions = []
                },
            ]
        }
    }

    static func offsetForLeaderEpochRequest(_ c: GoldenContext) -> OffsetForLeaderEpochRequest {
        typealias R = OffsetForLeaderEpochRequest
        func partition(_ i: Int32) -> R.OffsetForLeaderPartition {
            mk(R.OffsetForLeaderPartition()) { p in
                p.partition = i
                if c.v >= 2 { p.currentLeaderEpoch = 9 }
                p.leaderEpoch = 8 - i
            }
        }
        return mk(R()) { r in
            if c.v >= 3 { r.replicaId = 3 }
            r.topics = [
                mk(R.OffsetForLeaderTopic()) {
                    $0.topic = "orders"; $0.partitions = [partition(0), partition(1)]
                },
                mk(R.OffsetForLeaderTopic()) {
                    $0.topic = "audit"; $0.partitions = [partition(2)]
                },
            ]
        }
    }

    static func offsetForLeaderEpochResponse(_ c: GoldenContext) -> OffsetForLeaderEpochResponse {
        typealias R = OffsetForLeaderEpochResponse
        func partition(_ i: Int32) -> R.EpochEndOffset {
            mk(R.EpochEndOffset()) { p in
                p.errorCode = i == 1 ? 74 : 0
                p.partition = i
                if c.v >= 1 { p.leaderEpoch = 8 }
                p.endOffset = 9000 + Int64(i)
            }
        }
        return mk(R()) { r in
            if c.v >= 2 { r.throttleTimeMs = 27 }
            r.topics = [
                mk(R.OffsetForLeaderTopicResult()) {
                    $0.topic = "orders"; $0.partitions = [partition(0), partition(1)]
                },
                mk(R.OffsetForLeaderTopicResult()) {
                    $0.topic = "audit"; $0.partitions = [partition(2)]
                },
            ]
        }
    }

    static func saslAuthenticateRequest(_ c: GoldenContext) -> SaslAuthenticateRequest {
        mk(SaslAuthenticateRequest()) { $0.authBytes = bytes("\u{0}alice\u{0}secret") }
    }

    static func saslAuthenticateResponse(_ c: GoldenContext) -> SaslAuthenticateResponse {
        mk(SaslAuthenticateResponse()) { r in
            r.errorCode = c.odd ? 58 : 0
            r.errorMessage = c.odd ? "authentication failed" : nil
            r.authBytes = bytes("v=c2lnbmF0dXJl")
            if c.v >= 1 { r.sessionLifetimeMs = 3_600_000 }
        }
    }

    static func createAclsRequest(_ c: GoldenContext) -> CreateAclsRequest {
        typealias R = CreateAclsRequest
        return mk(R()) { r in
            r.creations = [
                mk(R.AclCreation()) { a in
                    a.resourceType = 2; a.resourceName = "orders"
                    if c.v >= 1 { a.resourcePatternType = 4 }
                    a.principal = "User:alice"; a.host = "*"; a.operation = 3; a.permissionType = 3
                },
                mk(R.AclCreation()) { a in
                    a.resourceType = 3; a.resourceName = "group-"
                    if c.v >= 1 { a.resourcePatternType = 4 }
                    a.principal = "User:bob"; a.host = "10.0.0.1"; a.operation = 2; a.permissionType = 2
                },
            ]
        }
    }

    static func createAclsResponse(_ c: GoldenContext) -> CreateAclsResponse {
        typealias R = CreateAclsResponse
        return mk(R()) { r in
            r.throttleTimeMs = 28
            r.results = [
                mk(R.AclCreationResult()) {
                    $0.errorCode = 0; $0.errorMessage = nil
                },
                mk(R.AclCreationResult()) {
                    $0.errorCode = 54; $0.errorMessage = "security disabled"
                },
            ]
        }
    }

    static func deleteAclsRequest(_ c: GoldenContext) -> DeleteAclsRequest {
        typealias R = DeleteAclsRequest
        return mk(R()) { r in
            r.filters = [
                mk(R.DeleteAclsFilter()) { f in
                    f.resourceTypeFilter = 2; f.resourceNameFilter = "orders"
                    if c.v >= 1 { f.patternTypeFilter = 1 }
                    f.principalFilter = nil; f.hostFilter = "*"; f.operation = 1; f.permissionType = 1
                },
                mk(R.DeleteAclsFilter()) { f in
                    f.resourceTypeFilter = 1; f.resourceNameFilter = nil
                    if c.v >= 1 { f.patternTypeFilter = 2 }
                    f.principalFilter = "User:bob"; f.hostFilter = nil; f.operation = 2; f.permissionType = 3
                },
            ]
        }
    }

    static func deleteAclsResponse(_ c: GoldenContext) -> DeleteAclsResponse {
        typealias R = DeleteAclsResponse
        func acl(_ i: Int) -> R.DeleteAclsMatchingAcl {
            mk(R.DeleteAclsMatchingAcl()) { a in
                a.errorCode = i == 0 ? 0 : 31
                a.errorMessage = i == 0 ? nil : "no"
                a.resourceType = 2; a.resourceName = "orders-\(i)"
                if c.v >= 1 { a.patternType = 4 }
                a.principal = "User:alice"; a.host = "*"; a.operation = 3; a.permissionType = 3
            }
        }
        return mk(R()) { r in
            r.throttleTimeMs = 29
            r.filterResults = [
                mk(R.DeleteAclsFilterResult()) {
                    $0.errorCode = 0; $0.errorMessage = nil; $0.matchingAcls = [acl(0), acl(1)]
                },
                mk(R.DeleteAclsFilterResult()) {
                    $0.errorCode = 31; $0.errorMessage = "denied"; $0.matchingAcls = []
                },
            ]
        }
    }

    static func describeLogDirsRequest(_ c: GoldenContext) -> DescribeLogDirsRequest {
        typealias R = DescribeLogDirsRequest
        return mk(R()) { r in
            r.topics =
                c.odd
                ? nil
                : [
                    mk(R.DescribableLogDirTopic()) {
                        $0.topic = "orders"; $0.partitions = [0, 1]
                    },
                    mk(R.DescribableLogDirTopic()) {
                        $0.topic = "audit"; $0.partitions = [4]
                    },
                ]
        }
    }

    static func describeLogDirsResponse(_ c: GoldenContext) -> DescribeLogDirsResponse {
        typealias R = DescribeLogDirsResponse
        func partition(_ i: Int32) -> R.DescribeLogDirsPartition {
            mk(R.DescribeLogDirsPartition()) {
                $0.partitionIndex = i; $0.partitionSize = 1 << 33; $0.offsetLag = Int64(i); $0.isFutureKey = i == 1
            }
        }
        return mk(R()) { r in
            r.throttleTimeMs = 30
            if c.v >= 3 { r.errorCode = 0 }
            r.results = [
                mk(R.DescribeLogDirsResult()) { d in
                    d.errorCode = 0; d.logDir = "/var/lib/fjord/data-0"
                    d.topics = [
                        mk(R.DescribeLogDirsTopic()) {
                            $0.name = "orders"; $0.partitions = [partition(0), partition(1)]
                        },
                        mk(R.DescribeLogDirsTopic()) {
                            $0.name = "audit"; $0.partitions = [partition(2)]
                        },
                    ]
                    if c.v >= 4 { d.totalBytes = 1 << 40; d.usableBytes = 1 << 39 }
                },
                mk(R.DescribeLogDirsResult()) { d in
                    d.errorCode = 57; d.logDir = "/var/lib/fjord/data-1"; d.topics = []
                    if c.v >= 4 { d.totalBytes = 0; d.usableBytes = 0 }
                },
            ]
        }
    }

    static func deleteGroupsRequest(_ c: GoldenContext) -> DeleteGroupsRequest {
        mk(DeleteGroupsRequest()) { $0.groupsNames = ["group-1", "group-2", "é"] }
    }

    static func deleteGroupsResponse(_ c: GoldenContext) -> DeleteGroupsResponse {
        typealias R = DeleteGroupsResponse
        return mk(R()) { r in
            r.throttleTimeMs = 31
            r.results = [
                mk(R.DeletableGroupResult()) {
                    $0.groupId = "group-1"; $0.errorCode = 0
                },
                mk(R.DeletableGroupResult()) {
                    $0.groupId = "group-2"; $0.errorCode = 68
                },
            ]
        }
    }

    static func electLeadersRequest(_ c: GoldenContext) -> ElectLeadersRequest {
        typealias R = ElectLeadersRequest
        return mk(R()) { r in
            if c.v >= 1 { r.electionType = 1 }
            r.topicPartitions =
                c.odd
                ? nil
                : [
                    mk(R.TopicPartitions()) {
                        $0.topic = "orders"; $0.partitions = [0, 1, 2]
                    },
                    mk(R.TopicPartitions()) {
                        $0.topic = "audit"; $0.partitions = []
                    },
                ]
            r.timeoutMs = 10_000
        }
    }

    static func electLeadersResponse(_ c: GoldenContext) -> ElectLeadersResponse {
        typealias R = ElectLeadersResponse
        return mk(R()) { r in
            r.throttleTimeMs = 32
            if c.v >= 1 { r.errorCode = 41 }
            r.replicaElectionResults = [
                mk(R.ReplicaElectionResult()) { e in
                    e.topic = "orders"
                    e.partitionResult = [
                        mk(R.PartitionResult()) {
                            $0.partitionId = 0; $0.errorCode = 0; $0.errorMessage = nil
                        },
                        mk(R.PartitionResult()) {
                            $0.partitionId = 1; $0.errorCode = 84; $0.errorMessage = "election not needed"
                        },
                    ]
                },
                mk(R.ReplicaElectionResult()) {
                    $0.topic = "audit"; $0.partitionResult = []
                },
            ]
        }
    }

    static func alterPartitionReassignmentsRequest(_ c: GoldenContext) -> AlterPartitionReassignmentsRequest {
        typealias R = AlterPartitionReassignmentsRequest
        return mk(R()) { r in
            r.timeoutMs = 20_000
            r.topics = [
                mk(R.ReassignableTopic()) { t in
                    t.name = "orders"
                    t.partitions = [
                        mk(R.ReassignablePartition()) {
                            $0.partitionIndex = 0; $0.replicas = [1, 2, 3]
                        },
                        mk(R.ReassignablePartition()) {
                            $0.partitionIndex = 1; $0.replicas = nil
                        },
                    ]
                },
                mk(R.ReassignableTopic()) {
                    $0.name = "audit"; $0.partitions = []
                },
            ]
        }
    }

    static func alterPartitionReassignmentsResponse(_ c: GoldenContext) -> AlterPartitionReassignmentsResponse {
        typealias R = AlterPartitionReassignmentsResponse
        return mk(R()) { r in
            r.throttleTimeMs = 33
            r.errorCode = 0
            r.errorMessage = nil
            r.responses = [
                mk(R.ReassignableTopicResponse()) { t in
                    t.name = "orders"
                    t.partitions = [
                        mk(R.ReassignablePartitionResponse()) {
                            $0.partitionIndex = 0; $0.errorCode = 0; $0.errorMessage = nil
                        },
                        mk(R.ReassignablePartitionResponse()) {
                            $0.partitionIndex = 1; $0.errorCode = 85; $0.errorMessage = "no reassignment in progress"
                        },
                    ]
                },
                mk(R.ReassignableTopicResponse()) {
                    $0.name = "audit"; $0.partitions = []
                },
            ]
        }
    }

    static func listPartitionReassignmentsRequest(_ c: GoldenContext) -> ListPartitionReassignmentsRequest {
        typealias R = ListPartitionReassignmentsRequest
        return mk(R()) { r in
            r.timeoutMs = 20_000
            r.topics = [
                mk(R.ListPartitionReassignmentsTopics()) {
                    $0.name = "orders"; $0.partitionIndexes = [0, 1]
                },
                mk(R.ListPartitionReassignmentsTopics()) {
                    $0.name = "audit"; $0.partitionIndexes = []
                },
            ]
        }
    }

    static func listPartitionReassignmentsResponse(_ c: GoldenContext) -> ListPartitionReassignmentsResponse {
        typealias R = ListPartitionReassignmentsResponse
        return mk(R()) { r in
            r.throttleTimeMs = 34
            r.errorCode = 29
            r.errorMessage = "denied"
            r.topics = [
                mk(R.OngoingTopicReassignment()) { t in
                    t.name = "orders"
                    t.partitions = [
                        mk(R.OngoingPartitionReassignment()) {
                            $0.partitionIndex = 0; $0.replicas = [1, 2, 4]; $0.addingReplicas = [4]; $0.removingReplicas = [3]
                        },
                        mk(R.OngoingPartitionReassignment()) {
                            $0.partitionIndex = 1; $0.replicas = [2, 3]; $0.addingReplicas = []; $0.removingReplicas = []
                        },
                    ]
                },
                mk(R.OngoingTopicReassignment()) {
                    $0.name = "audit"; $0.partitions = []
                },
            ]
        }
    }

    static func describeClientQuotasRequest(_ c: GoldenContext) -> DescribeClientQuotasRequest {
        typealias R = DescribeClientQuotasRequest
        return mk(R()) { r in
            r.components = [
                mk(R.ComponentData()) {
                    $0.entityType = "user"; $0.matchType = 0; $0.match = "alice"
                },
                mk(R.ComponentData()) {
                    $0.entityType = "client-id"; $0.matchType = 2; $0.match = nil
                },
            ]
            r.strict = true
        }
    }

    static func describeClientQuotasResponse(_ c: GoldenContext) -> DescribeClientQuotasResponse {
        typealias R = DescribeClientQuotasResponse
        return mk(R()) { r in
            r.throttleTimeMs = 35
            r.errorCode = c.odd ? 0 : 42
            r.errorMessage = c.odd ? nil : "invalid request"
            r.entries = [
                mk(R.EntryData()) { e in
                    e.entity = [
                        mk(R.EntityData()) {
                            $0.entityType = "user"; $0.entityName = "alice"
                        },
                        mk(R.EntityData()) {
                            $0.entityType = "client-id"; $0.entityName = nil
                        },
                    ]
                    e.values = [
                        mk(R.ValueData()) {
                            $0.key = "producer_byte_rate"; $0.value = 1_048_576
                        },
                        mk(R.ValueData()) {
                            $0.key = "request_percentage"; $0.value = 12.5
                        },
                    ]
                },
                mk(R.EntryData()) {
                    $0.entity = []; $0.values = []
                },
            ]
        }
    }

    static func describeTopicPartitionsRequest(_ c: GoldenContext) -> DescribeTopicPartitionsRequest {
        typealias R = DescribeTopicPartitionsRequest
        return mk(R()) { r in
            r.topics = [mk(R.TopicRequest()) { $0.name = "orders" }, mk(R.TopicRequest()) { $0.name = "audit" }]
            r.responsePartitionLimit = 500
            r.cursor = mk(R.Cursor()) {
                $0.topicName = "orders"; $0.partitionIndex = 17
            }
        }
    }

    static func describeTopicPartitionsResponse(_ c: GoldenContext) -> DescribeTopicPartitionsResponse {
        typealias R = DescribeTopicPartitionsResponse
        func partition(_ i: Int32) -> R.DescribeTopicPartitionsResponsePartition {
            mk(R.DescribeTopicPartitionsResponsePartition()) { p in
                p.errorCode = i == 1 ? 9 : 0
                p.partitionIndex = i
                p.leaderId = 101
                p.leaderEpoch = 3
                p.replicaNodes = [101, 102, 103]
                p.isrNodes = [101, 102]
                p.eligibleLeaderReplicas = i == 0 ? [103] : nil
                p.lastKnownElr = i == 0 ? nil : [102]
                p.offlineReplicas = [103]
            }
        }
        return mk(R()) { r in
            r.throttleTimeMs = 36
            r.topics = [
                mk(R.DescribeTopicPartitionsResponseTopic()) { t in
                    t.errorCode = 0; t.name = "orders"; t.topicId = uuid(13); t.isInternal = true
                    t.partitions = [partition(0), partition(1)]
                    t.topicAuthorizedOperations = authorizedOperations
                },
                mk(R.DescribeTopicPartitionsResponseTopic()) { t in
                    t.errorCode = 100; t.name = nil; t.topicId = uuid(14)
                    t.partitions = []
                },
            ]
            r.nextCursor = nil
        }
    }
}
