import FjordBroker
import FjordProtocol
import FjordWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Who sent a request, and on which listener.
public struct RequestContext: Sendable {
    public var listenerName: String
    public var isControllerListener: Bool
    public var clientAddress: String
    public var header: RequestHeader
    public var apiKey: ApiKey
    public var apiVersion: Int16
}

/// Serves the requests of the listeners: the node wires one in.
public protocol RequestDispatcher: AnyObject, Sendable {
    /// The API versions served on a controller or a broker listener (advertised in ApiVersions).
    func supportedApis(controllerListener: Bool) -> [ApiKey: ClosedRange<Int16>]
    /// Handles a decoded request; nil means no response (Produce with acks=0).
    func handle(_ request: any KafkaRequest, context: RequestContext) -> EventLoopFuture<(any KafkaResponse)?>
    /// A connection that carried BrokerHeartbeats of `brokerId` closed.
    func heartbeatConnectionClosed(brokerId: Int32)
    /// Features for ApiVersions (finalized metadata.version etc.).
    func apiVersionsFeatures() -> (supported: [(String, Int16, Int16)], finalized: [(String, Int16, Int16)], epoch: Int64)
}

/// The listeners of one node: one SwiftNIO server channel per `listeners` entry.
public final class KafkaServer: @unchecked Sendable {
    let group: EventLoopGroup
    let logger: Logger
    let maxFrameSize: Int
    /// `queued.max.requests`: requests one connection may have in flight before the server
    /// stops reading from it (backpressure instead of an unbounded queue).
    let maxQueuedRequests: Int
    private let channels = NIOLockedValueBox<[Channel]>([])
    private let closed = NIOLockedValueBox(false)

    public init(group: EventLoopGroup, maxFrameSize: Int, maxQueuedRequests: Int = 500, logger: Logger) {
        self.group = group
        self.maxFrameSize = maxFrameSize
        self.maxQueuedRequests = max(1, maxQueuedRequests)
        self.logger = logger
    }

    /// Binds `endpoint`; returns the bound port (useful with port 0). Not on an event loop.
    @discardableResult
    public func bind(_ endpoint: ListenerEndpoint, controllerListener: Bool, dispatcher: RequestDispatcher) throws -> Int {
        try bindAsync(endpoint, controllerListener: controllerListener, dispatcher: dispatcher).wait()
    }

    /// Binds `endpoint` without blocking.
    public func bindAsync(_ endpoint: ListenerEndpoint, controllerListener: Bool, dispatcher: RequestDispatcher) -> EventLoopFuture<Int> {
        let logger = self.logger
        let maxFrameSize = self.maxFrameSize
        let maxQueued = self.maxQueuedRequests
        let host = endpoint.host.isEmpty ? "0.0.0.0" : endpoint.host
        return ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            // Reads grow up to 1 MiB (NIO's default stops at 64 KiB): a produce request of a
            // few hundred KB then often arrives in one read and is sliced, not copied together.
            .childChannelOption(ChannelOptions.recvAllocator,
                                value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 1 << 20))
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    let handler = ServerRequestHandler(listenerName: endpoint.listenerName, controllerListener: controllerListener,
                                                       dispatcher: dispatcher, maxQueued: maxQueued, logger: logger)
                    // Responses are framed by the handler (sizes included): Fetch responses go
                    // out as buffers and file regions (sendfile).
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: maxFrameSize)))
                    try ch.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: host, port: endpoint.port)
            .map { ch in
                if self.closed.withLockedValue({ $0 }) {
                    ch.close(promise: nil)
                    return endpoint.port
                }
                self.channels.withLockedValue { $0.append(ch) }
                let port = ch.localAddress?.port ?? endpoint.port
                logger.info("listening", metadata: ["listener": "\(endpoint.listenerName)", "address": "\(host):\(port)",
                                                    "role": "\(controllerListener ? "controller" : "broker")"])
                return port
            }
    }

    public func close() {
        closed.withLockedValue { $0 = true }
        let all = channels.withLockedValue { c in
            defer { c = [] }
            return c
        }
        for c in all { try? c.close().wait() }
    }
}

