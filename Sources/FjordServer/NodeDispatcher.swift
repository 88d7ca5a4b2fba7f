import FjordClient
import FjordController
import FjordMetadata
import FjordProtocol
import FjordRaft
import FjordRaftRuntime
import FjordWire
import Logging
import NIOCore

/// Routes each request to the part of the node that serves it: KRaft RPCs to the Raft
/// runtime, controller APIs to the active controller (forwarded there when this node is
/// not it), metadata queries to the published image.
final class NodeDispatcher: RequestDispatcher, @unchecked Sendable {
    unowned let node: FjordNode

    init(node: FjordNode) { self.node = node }

    static let raftApis: [ApiKey: ClosedRange<Int16>] = [
        .vote: 0...2, .beginQuorumEpoch: 0...1, .endQuorumEpoch: 0...1, .fetch: 13...17, .fetchSnapshot: 0...1,
    ]
    static let controllerApis: [ApiKey: ClosedRange<Int16>] = [
        .brokerRegistration: 0...4, .brokerHeartbeat: 0...1, .unregisterBroker: 0...0, .controllerRegistration: 0...0,
        .alterPartition: 0...3, .allocateProducerIds: 0...0,
    ]
    /// Admin APIs a controller serves and a broker forwards to it.
    static let adminApis: [ApiKey: ClosedRange<Int16>] = [
        .createTopics: 2...7, .deleteTopics: 1...6, .createPartitions: 0...3, .incrementalAlterConfigs: 0...1,
        .alterConfigs: 0...2, .electLeaders: 0...2,
    ]
    static let commonApis: [ApiKey: ClosedRange<Int16>] = [
        .apiVersions: 0...4, .describeQuorum: 0...2, .describeCluster: 0...1, .describeConfigs: 1...4,
    ]
    static let brokerApis: [ApiKey: ClosedRange<Int16>] = [
        .metadata: 0...12, .describeTopicPartitions: 0...0,
        .produce: 3...11, .fetch: 4...17, .listOffsets: 1...8, .offsetForLeaderEpoch: 2...4, .deleteRecords: 0...2,
        .initProducerId: 0...4,
        .findCoordinator: 0...4, .joinGroup: 0...9, .syncGroup: 0...5, .heartbeat: 0...4, .leaveGroup: 0...5,
        .offsetCommit: 0...8, .offsetFetch: 0...8, .listGroups: 0...5, .describeGroups: 0...5, .deleteGroups: 0...2,
        .offsetDelete: 0...0,
    ]

    func supportedApis(controllerListener: Bool) -> [ApiKey: ClosedRange<Int16>] {
        var m = Self.commonApis.merging(Self.adminApis) { a, _ in a }
        if controllerListener {
            m.merge(Self.raftApis) { a, _ in a }
            m.merge(Self.controllerApis) { a, _ in a }
        } else {
            m.merge(Self.brokerApis) { a, _ in a }
        }
        return m
    }

    func heartbeatConnectionClosed(brokerId: Int32) {
        node.controller?.heartbeatConnectionClosed(brokerId, group: node.group)
    }

    func apiVersionsFeatures() -> (supported: [(String, Int16, Int16)], finalized: [(String, Int16, Int16)], epoch: Int64) {
        let image = node.clientImage
        let mv = image.features["metadata.version"]
        return ([("metadata.version", 7, MetadataVersion.latest.level)],
                mv.map { [("metadata.version", $0, $0)] } ?? [],
                image.offset)
    }

