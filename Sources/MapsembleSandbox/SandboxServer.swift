import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The sandbox over real HTTP/1.1 (SwiftNIO), with keep-alive, on loopback by default.
public final class SandboxServer: Sendable {
    public let store: SandboxStore
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// The port it listens on (useful after binding port 0).
    public let port: Int
    public let host: String

    /// Starts listening; `port` 0 picks a free port.
    public init(config: SandboxConfig, host: String = "127.0.0.1", port: Int = 0) async throws {
        let store = SandboxStore(config: config)
        self.store = store
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(SandboxHTTPHandler(store: store))
                }
            }
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        self.host = host
        self.port = channel.localAddress?.port ?? port
    }

    /// The base URL clients use.
    public var url: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// Stops listening and closes every connection.
    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Collects one request at a time and answers it from the store; applies delays and drops.
final class SandboxHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let store: SandboxStore
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    /// When this connection was opened (`SandboxRequest.connected`).
    private var connected = 0.0
    /// While a request's body is read slowly: the pause between reads, in milliseconds.
    private var slowPause: Int?

    init(store: SandboxStore) {
        self.store = store
    }

    func channelActive(context: ChannelHandlerContext) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        connected = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = context.channel.allocator.buffer(capacity: 0)
            if let pause = store.slowRead(method: head.method.rawValue) {
                // Read 4 kB at a time, only when asked (channelReadComplete asks after a pause).
                slowPause = pause
                try? context.channel.syncOptions?.setOption(
                    .recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
                try? context.channel.syncOptions?.setOption(.maxMessagesPerRead, value: 1)
                try? context.channel.syncOptions?.setOption(.autoRead, value: false)
            }
        case .body(var chunk):
            body?.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            if slowPause != nil {
                slowPause = nil
                try? context.channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator())
                try? context.channel.syncOptions?.setOption(.maxMessagesPerRead, value: 4)
                try? context.channel.syncOptions?.setOption(.autoRead, value: true)
            }
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            let bytes = body.map { Array($0.readableBytesView) } ?? []
            body = nil
            var request = SandboxRequest(method: head.method.rawValue, target: head.uri, headers: headers, body: bytes)
            request.connected = connected
            let reply = store.handle(request)
            let keepAlive = head.isKeepAlive
            let version = head.version
            if reply.delaySeconds > 0 {
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .milliseconds(Int64(reply.delaySeconds * 1000))) {
                    let (handler, context) = bound.value
                    handler.send(reply, keepAlive: keepAlive, version: version, context: context)
                }
            } else {
                send(reply, keepAlive: keepAlive, version: version, context: context)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let pause = slowPause {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(pause))) { bound.value.read() }
        }
        context.fireChannelReadComplete()
    }

    private func send(_ reply: SandboxReply, keepAlive: Bool, version: HTTPVersion, context: ChannelHandlerContext) {
        if reply.drop {
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders()
        for (name, value) in reply.headers { headers.add(name: name, value: value) }
        headers.add(name: "Content-Length", value: String(reply.body.count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(
            version: version, status: HTTPResponseStatus(statusCode: reply.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !reply.body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: reply.body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}
