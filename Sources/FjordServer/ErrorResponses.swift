import FjordProtocol

/// The response Kafka sends when a whole request fails (NOT_CONTROLLER, REQUEST_TIMED_OUT,
/// ...): the error on every entry the request named, for the APIs a node routes to the
/// active controller. Nil for an API without such a builder (the connection is closed).
enum ErrorResponses {
    static func make(for request: any KafkaRequest, _ code: ErrorCode, _ message: String?) -> (any KafkaResponse)? {
        let e = code.rawValue
        switch request {
        case let r as CreateTopicsRequest:
            var resp = CreateTopicsResponse()
            resp.topics = r.topics.map { t in
                var x = CreateTopicsResponse.CreatableTopicResult()
                x.name = t.name
                x.errorCode = e
                x.errorMessage = message
                return x
            }
            return resp
        case let r as DeleteTopicsRequest:
            var resp = DeleteTopicsResponse()
            let names = r.topicNames.map { ($0 as String?, KafkaUUIDZero.zero) } + r.topics.map { ($0.name, $0.topicId) }
            resp.responses = names.map { n, id in
                var x = DeleteTopicsResponse.DeletableTopicResult()
                x.name = n
                x.topicId = id
                x.errorCode = e
                x.errorMessage = message
                return x
            }
            return resp
        case let r as CreatePartitionsRequest:
            var resp = CreatePartitionsResponse()
            resp.results = r.topics.map { t in
                var x = CreatePartitionsResponse.CreatePartitionsTopicResult()
                x.name = t.name
                x.errorCode = e
                x.errorMessage = message
                return x
            }
            return resp
        case let r as IncrementalAlterConfigsRequest:
            var resp = IncrementalAlterConfigsResponse()
            resp.responses = r.resources.map { res in
                var x = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse()
                x.errorCode = e
                x.errorMessage = message
                x.resourceType = res.resourceType
                x.resourceName = res.resourceName
                return x
            }
            return resp
        case let r as AlterConfigsRequest:
            var resp = AlterConfigsResponse()
            resp.responses = r.resources.map { res in
                var x = AlterConfigsResponse.AlterConfigsResourceResponse()
                x.errorCode = e
                x.errorMessage = message
                x.resourceType = res.resourceType
                x.resourceName = res.resourceName
                return x
            }
            return resp
        case is BrokerRegistrationRequest:
            var resp = BrokerRegistrationResponse()
            resp.errorCode = e
            return resp
        case is BrokerHeartbeatRequest:
            var resp = BrokerHeartbeatResponse()
            resp.errorCode = e
            return resp
        case is UnregisterBrokerRequest:
            var resp = UnregisterBrokerResponse()
            resp.errorCode = e
            resp.errorMessage = message
            return resp
        case is ControllerRegistrationRequest:
            var resp = ControllerRegistrationResponse()
            resp.errorCode = e
            resp.errorMessage = message
            return resp
        case is AlterPartitionRequest:
            var resp = AlterPartitionResponse()
            resp.errorCode = e
            return resp
        case is ElectLeadersRequest:
            var resp = ElectLeadersResponse()
            resp.errorCode = e
            return resp
        case is AllocateProducerIdsRequest:
            var resp = AllocateProducerIdsResponse()
            resp.errorCode = e
            return resp
        case is DescribeQuorumRequest:
            var resp = DescribeQuorumResponse()
            resp.errorCode = e
            resp.errorMessage = message
            return resp
        default:
            return nil
        }
    }
}

import FjordWire
enum KafkaUUIDZero { static let zero = KafkaUUID.zero }
