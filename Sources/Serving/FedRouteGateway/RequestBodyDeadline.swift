import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Holds every request to a deadline for its body: a body not received in full within `timeout` of the
/// request's head gets a 408 in OpenAI's error shape, and the connection (for HTTP/2, the stream) is closed,
/// so a client that trickles its body cannot hold a connection and a request task for ever.
///
/// A channel handler in each connection's pipeline (after HTTP decoding, for HTTP/1.1 connections and
/// HTTP/2 streams alike): the timer is armed on the connection's own event loop when the head arrives and
/// cancelled when the end does, both on the event loop's own thread. A request already answered before its
/// body ended (a 401 for a missing key is sent before the body is read) gets no second response: its
/// connection is only closed. Before, the route read the body in a
/// task group racing a sleeping child task: two child tasks, a timer and a cancellation per request, about
/// 0.1 ms of the gateway's latency on 2 cores.
final class RequestBodyDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// Whether the current request's response has been written in full.
    private var responded = false

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            responded = false
            timer?.cancel()
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            timer = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = loopBound.value
                handler.expire(context: context)
            }
        case .end:
            timer?.cancel()
            timer = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { responded = true }
        context.write(data, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    private func expire(context: ChannelHandlerContext) {
        guard timer != nil else { return }
        timer = nil
        guard !responded else {
            context.close(promise: nil)
            return
        }
        let seconds = Double(timeout.nanoseconds) / 1e9
        let error = APIError(status: 408, message: "the request body did not arrive within \(seconds) s", code: "request_timeout")
        let body = ByteBuffer(bytes: error.body.encoded())
        var head = HTTPResponse(status: .requestTimeout)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.readableBytes)
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