    func handle(_ request: any KafkaRequest, context: RequestContext) -> EventLoopFuture<(any KafkaResponse)?> {
        let loop = node.raft.loop
        switch request {
        case let r as VoteRequest: return raft(r, context)
        case let r as BeginQuorumEpochRequest: return raft(r, context)
        case let r as EndQuorumEpochRequest: return raft(r, context)
        case let r as FetchRequest where context.isControllerListener: return raft(r, context)
        case let r as FetchSnapshotRequest where context.isControllerListener: return raft(r, context)
        case let r as DescribeQuorumRequest: return describeQuorum(r, context).map { $0 }
        case let r as DescribeClusterRequest: return loop.makeSucceededFuture(describeCluster(r, context))
        case let r as MetadataRequest: return metadata(r, context).map { $0 }
        case let r as DescribeTopicPartitionsRequest:
            return loop.makeSucceededFuture(TopicPartitionsDescriber.describe(r, image: node.clientImage))
        case let r as DescribeConfigsRequest:
            return loop.makeSucceededFuture(ConfigDescriber.describe(r, version: context.apiVersion, image: node.clientImage, config: node.config))
        default: break
        }
        if !context.isControllerListener, let rm = node.replicaManager {
            let el = loop.next()
            switch request {
            case let r as ProduceRequest: return rm.produce(r, version: context.apiVersion, on: el).map { $0 }
            case let r as FetchRequest: return rm.fetch(r, version: context.apiVersion, on: el, zeroCopy: true).map { $0 }
            case let r as ListOffsetsRequest: return el.makeSucceededFuture(rm.listOffsets(r, version: context.apiVersion))
            case let r as OffsetForLeaderEpochRequest: return el.makeSucceededFuture(rm.offsetForLeaderEpoch(r, version: context.apiVersion))
            case let r as DeleteRecordsRequest: return el.makeSucceededFuture(rm.deleteRecords(r))
            case let r as FindCoordinatorRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.findCoordinator(r, version: context.apiVersion, listener: context.listenerName).map { $0 }
            case let r as JoinGroupRequest:
                guard let gc = node.groupCoordinator else { break }
                let host = "/" + (context.clientAddress.split(separator: ":").first.map(String.init) ?? "")
                return gc.joinGroup(r, version: context.apiVersion, clientId: context.header.clientId ?? "", clientHost: host).map { $0 }
            case let r as SyncGroupRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.syncGroup(r, version: context.apiVersion).map { $0 }
            case let r as HeartbeatRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.heartbeat(r).map { $0 }
            case let r as LeaveGroupRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.leaveGroup(r, version: context.apiVersion).map { $0 }
            case let r as OffsetCommitRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.offsetCommit(r, version: context.apiVersion).map { $0 }
            case let r as OffsetFetchRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.offsetFetch(r, version: context.apiVersion).map { $0 }
            case let r as ListGroupsRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.listGroups(r, version: context.apiVersion).map { $0 }
            case let r as DescribeGroupsRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.describeGroups(r, version: context.apiVersion).map { $0 }
            case let r as DeleteGroupsRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.deleteGroups(r).map { $0 }
            case let r as OffsetDeleteRequest:
                guard let gc = node.groupCoordinator else { break }
                return gc.offsetDelete(r).map { $0 }
            case let r as InitProducerIdRequest:
                guard let ids = node.producerIds else { break }
                return ids.initProducerId(r, on: el).map { $0 }
            default: break
            }
        }
        if context.isControllerListener, let shell = node.controller {
            return controllerOp(request, context, shell).map { $0 }
        }
        if Self.adminApis[context.apiKey] != nil {
            return forward(request, context).map { $0 }
        }
        return loop.makeFailedFuture(KafkaConnectionError.malformedResponse("no handler for \(context.apiKey.name)"))
    }

    // MARK: KRaft

    private func raft(_ request: any KafkaRequest, _ context: RequestContext) -> EventLoopFuture<(any KafkaResponse)?> {
        let loop = node.raft.loop
        let message: RaftMessage
        do {
            message = try RaftWire.message(fromRequest: request)
        } catch {
            return loop.makeFailedFuture(error)
        }
        if let cid = Self.clusterId(of: request), !cid.isEmpty, cid != node.clusterId {
            node.logger.warning("KRaft request from another cluster", metadata: ["client": "\(context.clientAddress)", "clusterId": "\(cid)"])
            if let resp = try? RaftWire.response(Self.errorAnswer(message, code: ErrorCode.inconsistentClusterId.rawValue)) {
                return loop.makeSucceededFuture(resp)
            }
        }
        let from: Int32
        switch message {
        case let .vote(v): from = v.candidateId
        case let .beginQuorumEpoch(b): from = b.leaderId
        case let .endQuorumEpoch(e): from = e.leaderId
        case let .fetch(f): from = f.replicaId
        case let .fetchSnapshot(f): from = f.replicaId
        default: return loop.makeFailedFuture(KafkaConnectionError.malformedResponse("not a KRaft request"))
        }
        let promise = loop.makePromise(of: RaftMessage.self)
        node.raft.deliverRequest(RaftEnvelope(from: from, to: node.config.nodeId, message: message), reply: promise)
        return promise.futureResult.flatMapThrowing { try RaftWire.response($0) }
    }

    static func clusterId(of r: any KafkaRequest) -> String? {
        switch r {
        case let v as VoteRequest: return v.clusterId
        case let b as BeginQuorumEpochRequest: return b.clusterId
        case let e as EndQuorumEpochRequest: return e.clusterId
        case let f as FetchRequest: return f.clusterId
        case let f as FetchSnapshotRequest: return f.clusterId
        default: return nil
        }
    }

