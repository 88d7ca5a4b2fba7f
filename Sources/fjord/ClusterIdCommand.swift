import ArgumentParser
import FjordClient

/// `fjord cluster-id`: Kafka's `kafka-cluster cluster-id`.
struct ClusterIdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-id",
        abstract: "Print the id of the cluster.",
        discussion: """
            Example:
              fjord cluster-id --bootstrap-server localhost:9092
            Prints `Cluster ID: <id>` (the id given to `fjord storage format -t`).
            """
    )

    @OptionGroup var client: ClientToolOptions

    func run() throws {
        try ToolRun.run {
            let c = try client.makeClient(clientId: "fjord-cluster-id")
            defer { c.close() }
            let d = try KafkaAdmin(client: c).describeCluster().wait()
            print("Cluster ID: \(d.clusterId)")
        }
    }
}

/// `fjord broker-api-versions`: Kafka's `kafka-broker-api-versions`.
struct BrokerApiVersionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker-api-versions",
        abstract: "Print the API versions every broker of the cluster serves.",
        discussion: """
            Example:
              fjord broker-api-versions --bootstrap-server localhost:9092
            For each broker: `host:port (id: N rack: r) -> (` then `Name(key): min to max [usable: v]`
            per API, where usable is the version Fjord's client picks.
            """
    )

    @OptionGroup var client: ClientToolOptions

    func run() throws {
        try ToolRun.run {
            let c = try client.makeClient(clientId: "fjord-broker-api-versions")
            defer { c.close() }
            let md = try c.refreshMetadata(topics: []).wait()
            for id in md.brokerIds {
                let b = md.brokers[id]!
                do {
                    let conn = try c.connection(toBroker: id).wait()
                    for l in ApiVersionsFormat.lines(address: b.address, id: id, rack: b.rack, table: conn.versions) { print(l) }
                } catch {
                    stderr("\(b.address) (id: \(id) rack: \(b.rack ?? "null")) -> ERROR: \(error)")
                }
            }
        }
    }
}
