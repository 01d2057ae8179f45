import { subscribe } from 'node:diagnostics_channel'
import type { Http2Session, ServerHttp2Stream } from 'node:http2'
import type { Server, Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'

/**
 * The open connections of one server. Node keeps no public list of them, and
 * drain() must reach connections accepted long before it is called: an idle
 * keep-alive socket or an HTTP/2 session sends no event that would reveal it.
 */
export class ServerConnections {
  /** Every accepted TCP or unix connection: the unit drain() counts. */
  readonly accepted = new Set<Socket>()
  /** HTTPS and HTTP/2-over-TLS connections once their handshake is done. */
  readonly secure = new Set<TLSSocket>()
  readonly sessions = new Set<Http2Session>()
  /** Open HTTP/2 streams of those sessions: a server-sent event stream is long-lived (long-lived.ts). */
  readonly streams = new Set<ServerHttp2Stream>()

  /** Accepted sockets arrive through the net.server.socket channel (below), once each. */
  constructor(server: Server) {
    if (isTlsServer(server)) {
      server.on('secureConnection', (socket: TLSSocket) => {
        this.secure.add(socket)
        socket.once('close', () => this.secure.delete(socket))
      })
    }
    server.on('session', (session: Http2Session) => {
      this.sessions.add(session)
      session.once('close', () => this.sessions.delete(session))
      // A listener of the session's own, not the server's: the server's
      // 'request' (compatibility API) and 'stream' dispatch stay as they are.
      session.on('stream', (stream: ServerHttp2Stream) => {
        this.streams.add(stream)
        stream.once('close', () => this.streams.delete(stream))
      })
    })
  }

  accept(socket: Socket): void {
    if (socket.destroyed) return
    this.accepted.add(socket)
    socket.once('close', () => this.accepted.delete(socket))
  }
}

/**
 * https, tls and secure http2 servers. Told apart by shape, because loading
 * node:tls just for an instanceof check would cost every process that
 * imports handover about 10 ms of start-up, on the upgrade's critical path.
 */
export function isTlsServer(server: Server): boolean {
  return typeof (server as Server & { setSecureContext?: unknown }).setSecureContext === 'function'
}

const tracked = new WeakMap<Server, ServerConnections>()

export function connectionsOf(server: Server): ServerConnections {
  let connections = tracked.get(server)
  if (!connections) {
    connections = new ServerConnections(server)
    tracked.set(server, connections)
  }
  return connections
}

// Both channels are public diagnostics_channel names. The first sees every
// server as it starts listening, so that the TLS and HTTP/2 listeners above
// are in place before its first connection. The second reports every
// accepted socket, also of servers that listened before handover was
// imported; it fires right after the server's own 'connection' event.
subscribe('tracing:net.server.listen:asyncStart', (message) => {
  connectionsOf((message as { server: Server }).server)
})
subscribe('net.server.socket', (message) => {
  const socket = (message as { socket: Socket & { server?: Server } }).socket
  if (socket.server) connectionsOf(socket.server).accept(socket)
})

/**
 * Node's HTTP/1 server gives each connection a parser, and drops it when the
 * connection is upgraded (WebSocket): such a socket is not an HTTP/1 one any more.
 */
export function speaksHttp1(socket: Socket): boolean {
  return (socket as Socket & { parser?: unknown }).parser != null
}
