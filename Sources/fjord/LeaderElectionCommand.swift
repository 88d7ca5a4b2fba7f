import ArgumentParser
import Foundation
import FjordClient

/// `fjord leader-election`: Kafka's `kafka-leader-election`.
struct LeaderElectionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leader-election",
        abstract: "Elect partition leaders: the preferred replica, or any live replica (unclean).",
        discussion: """
            Examples:
              fjord leader-election --bootstrap-server localhost:9092 --election-type preferred --all-topic-partitions
              fjord leader-election --bootstrap-server localhost:9092 --election-type preferred --topic orders --partition 0
              fjord leader-election --bootstrap-server localhost:9092 --election-type unclean --topic orders --partition 2

            Preferred moves leadership back to each partition's first replica (when in the ISR).
            Unclean elects a replica outside the ISR for a partition without a leader: acknowledged
            records may be lost, use it only to recover a partition whose ISR is gone.
            """
    )

    @OptionGroup var client: ClientToolOptions

    @Option(name: .customLong("election-type"), help: "preferred or unclean.")
    var electionType: String

    @Option(name: .customLong("topic"), help: "The topic (with --partition).")
    var topic: String?

    @Option(name: .customLong("partition"), help: "The partition (with --topic).")
    var partition: Int32?

    @Flag(name: .customLong("all-topic-partitions"), help: "Every partition of every topic.")
    var allTopicPartitions = false

    @Option(name: .customLong("path-to-json-file"), help: "A JSON file {\"partitions\": [{\"topic\": t, \"partition\": p}, ...]}.")
    var pathToJsonFile: String?

    func validate() throws {
        guard ["preferred", "unclean"].contains(electionType.lowercased()) else {
            throw ValidationError("--election-type must be preferred or unclean")
        }
        let n = [allTopicPartitions, topic != nil, pathToJsonFile != nil].filter { $0 }.count
        if n != 1 { throw ValidationError("One and only one of the following options is required: --all-topic-partitions, --topic, --path-to-json-file") }
        if topic != nil && partition == nil { throw ValidationError("--topic needs --partition") }
        if partition != nil && topic == nil { throw ValidationError("--partition needs --topic") }
    }

    func run() throws {
        try ToolRun.run {
            let c = try client.makeClient(clientId: "fjord-leader-election")
            defer { c.close() }
            let admin = KafkaAdmin(client: c)
            var partitions: [TopicPartition]? = nil
            if let t = topic, let p = partition { partitions = [TopicPartition(t, p)] }
            if let f = pathToJsonFile { partitions = try parseJson(f) }
            let unclean = electionType.lowercased() == "unclean"
            let results = try admin.electLeaders(unclean: unclean, partitions: partitions).wait()
            let (lines, failures) = LeaderElectionFormat.lines(results, unclean: unclean)
            for l in lines { print(l) }
            if failures > 0 { throw ToolFailure("\(failures) replica(s) could not be elected") }
        }
    }

    /// A minimal reader for Kafka's election JSON.
    func parseJson(_ path: String) throws -> [TopicPartition] {
        var text = ""
        for (k, v) in try ToolSupport.loadProperties(path: path) { text += k + (v.isEmpty ? "" : ":" + v) + "\n" }
        var out: [TopicPartition] = []
        var rest = Substring(text)
        while let t = rest.range(of: "\"topic\"") {
            rest = rest[t.upperBound...]
            guard let q1 = rest.firstIndex(of: "\"") else { break }
            let afterQ1 = rest.index(after: q1)
            guard let q2 = rest[afterQ1...].firstIndex(of: "\"") else { break }
            let name = String(rest[afterQ1..<q2])
            rest = rest[rest.index(after: q2)...]
            guard let p = rest.range(of: "\"partition\"") else { break }
            let digits = rest[p.upperBound...].drop { !$0.isNumber }.prefix { $0.isNumber }
            guard let n = Int32(digits) else { break }
            out.append(TopicPartition(name, n))
            rest = rest[p.upperBound...]
        }
        if out.isEmpty { throw ToolFailure("\(path): no {\"topic\": ..., \"partition\": ...} entries found") }
        return out
    }
}