/// One connection: frames in, requests decoded and dispatched, responses written back in
/// request order. Unparseable frames close the connection with a log line, as Kafka does.
final class ServerRequestHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = IOData

    let listenerName: String
    let controllerListener: Bool
    let dispatcher: RequestDispatcher
    let logger: Logger
    let supported: [ApiKey: ClosedRange<Int16>]
    /// Completes when every earlier response has been written.
    private var tail: EventLoopFuture<Void>?
    private var remote = "?"
    /// Brokers whose heartbeats arrived on this connection.
    private var heartbeatBrokers: Set<Int32> = []
    let maxQueued: Int
    /// Requests read and not yet answered; at `maxQueued` reading pauses.
    private var outstanding = 0
    private var readingPaused = false

    init(listenerName: String, controllerListener: Bool, dispatcher: RequestDispatcher, maxQueued: Int = 500, logger: Logger) {
        self.maxQueued = maxQueued
        self.listenerName = listenerName
        self.controllerListener = controllerListener
        self.dispatcher = dispatcher
        self.logger = logger
        self.supported = dispatcher.supportedApis(controllerListener: controllerListener)
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let raw = unwrapInboundIn(data)
        let frame: RequestFrame
        do {
            frame = try RequestFrame(parsing: raw)
        } catch {
            logger.warning("closing connection: unparseable request header", metadata: ["client": "\(remote)", "listener": "\(listenerName)", "error": "\(error)"])
            context.close(promise: nil)
            return
        }
        let corr = frame.header.correlationId
        guard let apiKey = frame.apiKey, let range = supported[apiKey] else {
            logger.warning("closing connection: API not served on this listener",
                           metadata: ["client": "\(remote)", "listener": "\(listenerName)", "apiKey": "\(frame.rawApiKey)", "version": "\(frame.apiVersion)"])
            context.close(promise: nil)
            return
        }
        if apiKey == .apiVersions {
            enqueue(context: context, response: context.eventLoop.makeSucceededFuture(apiVersionsResponse(frame).map { [.byteBuffer($0)] }))
            return
        }
        guard range.contains(frame.apiVersion) else {
            logger.warning("closing connection: unsupported version",
                           metadata: ["client": "\(remote)", "api": "\(apiKey.name)", "version": "\(frame.apiVersion)", "supported": "\(range)"])
            context.close(promise: nil)
            return
        }
        let request: any KafkaRequest
        do {
            // Kafka does not insist that a request body is consumed exactly, and librdkafka
            // sends bytes after Metadata v12's tagged fields: tolerate (and ignore) a tail.
            var body = frame.body
            request = try apiKey.requestType.init(from: &body, version: frame.apiVersion)
            if body.readableBytes > 0 {
                logger.trace("ignoring bytes after a request body", metadata: ["api": "\(apiKey.name)", "bytes": "\(body.readableBytes)"])
            }
        } catch {
            let head = raw.getBytes(at: raw.readerIndex, length: min(raw.readableBytes, 128)) ?? []
            logger.warning("closing connection: malformed request", metadata: [
                "client": "\(remote)", "api": "\(apiKey.name)", "version": "\(frame.apiVersion)", "error": "\(error)",
                "frame": "\(head.map { String($0, radix: 16) }.joined(separator: " "))",
            ])
            context.close(promise: nil)
            return
        }
        if let hb = request as? BrokerHeartbeatRequest { heartbeatBrokers.insert(hb.brokerId) }
        let rc = RequestContext(listenerName: listenerName, isControllerListener: controllerListener, clientAddress: remote,
                                header: frame.header, apiKey: apiKey, apiVersion: frame.apiVersion)
        let version = frame.apiVersion
        let logger = self.logger
        let remote = self.remote
        let encoded = dispatcher.handle(request, context: rc).hop(to: context.eventLoop).flatMapThrowing { (resp: (any KafkaResponse)?) -> [IOData]? in
            guard let resp else { return nil }
            return try Self.encode(resp, version: version, correlationId: corr)
        }.flatMapErrorThrowing { error in
            if let e = error as? ConnectionClosingError {
                logger.info("closing connection", metadata: ["client": "\(remote)", "api": "\(apiKey.name)", "reason": "\(e.reason)"])
                throw error
            }
            logger.error("closing connection: request failed", metadata: ["client": "\(remote)", "api": "\(apiKey.name)", "error": "\(error)"])
            throw error
        }
        enqueue(context: context, response: encoded)
    }

    static func encode<R: KafkaResponse>(_ r: R, version: Int16, correlationId: Int32) throws -> [IOData] {
        if let s = r as? SplicedFetchResponse, !s.splices.isEmpty {
            return try spliced(s, version: version, correlationId: correlationId)
        }
        return [.byteBuffer(try KafkaFrames.framedResponse(r, version: version, correlationId: correlationId))]
    }

    /// A Fetch response frame cut at its markers: the encoded bytes around each marker, the
    /// record set's real size prefix, and the segment file range as a `FileRegion`, which
    /// NIO sends with `sendfile`. The frame size at the front is corrected for the swaps.
    static func spliced(_ s: SplicedFetchResponse, version: Int16, correlationId: Int32) throws -> [IOData] {
        let buf = try KafkaFrames.framedResponse(s.response, version: version, correlationId: correlationId)
        let flexible = FetchResponse.isFlexible(version)
        let markerLength = SplicedFetchResponse.markerLength
        // The size prefix the encoder wrote for a marker: uvarint(16 + 1) or an INT32.
        let oldPrefix = flexible ? 1 : 4
        var parts: [IOData] = []
        var cursor = buf.readerIndex
        var size = buf.readableBytes - 4
        let view = buf.readableBytesView
        for sp in s.splices {
            let marker = Array(sp.marker.readableBytesView)
            guard let found = Self.find(marker, in: view, from: cursor - buf.readerIndex) else {
                throw SpliceError(description: "fetch response marker not found")
            }
            let at = buf.readerIndex + found
            let prefixStart = at - oldPrefix
            parts.append(.byteBuffer(buf.getSlice(at: cursor, length: prefixStart - cursor)!))
            var len = ByteBuffer()
            if flexible {
                var v = UInt32(sp.slice.length + 1)
                while v >= 0x80 {
                    len.writeInteger(UInt8(v & 0x7F | 0x80))
                    v >>= 7
                }
                len.writeInteger(UInt8(v))
            } else {
                len.writeInteger(Int32(sp.slice.length))
            }
            size += len.readableBytes + sp.slice.length - oldPrefix - markerLength
            parts.append(.byteBuffer(len))
            let fd = dup(sp.slice.file.fd)
            guard fd >= 0 else { throw SpliceError(description: "cannot dup a segment file descriptor") }
            let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
            parts.append(.fileRegion(FileRegion(fileHandle: handle, readerIndex: sp.slice.position, endIndex: sp.slice.position + sp.slice.length)))
            cursor = at + markerLength
        }
        parts.append(.byteBuffer(buf.getSlice(at: cursor, length: buf.writerIndex - cursor)!))
        if case var .byteBuffer(first) = parts[0] {
            first.setInteger(Int32(size), at: first.readerIndex)
            parts[0] = .byteBuffer(first)
        }
        return parts
    }

    static func find(_ needle: [UInt8], in hay: ByteBufferView, from start: Int) -> Int? {
        guard let first = needle.first, hay.count >= needle.count else { return nil }
        var i = hay.startIndex + start
        let last = hay.endIndex - needle.count
        while i <= last {
            if hay[i] == first {
                var j = 1
                while j < needle.count && hay[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i - hay.startIndex }
            }
            i += 1
        }
        return nil
    }

    private func enqueue(context: ChannelHandlerContext, response: EventLoopFuture<[IOData]?>) {
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        let prev = tail ?? context.eventLoop.makeSucceededVoidFuture()
        let next = prev.flatMap { response }.map { (parts: [IOData]?) -> Void in
            guard let parts else { return }
            let c = ctx.value
            for p in parts {
                if case let .fileRegion(region) = p {
                    // The duplicated descriptor is ours: close it once sent (or failed).
                    let done = c.eventLoop.makePromise(of: Void.self)
                    done.futureResult.whenComplete { _ in try? region.fileHandle.close() }
                    c.write(NIOAny(p), promise: done)
                } else {
                    c.write(NIOAny(p), promise: nil)
                }
            }
            c.flush()
        }
        next.whenFailure { _ in ctx.value.close(promise: nil) }
        tail = next
        outstanding += 1
        if outstanding >= maxQueued && !readingPaused {
            readingPaused = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        next.whenComplete { _ in handler.value.requestDone(ctx.value) }
    }

    private func requestDone(_ context: ChannelHandlerContext) {
        outstanding -= 1
        if readingPaused && outstanding < maxQueued {
            readingPaused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            context.read()
        }
    }

    /// ApiVersions with KIP-511: an unknown (newer) version is answered at v0 with
    /// UNSUPPORTED_VERSION and our range, so the client can retry with a version we know.
    private func apiVersionsResponse(_ frame: RequestFrame) -> ByteBuffer? {
        var resp = ApiVersionsResponse()
        let range = supported[.apiVersions] ?? 0...3
        var version = frame.apiVersion
        if !range.contains(version) {
            resp.errorCode = ErrorCode.unsupportedVersion.rawValue
            version = 0
        } else if version >= 3 {
            // v3+ carries client software name/version; validate them as Kafka does.
            if let req = try? frame.decodeBody(as: ApiVersionsRequest.self), !Self.validSoftwareField(req.clientSoftwareName) || !Self.validSoftwareField(req.clientSoftwareVersion) {
                resp.errorCode = ErrorCode.invalidRequest.rawValue
            }
        }
        resp.apiKeys = supported.sorted { $0.key.rawValue < $1.key.rawValue }.map { k, v in
            var a = ApiVersionsResponse.ApiVersion()
            a.apiKey = k.rawValue
            a.minVersion = v.lowerBound
            a.maxVersion = v.upperBound
            return a
        }
        if version >= 3 {
            let f = dispatcher.apiVersionsFeatures()
            resp.supportedFeatures = f.supported.map { n, lo, hi in
                var s = ApiVersionsResponse.SupportedFeatureKey()
                s.name = n
                s.minVersion = lo
                s.maxVersion = hi
                return s
            }
            resp.finalizedFeatures = f.finalized.map { n, lo, hi in
                var s = ApiVersionsResponse.FinalizedFeatureKey()
                s.name = n
                s.minVersionLevel = lo
                s.maxVersionLevel = hi
                return s
            }
            resp.finalizedFeaturesEpoch = f.epoch
        }
        return try? KafkaFrames.framedResponse(resp, version: version, correlationId: frame.header.correlationId)
    }

    static func validSoftwareField(_ s: String) -> Bool {
        !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." } && s.first.map { $0.isLetter || $0.isNumber } == true
            && s.last.map { $0.isLetter || $0.isNumber } == true
    }

    func channelInactive(context: ChannelHandlerContext) {
        for id in heartbeatBrokers { dispatcher.heartbeatConnectionClosed(brokerId: id) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.warning("closing connection", metadata: ["client": "\(remote)", "listener": "\(listenerName)", "error": "\(error)"])
        context.close(promise: nil)
    }
}

struct SpliceError: Error, CustomStringConvertible {
    var description: String
}
