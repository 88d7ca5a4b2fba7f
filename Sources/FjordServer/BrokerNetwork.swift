import FjordClient
import FjordBroker
import FjordMetadata
import FjordProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The broker's view of the network: the active controller through `ControllerChannel`,
/// other brokers on the inter-broker listener (endpoints from the metadata image), one
/// connection per broker opened on demand.
final class BrokerNetwork: BrokerTransport, @unchecked Sendable {
    let channel: ControllerChannel
    let publisher: MetadataPublisher
    let group: EventLoopGroup
    let listenerName: String
    let nodeId: Int32
    private let lock = NIOLock()
    private var connections: [Int32: EventLoopFuture<KafkaConnection>] = [:]

    init(channel: ControllerChannel, publisher: MetadataPublisher, group: EventLoopGroup, listenerName: String, nodeId: Int32) {
        self.channel = channel
        self.publisher = publisher
        self.group = group
        self.listenerName = listenerName
        self.nodeId = nodeId
    }

    struct UnknownBroker: Error, CustomStringConvertible {
        var id: Int32
        var description: String { "no endpoint for broker \(id) in the metadata image" }
    }

    func sendToController<R: KafkaRequest>(_ request: R, version: Int16) -> EventLoopFuture<any KafkaResponse> {
        channel.send(request, version: version, timeoutMs: 30_000)
    }

    func sendToBroker<R: KafkaRequest>(_ id: Int32, _ request: R, version: Int16, timeoutMs: Int64) -> EventLoopFuture<any KafkaResponse> {
        connection(id).flatMap { $0.send(request, version: version, timeoutMs: timeoutMs) }
    }

    private func connection(_ id: Int32) -> EventLoopFuture<KafkaConnection> {
        lock.withLock {
            if let c = connections[id] { return c }
            guard let b = publisher.image.brokers[id],
                  let e = b.endpoints.first(where: { $0.name == listenerName }) ?? b.endpoints.first else {
                return group.next().makeFailedFuture(UnknownBroker(id: id))
            }
            let f = KafkaConnection.connect(host: e.host, port: Int(e.port), group: group, clientId: "replica-fetcher-\(nodeId)", connectTimeoutMs: 3000)
            connections[id] = f
            f.whenComplete { r in
                switch r {
                case let .success(conn): conn.closeFuture.whenComplete { _ in self.drop(id, f) }
                case .failure: self.drop(id, f)
                }
            }
            return f
        }
    }

    private func drop(_ id: Int32, _ f: EventLoopFuture<KafkaConnection>) {
        lock.withLock { if connections[id] === f { connections[id] = nil } }
    }

    func close() {
        let all = lock.withLock { () -> [EventLoopFuture<KafkaConnection>] in
            defer { connections = [:] }
            return Array(connections.values)
        }
        for c in all { c.whenSuccess { $0.close() } }
    }
}
