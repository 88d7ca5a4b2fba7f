import FjordClient
import FjordProtocol
import FjordRaft
import FjordRaftRuntime
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// KRaft over TCP: the core's requests go to the voters' controller listeners as the real
/// Kafka RPCs (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch); their responses come back to
/// the core. One connection per peer, opened on demand; a closed connection tells the core
/// the peer is gone. Responses to Fetches older than the latest one sent to a peer are
/// dropped (the core has moved on).
public final class NetworkRaftTransport: RaftTransport, @unchecked Sendable {
    let group: EventLoopGroup
    let endpoints: [Int32: (host: String, port: Int)]
    let clusterId: String
    let logger: Logger
    let requestTimeoutMs: Int64
    private let lock = NIOLock()
    private var connections: [Int32: EventLoopFuture<KafkaConnection>] = [:]
    private var latestFetch: [Int32: UInt64] = [:]
    private var fetchSeq: UInt64 = 0
    private var refused: Set<Int32> = []
    /// Called when a voter's controller port refuses connections (its process is gone).
    var onPeerRefused: (@Sendable (Int32) -> Void)?

    /// Voters whose controller port refused the last connection attempt.
    var refusedPeers: Set<Int32> { lock.withLock { refused } }

    public init(group: EventLoopGroup, voters: [QuorumVoter], clusterId: String, requestTimeoutMs: Int64, logger: Logger) {
        self.group = group
        var e: [Int32: (String, Int)] = [:]
        for v in voters { e[v.id] = (v.host, v.port) }
        self.endpoints = e
        self.clusterId = clusterId
        self.requestTimeoutMs = requestTimeoutMs
        self.logger = logger
    }

    public func send(_ envelope: RaftEnvelope, from sender: RaftRuntime) {
        guard !envelope.message.isResponse else {
            // Responses travel back on the request's connection (RaftRuntime.deliverRequest).
            return
        }
        let to = envelope.to
        guard endpoints[to] != nil else {
            logger.warning("no endpoint for raft peer", metadata: ["peer": "\(to)"])
            sender.deliveryFailed(envelope)
            return
        }
        let request: any KafkaRequest
        let version: Int16
        do {
            (request, version) = try RaftWire.request(envelope.message, to: to, clusterId: clusterId)
        } catch {
            logger.error("cannot encode raft request", metadata: ["error": "\(error)"])
            return
        }
        var fetchSeqNo: UInt64 = 0
        if case .fetch = envelope.message {
            fetchSeqNo = lock.withLock {
                fetchSeq += 1
                latestFetch[to] = fetchSeq
                return fetchSeq
            }
        }
        let seq = fetchSeqNo
        let timeout = requestTimeoutMs + (envelope.message.fetchWaitMs ?? 0)
        connection(to: to, sender: sender).flatMap { conn in
            Self.send(request, version: version, on: conn, timeoutMs: timeout)
        }.whenComplete { result in
            switch result {
            case let .success(resp):
                if seq != 0, self.lock.withLock({ self.latestFetch[to] }) != seq { return }
                do {
                    let msg = try RaftWire.message(fromResponse: resp, request: envelope.message)
                    sender.deliver(RaftEnvelope(from: to, to: envelope.from, message: msg))
                } catch {
                    self.logger.warning("malformed raft response", metadata: ["peer": "\(to)", "error": "\(error)"])
                    sender.deliveryFailed(envelope)
                }
            case .failure:
                sender.deliveryFailed(envelope)
            }
        }
    }

    static func send<R: KafkaRequest>(_ r: R, version: Int16, on conn: KafkaConnection, timeoutMs: Int64) -> EventLoopFuture<any KafkaResponse> {
        conn.send(r, version: version, timeoutMs: timeoutMs)
    }

    private func connection(to peer: Int32, sender: RaftRuntime) -> EventLoopFuture<KafkaConnection> {
        lock.withLock {
            if let c = connections[peer] { return c }
            let ep = endpoints[peer]!
            let f = KafkaConnection.connect(host: ep.host, port: ep.port, group: group, clientId: "raft-client-\(sender.nodeId)",
                                            connectTimeoutMs: requestTimeoutMs)
            connections[peer] = f
            f.whenComplete { result in
                switch result {
                case let .success(conn):
                    self.lock.withLock { _ = self.refused.remove(peer) }
                    conn.closeFuture.whenComplete { _ in
                        self.dropConnection(peer, f)
                        sender.peerDisconnected(peer)
                    }
                case let .failure(error):
                    self.dropConnection(peer, f)
                    if Self.isRefused(error) {
                        let first = self.lock.withLock { self.refused.insert(peer).inserted }
                        if first { self.onPeerRefused?(peer) }
                    }
                }
            }
            return f
        }
    }

    static func isRefused(_ error: Error) -> Bool {
        if let e = error as? NIOConnectionError {
            return e.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
        }
        if let e = error as? IOError { return e.errnoCode == ECONNREFUSED }
        return false
    }

    private func dropConnection(_ peer: Int32, _ f: EventLoopFuture<KafkaConnection>) {
        lock.withLock {
            if connections[peer] === f { connections[peer] = nil }
        }
    }

    public func closeAll() {
        let cs = lock.withLock { () -> [EventLoopFuture<KafkaConnection>] in
            let v = Array(connections.values)
            connections = [:]
            return v
        }
        for c in cs { c.whenSuccess { $0.close() } }
    }
}

extension RaftMessage {
    /// A Fetch's long-poll wait: its response may take this long on top of the request timeout.
    var fetchWaitMs: Int64? {
        if case let .fetch(f) = self { return Int64(f.maxWaitMs) }
        return nil
    }
}
