import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `watch --metrics-listen HOST:PORT`: `GET /metrics` (the watcher's `RunMetrics`, Prometheus text
/// format) and `GET /healthz` (200 while the watch loop goes round and its folder can be read;
/// 503 with the reason otherwise), over HTTP/1.1 (SwiftNIO).
public final class MetricsServer: Sendable {
    /// Whether the watcher is well: nil, or why not.
    public typealias Health = @Sendable () -> String?

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    public let port: Int

    public init(host: String, port: Int, metrics: RunMetrics, health: @escaping Health) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(metrics: metrics, health: health))
                }
            }
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw ImportError(.usage, "--metrics-listen: cannot listen on \(host):\(port): \(error)")
        }
        self.port = channel.localAddress?.port ?? port
    }

    /// `HOST:PORT` (`[::1]:9108` for IPv6), or nil.
    public static func address(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Answers one request at a time.
private final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: RunMetrics
    private let health: MetricsServer.Health
    private var head: HTTPRequestHead?

    init(metrics: RunMetrics, health: @escaping MetricsServer.Health) {
        self.metrics = metrics
        self.health = health
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let status: HTTPResponseStatus
            let body: String
            var type = "text/plain; charset=utf-8"
            switch (head.method, path) {
            case (.GET, "/metrics"), (.HEAD, "/metrics"):
                status = .ok
                body = metrics.text
                type = "text/plain; version=0.0.4; charset=utf-8"
            case (.GET, "/healthz"), (.HEAD, "/healthz"):
                if let problem = health() {
                    status = .serviceUnavailable
                    body = problem + "\n"
                } else {
                    status = .ok
                    body = "ok\n"
                }
            case (_, "/metrics"), (_, "/healthz"):
                status = .methodNotAllowed
                body = "GET only\n"
            default:
                status = .notFound
                body = "/metrics or /healthz\n"
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                promise: nil)
            if head.method != .HEAD {
                context.write(
                    wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !head.isKeepAlive {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                done.whenComplete { _ in bound.value.close(promise: nil) }
            }
        }
    }
}
