import FjordProtocol
import FjordWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An error from a client connection.
public enum KafkaConnectionError: Error, CustomStringConvertible, Sendable {
    case closed(String)
    case timedOut(String)
    case malformedResponse(String)

    public var description: String {
        switch self {
        case let .closed(s): return "connection to \(s) closed"
        case let .timedOut(s): return "request timed out: \(s)"
        case let .malformedResponse(s): return "malformed response: \(s)"
        }
    }
}

/// A client connection speaking the Kafka protocol: requests go out with increasing
/// correlation ids and responses are paired with them in order (Kafka answers each
/// connection's requests in order). Used between nodes (Raft, broker → controller, forwarding)
/// and by the CLI tools.
public final class KafkaConnection: @unchecked Sendable {
    public let channel: Channel
    public let peer: String
    let handler: ClientHandler
    let clientId: String

    init(channel: Channel, handler: ClientHandler, peer: String, clientId: String) {
        self.channel = channel
        self.handler = handler
        self.peer = peer
        self.clientId = clientId
    }

    /// Connects to host:port on `group`.
    public static func connect(host: String, port: Int, group: EventLoopGroup, clientId: String = "fjord",
                               connectTimeoutMs: Int64 = 5000, maxFrameSize: Int = KafkaFrameDecoder.defaultMaxFrameSize) -> EventLoopFuture<KafkaConnection> {
        let peer = "\(host):\(port)"
        let handler = ClientHandler(peer: peer)
        return ClientBootstrap(group: group)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.milliseconds(connectTimeoutMs))
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: maxFrameSize)))
                    try ch.pipeline.syncOperations.addHandler(MessageToByteHandler(KafkaFrameEncoder()))
                    try ch.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port)
            .map { KafkaConnection(channel: $0, handler: handler, peer: peer, clientId: clientId) }
    }

    public var isActive: Bool { channel.isActive }
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Sends `request` at `version`; the future holds the decoded response. `timeoutMs` fails
    /// the future (the connection is closed, since responses are ordered).
    public func send<R: KafkaRequest>(_ request: R, version: Int16, timeoutMs: Int64 = 30_000) -> EventLoopFuture<any KafkaResponse> {
        sendRaw(request, version: version, timeoutMs: timeoutMs).flatMapThrowing { body in
            var b = body
            let r = try R.apiKey.responseType.init(from: &b, version: version)
            return r
        }
    }

    /// As `send`, typed.
    public func send<R: KafkaRequest, S: KafkaResponse>(_ request: R, version: Int16, expecting: S.Type,
                                                        timeoutMs: Int64 = 30_000) -> EventLoopFuture<S> {
        sendRaw(request, version: version, timeoutMs: timeoutMs).flatMapThrowing { body in
            var b = body
            return try S(from: &b, version: version)
        }
    }

    /// Sends a request and returns the response body (after the response header).
    public func sendRaw<R: KafkaRequest>(_ request: R, version: Int16, timeoutMs: Int64) -> EventLoopFuture<ByteBuffer> {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: ByteBuffer.self)
        let headerVersion = R.apiKey.responseHeaderVersion(for: version)
        loop.execute {
            let corr = self.handler.nextCorrelationId()
            let frame: ByteBuffer
            do {
                frame = try KafkaFrames.request(request, version: version, correlationId: corr, clientId: self.clientId)
            } catch {
                return promise.fail(error)
            }
            guard self.channel.isActive else { return promise.fail(KafkaConnectionError.closed(self.peer)) }
            self.handler.expect(corr, headerVersion: headerVersion, promise: promise)
            self.channel.writeAndFlush(frame, promise: nil)
            if timeoutMs > 0 {
                let task = loop.scheduleTask(in: .milliseconds(timeoutMs)) {
                    if self.handler.isPending(corr) {
                        self.handler.failAll(KafkaConnectionError.timedOut("\(R.apiKey.name) to \(self.peer) after \(timeoutMs) ms"))
                        self.channel.close(promise: nil)
                    }
                }
                promise.futureResult.whenComplete { _ in task.cancel() }
            }
        }
        return promise.futureResult
    }

    /// Sends a request the broker does not answer (Produce with acks=0); the future completes
    /// when the frame is written.
    public func sendWithoutResponse<R: KafkaRequest>(_ request: R, version: Int16) -> EventLoopFuture<Void> {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: Void.self)
        loop.execute {
            let corr = self.handler.nextCorrelationId()
            let frame: ByteBuffer
            do {
                frame = try KafkaFrames.request(request, version: version, correlationId: corr, clientId: self.clientId)
            } catch {
                return promise.fail(error)
            }
            guard self.channel.isActive else { return promise.fail(KafkaConnectionError.closed(self.peer)) }
            self.channel.writeAndFlush(frame, promise: promise)
        }
        return promise.futureResult
    }

    public func close() {
        channel.close(promise: nil)
    }
}

final class ClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let peer: String
    private var correlation: Int32 = 0
    private var pending: [(corr: Int32, headerVersion: Int16, promise: EventLoopPromise<ByteBuffer>)] = []

    init(peer: String) { self.peer = peer }

    func nextCorrelationId() -> Int32 {
        correlation = correlation &+ 1
        if correlation < 0 { correlation = 1 }
        return correlation
    }

    func expect(_ corr: Int32, headerVersion: Int16, promise: EventLoopPromise<ByteBuffer>) {
        pending.append((corr, headerVersion, promise))
    }

    func isPending(_ corr: Int32) -> Bool { pending.contains { $0.corr == corr } }

    func failAll(_ error: Error) {
        let p = pending
        pending = []
        for e in p { e.promise.fail(error) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard !pending.isEmpty else {
            failAll(KafkaConnectionError.malformedResponse("unexpected response from \(peer)"))
            context.close(promise: nil)
            return
        }
        let head = pending.removeFirst()
        do {
            let header = try ResponseHeader(from: &frame, version: head.headerVersion)
            guard header.correlationId == head.corr else {
                throw KafkaConnectionError.malformedResponse("correlation id \(header.correlationId), expected \(head.corr) from \(peer)")
            }
            head.promise.succeed(frame)
        } catch {
            head.promise.fail(error)
            failAll(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(KafkaConnectionError.closed(peer))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(error)
        context.close(promise: nil)
    }
}
