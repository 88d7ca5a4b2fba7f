import FjordMetadata
import FjordProtocol

extension QuorumController {
    /// IncrementalAlterConfigs operation codes.
    enum ConfigOperation: Int8 {
        case set = 0, delete = 1, append = 2, subtract = 3
    }

    /// IncrementalAlterConfigs for TOPIC and BROKER resources: SET, DELETE, APPEND and
    /// SUBTRACT (list configs only; from the current value or the default). Topic configs are
    /// validated against Kafka's topic config definitions; broker configs by resource name
    /// only ("" is the cluster default, otherwise a broker id). Writes a `ConfigRecord` per
    /// changed key (per set key for brokers, which may reload unchanged values).
    public func incrementalAlterConfigs(_ request: IncrementalAlterConfigsRequest) -> ControllerResult<IncrementalAlterConfigsResponse> {
        var response = IncrementalAlterConfigsResponse()
        var out: [MetadataRecord] = []
        let duplicates = duplicateResources(request.resources.map { ($0.resourceType, $0.resourceName) })
        for res in request.resources {
            var result = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse()
            result.resourceType = res.resourceType
            result.resourceName = res.resourceName
            result.errorMessage = nil
            do throws(ApiError) {
                if duplicates.contains(ResourceKey(type: res.resourceType, name: res.resourceName)) {
                    throw ApiError(.invalidRequest, "Duplicate resource.")
                }
                let type = try validateConfigResource(res.resourceType, res.resourceName)
                if Set(res.configs.map(\.name)).count != res.configs.count {
                    throw ApiError(.invalidRequest, "Error due to duplicate config keys")
                }
                let current = currentConfigs(type, res.resourceName)
                var next = current
                var touched = Set<String>()
                for c in res.configs {
                    guard let op = ConfigOperation(rawValue: c.configOperation) else {
                        throw ApiError(.invalidRequest, "Unknown operation type \(c.configOperation)")
                    }
                    touched.insert(c.name)
                    switch op {
                    case .delete:
                        next[c.name] = nil
                    case .set:
                        guard let v = c.value else { throw ApiError(.invalidRequest, "Null value not supported for : \(c.name)") }
                        next[c.name] = v
                    case .append, .subtract:
                        guard let v = c.value else { throw ApiError(.invalidRequest, "Null value not supported for : \(c.name)") }
                        let opName = op == .append ? "APPEND" : "SUBTRACT"
                        var base: String? = current[c.name]
                        if type == .topic {
                            guard let def = TopicConfigs.definitions[c.name] else {
                                throw ApiError(.invalidConfig, "Unknown topic config name: \(c.name)")
                            }
                            guard def.type == .list else {
                                throw ApiError(.invalidConfig, "Can't \(opName) to key \(c.name) because its type is not LIST.")
                            }
                            base = base ?? def.defaultValue
                        }
                        var items = (base ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
                        for item in v.split(separator: ",").map(String.init) {
                            if op == .append {
                                if !items.contains(item) { items.append(item) }
                            } else {
                                items.removeAll { $0 == item }
                            }
                        }
                        next[c.name] = items.joined(separator: ",")
                    }
                }
                let records = try configRecords(type, res.resourceName, from: current, to: next, touched: touched)
                if !request.validateOnly { emit(records, into: &out) }
                result.errorCode = ErrorCode.noError.rawValue
            } catch {
                result.errorCode = error.code.rawValue
                result.errorMessage = error.message
            }
            response.responses.append(result)
        }
        return ControllerResult(records: out, response: response)
    }

    /// AlterConfigs (the legacy API): replaces all of a resource's dynamic configs with the
    /// given set — keys not named are deleted.
    public func alterConfigs(_ request: AlterConfigsRequest) -> ControllerResult<AlterConfigsResponse> {
        var response = AlterConfigsResponse()
        var out: [MetadataRecord] = []
        let duplicates = duplicateResources(request.resources.map { ($0.resourceType, $0.resourceName) })
        for res in request.resources {
            var result = AlterConfigsResponse.AlterConfigsResourceResponse()
            result.resourceType = res.resourceType
            result.resourceName = res.resourceName
            result.errorMessage = nil
            do throws(ApiError) {
                if duplicates.contains(ResourceKey(type: res.resourceType, name: res.resourceName)) {
                    throw ApiError(.invalidRequest, "Duplicate resource.")
                }
                let type = try validateConfigResource(res.resourceType, res.resourceName)
                if Set(res.configs.map(\.name)).count != res.configs.count {
                    throw ApiError(.invalidRequest, "Error due to duplicate config keys")
                }
                var next: [String: String] = [:]
                for c in res.configs {
                    guard let v = c.value else { throw ApiError(.invalidRequest, "Null value not supported for : \(c.name)") }
                    next[c.name] = v
                }
                let current = currentConfigs(type, res.resourceName)
                let records = try configRecords(type, res.resourceName, from: current, to: next,
                                                touched: Set(current.keys).union(next.keys))
                if !request.validateOnly { emit(records, into: &out) }
                result.errorCode = ErrorCode.noError.rawValue
            } catch {
                result.errorCode = error.code.rawValue
                result.errorMessage = error.message
            }
            response.responses.append(result)
        }
        return ControllerResult(records: out, response: response)
    }

    struct ResourceKey: Hashable {
        var type: Int8
        var name: String
    }

    private func duplicateResources(_ keys: [(Int8, String)]) -> Set<ResourceKey> {
        var counts: [ResourceKey: Int] = [:]
        for (t, n) in keys { counts[ResourceKey(type: t, name: n), default: 0] += 1 }
        return Set(counts.filter { $0.value > 1 }.keys)
    }

    /// Checks that a config resource exists and may be altered here.
    private func validateConfigResource(_ rawType: Int8, _ name: String) throws(ApiError) -> ConfigResourceType {
        switch ConfigResourceType(rawValue: rawType) {
        case .topic?:
            if let why = TopicName.validationError(name) { throw ApiError(.invalidTopicException, why) }
            guard image.topics[name] != nil else {
                throw ApiError(.unknownTopicOrPartition, "The topic '\(name)' does not exist.")
            }
            return .topic
        case .broker?:
            guard name.isEmpty || Int32(name) != nil else { throw ApiError(.invalidRequest, "Invalid broker name \(name)") }
            return .broker
        default:
            throw ApiError(.invalidRequest, "Unknown resource type \(rawType)")
        }
    }

    private func currentConfigs(_ type: ConfigResourceType, _ name: String) -> [String: String] {
        (type == .topic ? image.topicConfigs[name] : image.brokerConfigs[name]) ?? [:]
    }

    /// Validates the new values and returns one `ConfigRecord` per key that changes (per
    /// touched key that is set, for brokers), in key order.
    private func configRecords(_ type: ConfigResourceType, _ name: String, from current: [String: String],
                               to next: [String: String], touched: Set<String>) throws(ApiError) -> [MetadataRecord] {
        var records: [MetadataRecord] = []
        if type == .broker {
            let fixed = touched.sorted().filter { next[$0] != nil && !config.isDynamicBrokerConfig($0) }
            if !fixed.isEmpty {
                throw ApiError(.invalidRequest, "Cannot update these configs dynamically: Set(\(fixed.joined(separator: ", ")))")
            }
        }
        for key in touched.sorted() {
            let value = next[key]
            if type == .topic, let v = value, let why = TopicConfigs.validationError(name: key, value: v) {
                throw ApiError(.invalidConfig, why)
            }
            let changed = value != current[key]
            guard changed || (type == .broker && value != nil) else { continue }
            var r = ConfigRecord()
            r.resourceType = type.rawValue
            r.resourceName = name
            r.name = key
            r.value = value
            records.append(.config(r))
        }
        return records
    }
}
