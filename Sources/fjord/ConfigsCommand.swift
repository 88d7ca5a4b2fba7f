import ArgumentParser
import Foundation
import FjordClient

/// `fjord configs`: Kafka's `kafka-configs` for topics and brokers.
struct ConfigsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configs",
        abstract: "Describe or change the configs of topics and brokers.",
        discussion: """
            Examples:
              fjord configs --bootstrap-server localhost:9092 --entity-type topics --entity-name orders --describe
              fjord configs --bootstrap-server localhost:9092 --entity-type topics --entity-name orders --describe --all
              fjord configs --bootstrap-server localhost:9092 --entity-type topics --entity-name orders --alter --add-config retention.ms=3600000,cleanup.policy=[compact,delete]
              fjord configs --bootstrap-server localhost:9092 --entity-type topics --entity-name orders --alter --delete-config retention.ms
              fjord configs --bootstrap-server localhost:9092 --entity-type brokers --entity-name 1 --describe
              fjord configs --bootstrap-server localhost:9092 --entity-type brokers --entity-default --alter --add-config log.retention.ms=600000

            --describe shows the configs set on the entity itself ("Dynamic configs"); add --all for
            every config with its source and synonyms.
            """
    )

    @OptionGroup var client: ClientToolOptions

    @Option(name: .customLong("entity-type"), help: "topics or brokers.")
    var entityType: String?

    @Option(name: .customLong("entity-name"), help: "The topic name or broker id.")
    var entityName: String?

    @Flag(name: .customLong("entity-default"), help: "The cluster-wide default (brokers only).")
    var entityDefault = false

    @Option(name: .customLong("topic"), help: "Same as --entity-type topics --entity-name T.")
    var topic: String?

    @Option(name: .customLong("broker"), help: "Same as --entity-type brokers --entity-name B.")
    var broker: String?

    @Flag(name: .customLong("broker-defaults"), help: "Same as --entity-type brokers --entity-default.")
    var brokerDefaults = false

    @Flag(name: .customLong("describe"), help: "List configs for the given entity.")
    var describe = false

    @Flag(name: .customLong("all"), help: "With --describe: all configs, not only those set dynamically.")
    var all = false

    @Flag(name: .customLong("alter"), help: "Alter the configuration of the entity.")
    var alter = false

    @Option(name: .customLong("add-config"), help: ArgumentHelp("Configs to set: k1=v1,k2=[v1,v2] (repeatable).", valueName: "k=v,..."))
    var addConfig: [String] = []

    @Option(name: .customLong("add-config-file"), help: "A properties file of configs to set.")
    var addConfigFile: String?

    @Option(name: .customLong("delete-config"), help: ArgumentHelp("Configs to remove: k1,k2 (repeatable).", valueName: "k,..."))
    var deleteConfig: [String] = []

    var resolved: (type: ConfigResourceType, name: String?, isDefault: Bool)? {
        if let t = topic { return (.topic, t, false) }
        if let b = broker { return (.broker, b, false) }
        if brokerDefaults { return (.broker, "", true) }
        guard let et = entityType else { return nil }
        let type: ConfigResourceType
        switch et {
        case "topics", "topic": type = .topic
        case "brokers", "broker": type = .broker
        case "broker-loggers": type = .brokerLogger
        default: return nil
        }
        return (type, entityDefault ? "" : entityName, entityDefault)
    }

    func validate() throws {
        if describe == alter { throw ValidationError("Command must include exactly one action: --describe or --alter") }
        if let et = entityType, !["topics", "topic", "brokers", "broker", "broker-loggers"].contains(et) {
            throw ValidationError("--entity-type \(et) is not supported: use topics or brokers (users, clients and ips need quotas, not in Fjord yet)")
        }
        guard let r = resolved else { throw ValidationError("Missing --entity-type (topics or brokers), or use --topic T / --broker B") }
        if r.type == .topic && entityDefault { throw ValidationError("--entity-default applies to brokers only, not topics") }
        if entityName != nil && entityDefault { throw ValidationError("Only one of --entity-name or --entity-default may be given") }
        if alter {
            if r.name == nil { throw ValidationError("--alter needs --entity-name (or --entity-default for brokers)") }
            if addConfig.isEmpty && deleteConfig.isEmpty && addConfigFile == nil {
                throw ValidationError("--alter needs --add-config k=v[,...] and/or --delete-config k[,...]")
            }
        }
        if r.type == .broker, let n = r.name, !n.isEmpty, Int32(n) == nil {
            throw ValidationError("The entity name for brokers must be a broker id, not \(n)")
        }
    }

    func run() throws {
        try ToolRun.run {
            let c = try client.makeClient(clientId: "fjord-configs")
            defer { c.close() }
            let admin = KafkaAdmin(client: c)
            let r = resolved!
            if describe { try runDescribe(admin, type: r.type, name: r.name) }
            if alter { try runAlter(admin, type: r.type, name: r.name!) }
        }
    }

    func runDescribe(_ admin: KafkaAdmin, type: ConfigResourceType, name: String?) throws {
        var names: [String]
        if let n = name {
            names = [n]
        } else if type == .topic {
            names = try admin.listTopics().wait()
        } else {
            let md = try admin.client.refreshMetadata(topics: []).wait()
            names = md.brokerIds.map { String($0) } + [""]
        }
        if type == .topic, let n = name {
            let md = try admin.client.refreshMetadata(topics: [n]).wait()
            if md.topics[n] == nil || md.topics[n]?.error == .unknownTopicOrPartition {
                throw ToolFailure("The topic '\(n)' does not exist. List topics with `fjord topics --bootstrap-server \(client.bootstrapServer ?? "H:P") --list`.")
            }
        }
        if type == .broker { _ = try? admin.client.refreshMetadata(topics: []).wait() }
        for n in names {
            let entries = try admin.describeConfigs(type: type, name: n, includeSynonyms: true).wait()
            print(ConfigsFormat.heading(entityType: type, name: n, all: all))
            for e in ConfigsFormat.shown(entries, entityType: type, name: n, all: all).sorted(by: { $0.name < $1.name }) {
                print(ConfigsFormat.entryLine(e))
            }
        }
    }

    func runAlter(_ admin: KafkaAdmin, type: ConfigResourceType, name: String) throws {
        var sets: [(String, String)] = []
        for a in addConfig { sets += try ToolSupport.configList(a) }
        if let f = addConfigFile { sets += try ToolSupport.loadProperties(path: f) }
        let deletes = deleteConfig.flatMap { $0.split(separator: ",").map { $0.filter { !$0.isWhitespace } } }.filter { !$0.isEmpty }
        if type == .topic {
            let md = try admin.client.refreshMetadata(topics: [name]).wait()
            if md.topics[name] == nil || md.topics[name]?.error == .unknownTopicOrPartition {
                throw ToolFailure("The topic '\(name)' does not exist. List topics with `fjord topics --bootstrap-server \(client.bootstrapServer ?? "H:P") --list`.")
            }
        }
        if !deletes.isEmpty && type == .topic {
            let current = try admin.describeConfigs(type: type, name: name, includeSynonyms: false).wait()
            let set = Set(ConfigsFormat.shown(current, entityType: type, name: name, all: false).map(\.name))
            let invalid = deletes.filter { !set.contains($0) }
            if !invalid.isEmpty {
                throw ToolFailure("Invalid config(s): \(invalid.joined(separator: ",")) (not set on topic \(name); see `fjord configs --entity-type topics --entity-name \(name) --describe`)")
            }
        }
        let ops = sets.map { AlterConfigOp.set($0.0, $0.1) } + deletes.map { AlterConfigOp.delete($0) }
        try admin.incrementalAlterConfigs(type: type, name: name, ops: ops).wait()
        // Brokers answer DescribeConfigs from their copy of the metadata: wait (briefly) until it
        // shows the change, so a describe right after this command sees it.
        let deadline = Clock.monotonicNs() + 5_000_000_000
        while Clock.monotonicNs() < deadline {
            guard let now = try? admin.describeConfigs(type: type, name: name, includeSynonyms: false).wait() else { break }
            let dynamic = ConfigsFormat.shown(now, entityType: type, name: name, all: false)
            let setOk = sets.allSatisfy { k, v in dynamic.contains { $0.name == k && ($0.value == v || $0.isSensitive) } }
            let delOk = deletes.allSatisfy { k in !dynamic.contains { $0.name == k } }
            if setOk && delOk { break }
            usleep(50_000)
        }
        switch type {
        case .topic: print("Completed updating config for topic \(name).")
        case .broker where name.isEmpty: print("Completed updating default config for brokers in the cluster.")
        case .broker: print("Completed updating config for broker \(name).")
        default: print("Completed updating config for \(name).")
        }
    }
}
