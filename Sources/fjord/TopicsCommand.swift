import ArgumentParser
import FjordClient
import FjordProtocol
import NIOCore

/// `fjord topics`: Kafka's `kafka-topics` (create, list, describe, alter, delete).
struct TopicsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Create, delete, describe, or change a topic.",
        discussion: """
            Examples:
              fjord topics --bootstrap-server localhost:9092 --create --topic orders --partitions 3 --replication-factor 3 --config retention.ms=86400000
              fjord topics --bootstrap-server localhost:9092 --list
              fjord topics --bootstrap-server localhost:9092 --describe --topic orders
              fjord topics --bootstrap-server localhost:9092 --describe --under-replicated-partitions
              fjord topics --bootstrap-server localhost:9092 --alter --topic orders --partitions 6
              fjord topics --bootstrap-server localhost:9092 --delete --topic orders

            --topic takes a regular expression for --describe, --alter and --delete (e.g. 'orders.*').
            Change topic configs with `fjord configs --alter --entity-type topics`.
            """
    )

    @OptionGroup var client: ClientToolOptions

    @Flag(name: .customLong("create"), help: "Create a new topic.") var create = false
    @Flag(name: .customLong("list"), help: "List all available topics.") var list = false
    @Flag(name: .customLong("describe"), help: "List details for the given topics.") var describe = false
    @Flag(name: .customLong("alter"), help: "Alter the number of partitions of a topic.") var alter = false
    @Flag(name: .customLong("delete"), help: "Delete a topic.") var delete = false

    @Option(name: .customLong("topic"), help: "The topic to create, alter, describe or delete (a regular expression except with --create).")
    var topic: String?

    @Option(name: .customLong("partitions"), help: "The number of partitions for the topic being created or altered (the broker's num.partitions if not given at creation).")
    var partitions: Int32?

    @Option(name: .customLong("replication-factor"), help: "The replication factor for each partition of the topic being created (the broker's default.replication.factor if not given).")
    var replicationFactor: Int16?

    @Option(name: .customLong("config"), help: ArgumentHelp("A topic configuration override for the topic being created, key=value (repeatable).", valueName: "key=value"))
    var configs: [String] = []

    @Option(name: .customLong("replica-assignment"), help: "Manual partition-to-broker assignments: b1:b2,b1:b2 (one entry per partition).")
    var replicaAssignment: String?

    @Flag(name: .customLong("if-exists"), help: "With --alter, --describe or --delete: only act if the topic exists.")
    var ifExists = false

    @Flag(name: .customLong("if-not-exists"), help: "With --create: only create the topic if it does not exist.")
    var ifNotExists = false

    @Flag(name: .customLong("under-replicated-partitions"), help: "With --describe: only partitions whose ISR is smaller than the replica set.")
    var underReplicated = false

    @Flag(name: .customLong("unavailable-partitions"), help: "With --describe: only partitions without a live leader.")
    var unavailable = false

    @Flag(name: .customLong("under-min-isr-partitions"), help: "With --describe: only partitions whose ISR is below min.insync.replicas.")
    var underMinIsr = false

    @Flag(name: .customLong("at-min-isr-partitions"), help: "With --describe: only partitions whose ISR equals min.insync.replicas.")
    var atMinIsr = false

    @Flag(name: .customLong("exclude-internal"), help: "Exclude internal topics from --list and --describe.")
    var excludeInternal = false

    @Option(name: .customLong("output"), help: "With --describe: text (Kafka's format, default) or json.")
    var output: String = "text"

    func validate() throws {
        let n = [create, list, describe, alter, delete].filter { $0 }.count
        if n != 1 {
            throw ValidationError("Command must include exactly one action: --list, --describe, --create, --alter or --delete")
        }
        if (create || alter || delete) && topic == nil {
            throw ValidationError("Missing required argument \"[topic]\": give --topic NAME")
        }
        if !(create || alter) {
            // Kafka's TopicCommand names the first option that does not fit the action.
            let action = list ? "list" : describe ? "describe" : "delete"
            if partitions != nil { throw ValidationError("Option \"[partitions]\" can't be used with option \"[\(action)]\"") }
            if replicationFactor != nil { throw ValidationError("Option \"[replication-factor]\" can't be used with option \"[\(action)]\"") }
            if !configs.isEmpty { throw ValidationError("Option \"[config]\" can't be used with option \"[\(action)]\"") }
        }
        if alter && replicationFactor != nil {
            throw ValidationError("--replication-factor cannot be changed with --alter: a topic's replicas move with a partition reassignment (kafka-reassign-partitions; not in Fjord yet). To change it now, create a new topic with the replication factor you want and copy the data.")
        }
        if alter && !configs.isEmpty {
            throw ValidationError("--config cannot be used with --alter: change topic configs with `fjord configs --bootstrap-server H:P --alter --entity-type topics --entity-name \(topic ?? "T") --add-config k=v`")
        }
        if alter && partitions == nil {
            throw ValidationError("--alter needs --partitions N (the new, larger partition count)")
        }
        if output != "text" && output != "json" { throw ValidationError("--output must be text or json") }
    }

    func run() throws {
        try ToolRun.run(errorPrefix: "Error while executing topic command : ") {
            let c = try client.makeClient(clientId: "fjord-topics")
            defer { c.close() }
            let admin = KafkaAdmin(client: c)
            if create { try runCreate(admin) }
            if list { try runList(admin) }
            if describe { try runDescribe(admin) }
            if alter { try runAlter(admin) }
            if delete { try runDelete(admin) }
        }
    }

    func runCreate(_ admin: KafkaAdmin) throws {
        let name = topic!
        if name.contains(".") || name.contains("_") {
            print("WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.")
        }
        var t = NewTopic(name: name, partitions: partitions ?? -1, replicationFactor: replicationFactor ?? -1)
        for (k, v) in try ToolSupport.keyValues(configs, option: "--config") { t.configs.append((k, v)) }
        if let ra = replicaAssignment {
            t.assignments = try ra.split(separator: ",").map { part in
                try part.split(separator: ":").map { id in
                    guard let n = Int32(id.filter { !$0.isWhitespace }) else {
                        throw ToolFailure("--replica-assignment \(ra): broker ids must be numbers (b1:b2,b1:b2)")
                    }
                    return n
                }
            }
        }
        do {
            let r = try admin.createTopic(t).wait()
            // Wait until every partition has a leader, so the topic is usable at once.
            let expected = r.numPartitions > 0 ? Int(r.numPartitions) : nil
            _ = try? admin.client.awaitMetadata(topics: [name], timeoutMs: 15_000) { md in
                guard let info = md.topics[name], info.error == nil, !info.partitions.isEmpty else { return false }
                if let e = expected, info.partitions.count < e { return false }
                return info.partitions.allSatisfy { $0.leader >= 0 }
            }.wait()
            print("Created topic \(name).")
        } catch let e as KafkaClientError where e.errorCode == .topicAlreadyExists && ifNotExists {
            return
        } catch let e as KafkaClientError where e.errorCode == .topicAlreadyExists {
            throw ToolFailure("Topic '\(name)' already exists. Describe it with `fjord topics --describe --topic \(name)`, or add --if-not-exists.")
        } catch let e as KafkaClientError where e.errorCode == .invalidReplicationFactor {
            let brokers = admin.client.metadata.brokers.count
            throw ToolFailure("\(e)\(brokers > 0 ? " (the cluster has \(brokers) registered broker\(brokers == 1 ? "" : "s"))" : "")")
        }
    }

    func runList(_ admin: KafkaAdmin) throws {
        let md = try admin.describeTopics(nil).wait()
        var names = md.topics.values.filter { !(excludeInternal && $0.isInternal) }.map(\.name).sorted()
        if let p = topic { names = names.filter { $0.matchesTopicPattern(p) } }
        for n in names { print(n) }
    }

    func matchingTopics(_ admin: KafkaAdmin) throws -> (ClusterMetadata, [TopicInfo]) {
        let md = try admin.describeTopics(nil).wait()
        var topics = md.topics.values.filter { !(excludeInternal && $0.isInternal) }
        if let p = topic { topics = topics.filter { $0.name.matchesTopicPattern(p) } }
        topics.sort { $0.name < $1.name }
        if let p = topic, topics.isEmpty, !ifExists {
            throw ToolFailure("Topic '\(p)' does not exist as expected. List the topics with `fjord topics --bootstrap-server \(client.bootstrapServer ?? "H:P") --list`.")
        }
        return (md, topics)
    }

    func runDescribe(_ admin: KafkaAdmin) throws {
        let (md, topics) = try matchingTopics(admin)
        var filter = TopicsFormat.Filter()
        filter.underReplicated = underReplicated
        filter.unavailable = unavailable
        filter.underMinIsr = underMinIsr
        filter.atMinIsr = atMinIsr
        let live = Set(md.brokers.keys)
        var json: [String] = []
        for t in topics {
            var configs: [ConfigEntry] = []
            if !filter.filtersPartitions || underMinIsr || atMinIsr || output == "json" {
                configs = (try? admin.describeConfigs(type: .topic, name: t.name, includeSynonyms: false).wait()) ?? []
            }
            if output == "json" {
                json.append(TopicsFormat.json(t, configs: configs, filter: filter, liveBrokers: live))
            } else {
                for l in TopicsFormat.describe(t, configs: configs, filter: filter, liveBrokers: live) { print(l) }
            }
        }
        if output == "json" { print("[" + json.joined(separator: ",\n ") + "]") }
    }

    func runAlter(_ admin: KafkaAdmin) throws {
        let (_, topics) = try matchingTopics(admin)
        let n = partitions!
        for t in topics {
            let current = Int32(t.partitions.count)
            if n < current {
                throw ToolFailure("The number of partitions for a topic can only be increased. Topic \(t.name) currently has \(current) partitions, \(n) would not be an increase. To have fewer partitions, create a new topic and copy the data.")
            }
            if n == current {
                throw ToolFailure("Topic \(t.name) already has \(current) partitions. Give a larger --partitions to add some.")
            }
            try admin.createPartitions(topic: t.name, count: n).wait()
            _ = try? admin.client.awaitMetadata(topics: [t.name], timeoutMs: 15_000) { md in
                (md.topics[t.name]?.partitions.count ?? 0) >= Int(n)
            }.wait()
        }
    }

    func runDelete(_ admin: KafkaAdmin) throws {
        let (_, topics) = try matchingTopics(admin)
        for t in topics where t.isInternal {
            throw ToolFailure("Topic \(t.name) is a kafka internal topic and is not allowed to be marked for deletion.")
        }
        guard !topics.isEmpty else { return }
        let results = try admin.deleteTopics(topics.map(\.name)).wait()
        for (name, err) in results.sorted(by: { $0.key < $1.key }) {
            if let e = err { throw ToolFailure("\(name): \(e)") }
        }
        // Wait (briefly) until the brokers' metadata no longer lists them.
        let names = Set(topics.map(\.name))
        _ = try? admin.client.awaitMetadata(topics: nil, timeoutMs: 10_000) { md in names.isDisjoint(with: md.topics.keys) }.wait()
    }
}
