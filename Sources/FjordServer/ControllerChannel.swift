import FjordClient
import FjordProtocol
import FjordRaftRuntime
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Requests from this node to the active controller: broker registration and heartbeats,
/// and admin requests a broker forwards. The active controller is the Raft leader this
/// node knows; its address is its entry in `controller.quorum.voters`.
final class ControllerChannel: @unchecked Sendable {
    let raft: RaftRuntime
    let group: EventLoopGroup
    let voters: [Int32: QuorumVoter]
    let nodeId: Int32
    let logger: Logger
    private let lock = NIOLock()
    private var connection: (leader: Int32, conn: EventLoopFuture<KafkaConnection>)?

    init(raft: RaftRuntime, group: EventLoopGroup, voters: [QuorumVoter], nodeId: Int32, logger: Logger) {
        self.raft = raft
        self.group = group
        var v: [Int32: QuorumVoter] = [:]
        for x in voters { v[x.id] = x }
        self.voters = v
        self.nodeId = nodeId
        self.logger = logger
    }

    struct NoController: Error, CustomStringConvertible {
        var description: String { "no active controller is known" }
    }

    /// The request never left this node: the active controller could not be reached.
    struct NotSent: Error, CustomStringConvertible {
        let controller: Int32
        let underlying: any Error
        var description: String { "cannot connect to controller \(controller): \(underlying)" }
    }

    /// Sends `request` to the active controller and returns its response.
    func send<R: KafkaRequest>(_ request: R, version: Int16, timeoutMs: Int64 = 30_000) -> EventLoopFuture<any KafkaResponse> {
        raft.snapshot().flatMap { s -> EventLoopFuture<any KafkaResponse> in
            guard s.leaderId >= 0, let v = self.voters[s.leaderId] else {
                return self.raft.loop.makeFailedFuture(NoController())
            }
            return self.connection(to: v)
                .flatMapErrorThrowing { throw NotSent(controller: v.id, underlying: $0) }
                .flatMap { $0.send(request, version: version, timeoutMs: timeoutMs) }
        }
    }

    private func connection(to v: QuorumVoter) -> EventLoopFuture<KafkaConnection> {
        lock.withLock {
            if let c = connection, c.leader == v.id { return c.conn }
            connection?.conn.whenSuccess { $0.close() }
            let f = KafkaConnection.connect(host: v.host, port: v.port, group: group, clientId: ForwardClientId.value, connectTimeoutMs: 3000)
            connection = (v.id, f)
            f.whenComplete { r in
                switch r {
                case let .success(conn): conn.closeFuture.whenComplete { _ in self.drop(f) }
                case .failure: self.drop(f)
                }
            }
            return f
        }
    }

    private func drop(_ f: EventLoopFuture<KafkaConnection>) {
        lock.withLock { if connection?.conn === f { connection = nil } }
    }

    func close() {
        lock.withLock {
            connection?.conn.whenSuccess { $0.close() }
            connection = nil
        }
    }
}