    static func errorAnswer(_ m: RaftMessage, code: Int16) -> RaftMessage {
        switch m {
        case let .vote(v):
            return .voteResponse(VoteResponseData(errorCode: code, leaderEpoch: -1, leaderId: -1, voteGranted: false,
                                                  requestEpoch: v.candidateEpoch, preVote: v.preVote))
        case .beginQuorumEpoch: return .beginQuorumEpochResponse(EpochResponseData(errorCode: code, leaderId: -1, leaderEpoch: -1))
        case .endQuorumEpoch: return .endQuorumEpochResponse(EpochResponseData(errorCode: code, leaderId: -1, leaderEpoch: -1))
        case let .fetch(f):
            return .fetchResponse(FetchResponseData(errorCode: code, leaderId: -1, leaderEpoch: -1, highWatermark: -1, logStartOffset: -1,
                                                    fetchOffset: f.fetchOffset))
        case let .fetchSnapshot(f):
            return .fetchSnapshotResponse(FetchSnapshotResponseData(errorCode: code, leaderId: -1, leaderEpoch: -1, snapshotId: f.snapshotId,
                                                                    position: f.position))
        default: return m
        }
    }

    // MARK: DescribeQuorum, DescribeCluster

    private func describeQuorum(_ r: DescribeQuorumRequest, _ context: RequestContext) -> EventLoopFuture<any KafkaResponse> {
        let node = self.node
        return node.raft.snapshot().flatMap { s -> EventLoopFuture<any KafkaResponse> in
            if s.role == .leader {
                return node.raft.loop.makeSucceededFuture(node.describeQuorumResponse(s, version: context.apiVersion))
            }
            // Forwarded once: a node that is not the leader asks the leader it knows.
            if context.header.clientId == ForwardClientId.value || s.leaderId < 0 {
                var resp = DescribeQuorumResponse()
                var t = DescribeQuorumResponse.TopicData()
                t.topicName = RaftWire.topicName
                var p = DescribeQuorumResponse.PartitionData()
                p.errorCode = ErrorCode.notLeaderOrFollower.rawValue
                p.leaderId = s.leaderId
                p.leaderEpoch = s.epoch
                t.partitions = [p]
                resp.topics = [t]
                return node.raft.loop.makeSucceededFuture(resp)
            }
            return node.controllerChannel.send(r, version: context.apiVersion, timeoutMs: 5000)
        }
    }

    private func describeCluster(_ r: DescribeClusterRequest, _ context: RequestContext) -> any KafkaResponse {
        let image = node.clientImage
        var resp = DescribeClusterResponse()
        resp.clusterId = node.clusterId
        resp.endpointType = r.endpointType
        if r.endpointType == 2 {
            // Controllers: the voters and their controller endpoints.
            resp.controllerId = node.knownLeaderId
            resp.brokers = node.config.voters.map { v in
                var b = DescribeClusterResponse.DescribeClusterBroker()
                b.brokerId = v.id
                b.host = v.host
                b.port = Int32(v.port)
                return b
            }
        } else {
            let live = node.liveBrokers(image, listener: context.listenerName)
            resp.controllerId = node.metadataControllerId(image)
            resp.brokers = live.map { id, ep, rack in
                var b = DescribeClusterResponse.DescribeClusterBroker()
                b.brokerId = id
                b.host = ep.host
                b.port = Int32(ep.port)
                b.rack = rack
                return b
            }
        }
        return resp
    }

    // MARK: Metadata

    private func metadata(_ r: MetadataRequest, _ context: RequestContext) -> EventLoopFuture<any KafkaResponse> {
        let image = node.clientImage
        var resp = MetadataResponse()
        resp.clusterId = node.clusterId
        resp.controllerId = node.metadataControllerId(image)
        resp.brokers = node.liveBrokers(image, listener: context.listenerName).map { id, ep, rack in
            var b = MetadataResponse.MetadataResponseBroker()
            b.nodeId = id
            b.host = ep.host
            b.port = Int32(ep.port)
            b.rack = rack
            return b
        }
        // v0: an empty list means all topics; v1+: null means all.
        let all = r.topics == nil || (context.apiVersion == 0 && r.topics?.isEmpty == true)
        var names: [String] = []
        var unknown: [MetadataResponse.MetadataResponseTopic] = []
        if all {
            names = image.topics.keys.sorted()
        } else {
            for t in r.topics ?? [] {
                if let n = t.name, !n.isEmpty {
                    names.append(n)
                } else if t.topicId != KafkaUUID.zero {
                    if let n = image.topicNamesById[t.topicId] {
                        names.append(n)
                    } else {
                        var x = MetadataResponse.MetadataResponseTopic()
                        x.name = nil
                        x.topicId = t.topicId
                        x.errorCode = ErrorCode.unknownTopicId.rawValue
                        unknown.append(x)
                    }
                }
            }
        }
        var autoCreate: [String] = []
        resp.topics = names.map { name in
            var x = MetadataResponse.MetadataResponseTopic()
            x.name = name
            guard let t = image.topics[name] else {
                if r.allowAutoTopicCreation, node.config.autoCreateTopicsEnable, Topics.isValidName(name) {
                    autoCreate.append(name)
                    x.errorCode = ErrorCode.leaderNotAvailable.rawValue
                } else {
                    x.errorCode = Topics.isValidName(name) ? ErrorCode.unknownTopicOrPartition.rawValue : ErrorCode.invalidTopicException.rawValue
                }
                return x
            }
            x.topicId = t.id
            x.isInternal = name.hasPrefix("__")
            x.partitions = t.partitions.keys.sorted().compactMap { pid in
                guard let p = t.partitions[pid] else { return nil }
                var mp = MetadataResponse.MetadataResponsePartition()
                mp.partitionIndex = pid
                mp.leaderId = p.leader
                mp.leaderEpoch = p.leaderEpoch
                mp.replicaNodes = p.replicas
                mp.isrNodes = p.isr
                mp.offlineReplicas = p.replicas.filter { image.brokers[$0] == nil || image.brokers[$0]?.fenced == true }
                mp.errorCode = p.leader < 0 ? ErrorCode.leaderNotAvailable.rawValue : 0
                return mp
            }
            return x
        } + unknown
        if !autoCreate.isEmpty {
            var c = CreateTopicsRequest()
            c.timeoutMs = 30_000
            c.topics = autoCreate.map { n in
                var t = CreateTopicsRequest.CreatableTopic()
                t.name = n
                t.numPartitions = -1
                t.replicationFactor = -1
                return t
            }
            _ = node.controllerChannel.send(c, version: 7)
        }
        return node.raft.loop.makeSucceededFuture(resp)
    }

    // MARK: controller operations

    private func controllerOp(_ request: any KafkaRequest, _ context: RequestContext, _ shell: ControllerShell) -> EventLoopFuture<any KafkaResponse> {
        let v = context.apiVersion
        switch request {
        case let r as BrokerRegistrationRequest:
            if r.clusterId != node.clusterId {
                var resp = BrokerRegistrationResponse()
                resp.errorCode = ErrorCode.inconsistentClusterId.rawValue
                return node.raft.loop.makeSucceededFuture(resp)
            }
            return shell.perform(r) { c, now in c.registerBroker(r, nowMs: now) }
        case let r as BrokerHeartbeatRequest:
            return shell.perform(r) { c, now in c.heartbeat(r, nowMs: now) }
        case let r as UnregisterBrokerRequest:
            return shell.perform(r) { c, _ in c.unregisterBroker(r) }
        case let r as ControllerRegistrationRequest:
            return shell.perform(r) { c, _ in c.registerController(r) }
        case let r as CreateTopicsRequest:
            return shell.perform(r) { c, _ in c.createTopics(r, version: v) }
        case let r as DeleteTopicsRequest:
            return shell.perform(r) { c, _ in c.deleteTopics(r, version: v) }
        case let r as CreatePartitionsRequest:
            return shell.perform(r) { c, _ in c.createPartitions(r) }
        case let r as AlterPartitionRequest:
            return shell.perform(r) { c, _ in c.alterPartition(r, version: v) }
        case let r as ElectLeadersRequest:
            return shell.perform(r) { c, _ in c.electLeaders(r) }
        case let r as AllocateProducerIdsRequest:
            return shell.perform(r) { c, _ in c.allocateProducerIds(r) }
        case let r as IncrementalAlterConfigsRequest:
            return shell.perform(r) { c, _ in c.incrementalAlterConfigs(r) }
        case let r as AlterConfigsRequest:
            return shell.perform(r) { c, _ in c.alterConfigs(r) }
        default:
            return node.raft.loop.makeFailedFuture(KafkaConnectionError.malformedResponse("no controller handler for \(context.apiKey.name)"))
        }
    }

    /// A broker forwards admin requests to the active controller and relays the answer.
    private func forward(_ request: any KafkaRequest, _ context: RequestContext) -> EventLoopFuture<any KafkaResponse> {
        func send<R: KafkaRequest>(_ r: R) -> EventLoopFuture<any KafkaResponse> {
            node.controllerChannel.send(r, version: context.apiVersion, timeoutMs: 30_000)
        }
        return send(request).flatMapErrorThrowing { error in
            // Only a request that never reached a controller may be answered NOT_CONTROLLER
            // ("not applied, retry"). Once written, the controller may still apply it, so a
            // timeout or a lost connection is REQUEST_TIMED_OUT: the outcome is unknown, as
            // Kafka's forwarding answers a timeout.
            let notSent = error is ControllerChannel.NoController || error is ControllerChannel.NotSent
            let code: ErrorCode = notSent ? .notController : .requestTimedOut
            let message = notSent ? "No active controller is reachable: \(error)"
                                  : "The controller did not answer in time; the request may still be applied: \(error)"
            guard let resp = ErrorResponses.make(for: request, code, message) else { throw error }
            return resp
        }
    }
}

/// The client id a node uses when it forwards a request, so the receiver does not forward it again.
enum ForwardClientId {
    static let value = "fjord-forward"
}
