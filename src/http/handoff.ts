import type { Server as HttpServer } from 'node:http'
import { Server, Socket } from 'node:net'
import { HandoverError } from '../core/errors.js'
import { connectionsOf, isTlsServer } from './connections.js'

/*
 * Moving an idle HTTP/1 keep-alive connection to another process. HTTP/1 has
 * no GOAWAY, so closing an idle connection races the client's next request;
 * handing its fd to the next generation does not. The old process detaches
 * the connection (stops every reader of it in one synchronous step, so it
 * never reads another byte), sends the fd, then releases its handle; the new
 * process adopts the fd into its own server.
 *
 * Node offers no public way to do either, so this reads and sets a few
 * internals, each named where it is used. They have not changed from Node 20
 * to 26 (docs: /work/shared/notes/connection-handoff.md); a missing one makes
 * detachIdle() decline (undefined), never guess.
 */

/** The internals of an accepted socket that an HTTP/1 server (lib/_http_server.js) and lib/net.js set. */
interface HttpSocket extends Socket {
  /** The response being written; Node's own closeIdleConnections() reads it. */
  _httpMessage?: unknown
  /** The HTTP parser; null once the connection is upgraded, absent for TLS's raw socket, http2 and net servers. */
  parser?: HttpParser | null
  /** The server's own field, as lib/net.js's onconnection sets it. */
  server?: Server | null
  /** lib/net.js: Socket#_destroy decrements _server._connections and calls _server._emitCloseIfDrained(). */
  _server?: Server | null
  _handle?: StreamHandle | null
  /** TLSSocket */
  encrypted?: boolean
}

/** A TCP or Pipe handle (lib/net.js `_handle`). */
interface StreamHandle {
  /** The OS fd; -1 when there is none. */
  fd?: number
  /** net.js's own flag: whether it asked libuv to read. */
  reading?: boolean
  readStart(): number
  readStop(): number
  /** Bytes still queued in libuv for writing. */
  writeQueueSize?: number
}

/** node_http_parser.cc's Parser, as lib/_http_server.js uses it. */
interface HttpParser {
  socket?: unknown
  /** Set by connectionListenerInternal when the parser reads the handle in C++ (parser.consume). */
  _consumed?: boolean
  /** lib/_http_server.js's parserOnIncoming, bound to this connection: called with each request's headers. */
  onIncoming?: ((...args: unknown[]) => unknown) | null
  consume(handle: unknown): void
  unconsume(): void
}

/** The C++ ConnectionsList that lib/_http_server.js keeps at server[kConnections]. */
interface ConnectionsList {
  /**
   * The parsers that have begun a message and not completed it, or have not
   * completed a first one (last_message_start_ != 0), less those the
   * server's request timeout check has just expired (which it destroys, or
   * hands to the app's 'clientError' listener, whose job that then is).
   */
  active(): HttpParser[]
}

interface Detached {
  parser: HttpParser
  handle: StreamHandle
  consumed: boolean
  reading: boolean
  /** The socket's own write and end before detachIdle() shadowed them (an APM's wrapper, say). */
  own: Map<'write' | 'end', PropertyDescriptor | undefined>
}

const detached = new WeakMap<Socket, Detached>()

/**
 * A readStart for a detached handle: nothing in this process may read the
 * connection again (a stray socket.resume(), the stream machinery's own
 * read()). Reports success, so Node does not destroy the socket over it.
 */
function noRead(): number {
  return 0
}

/**
 * If `socket`, accepted by a plain HTTP/1 server (http.createServer; not TLS,
 * not upgraded, not HTTP/2), is idle between requests, stops every reader of
 * it and returns its fd; otherwise returns undefined and changes nothing.
 *
 * Idle: no response in flight or queued, nothing buffered in the stream either
 * way, and the parser between messages: it completed one and has not seen a
 * byte of the next (or the connection has not sent a byte yet). Deciding and
 * stopping happen in one synchronous step: libuv reads only in its poll
 * phase, so the next byte the client sends stays in the kernel's buffer for
 * the process that adopts the fd.
 *
 * The fd stays this process's until releaseDetached() (after it was sent) or
 * reattach() (if it could not be).
 */
export function detachIdle(socket: Socket): number | undefined {
  if (!(socket instanceof Socket)) throw new HandoverError('ERR_INVALID_ARGUMENT', 'detachIdle() needs a net.Socket')
  const s = socket as HttpSocket
  if (detached.has(s) || s.encrypted === true || s.destroyed || s.connecting) return undefined
  // A FIN read, or an end() under way: the connection is closing, not idle.
  if (!s.readable || !s.writable || s.readableEnded || s.writableEnded) return undefined
  const handle = s._handle
  const parser = s.parser
  const server = s.server
  if (!handle || typeof handle.fd !== 'number' || handle.fd < 0 || typeof handle.readStop !== 'function') return undefined
  // The parser lib/_http_server.js gave this socket; an upgrade (WebSocket,
  // CONNECT) drops it, TLS's raw socket and HTTP/2 never had one.
  if (!parser || parser.socket !== s || !server || isTlsServer(server)) return undefined
  if (s._httpMessage != null) return undefined
  // Bytes this process read and nobody parsed, or bytes not yet written out
  // (the stream's buffer includes a write libuv still holds).
  if (s.readableLength > 0 || s.writableLength > 0 || (handle.writeQueueSize ?? 0) > 0) return undefined
  if (s.bytesRead !== 0 && !betweenMessages(server, parser)) return undefined

  const reading = handle.reading === true
  const consumed = parser._consumed === true
  // The parser reads the handle in C++ (parser.consume() in
  // connectionListenerInternal): take it off the handle's listeners.
  if (consumed) parser.unconsume()
  // Stop libuv reading the fd, and keep anything here from starting it again.
  handle.readStop()
  handle.reading = false
  Object.defineProperty(handle, 'readStart', { value: noRead, configurable: true, writable: true })
  // Nor may it write a byte or a FIN. The parser stays in the server's
  // ConnectionsList (parser.remove() leaves it unable to parse another
  // request on Node 24 and 26, which reattach() needs), so the server's
  // headersTimeout check still sees a fresh connection there, and would
  // write a 408 to it (socketOnError); written to a socket another process
  // now serves, it would reach that process's client.
  const own = new Map<'write' | 'end', PropertyDescriptor | undefined>()
  for (const name of ['write', 'end'] as const) {
    own.set(name, Object.getOwnPropertyDescriptor(s, name))
    Object.defineProperty(s, name, { value: name === 'write' ? dropWrite : dropEnd, configurable: true, writable: true })
  }
  detached.set(s, { parser, handle, consumed, reading, own })
  return handle.fd
}

/** socket.write on a detached socket: nothing goes out; reported as written. */
function dropWrite(this: Socket, ...args: unknown[]): boolean {
  const cb = args.find((arg) => typeof arg === 'function') as ((err?: Error | null) => void) | undefined
  if (cb) process.nextTick(cb)
  return true
}

/** socket.end on a detached socket: no FIN (shutdown() acts on the socket every process shares). */
function dropEnd(this: Socket): Socket {
  return this
}

/**
 * After the fd went to the other process: drops this process's handle. The
 * kernel sends a FIN (or, with unread data, an RST) only when the last
 * reference to a socket closes, and the other process (or the message still
 * in flight to it) holds one; so this closes the fd and never calls
 * shutdown() or resetAndDestroy(). destroy() is what keeps Node's
 * bookkeeping right: the server's connection count and its close() callback,
 * drain()'s tracking, the parser's release.
 */
export function releaseDetached(socket: Socket): void {
  if (!detached.delete(socket)) throw new HandoverError('ERR_INVALID_ARGUMENT', 'releaseDetached() needs a socket detachIdle() detached')
  socket.destroy()
}

/**
 * Undoes detachIdle() when the fd could not be sent (the other process has
 * gone): this process reads and serves the connection again.
 */
export function reattach(socket: Socket): void {
  const d = detached.get(socket)
  if (!d) throw new HandoverError('ERR_INVALID_ARGUMENT', 'reattach() needs a socket detachIdle() detached')
  detached.delete(socket)
  if (socket.destroyed) return
  delete (d.handle as Partial<StreamHandle>).readStart
  for (const [name, descriptor] of d.own) {
    if (descriptor) Object.defineProperty(socket, name, descriptor)
    else delete (socket as Partial<Socket>)[name]
  }
  if (d.consumed) d.parser.consume(d.handle)
  if (d.reading) {
    d.handle.reading = true
    d.handle.readStart()
  }
}

/** Whether `socket` is detached and neither released nor reattached. */
export function isDetached(socket: Socket): boolean {
  return detached.has(socket)
}

/**
 * The parser completed a message and has not begun another. Node 20 has
 * parser.duration() for this, Node 22 and later do not; the server's
 * ConnectionsList (the C++ list behind closeIdleConnections()) answers it on
 * every version: such a parser is not among its active() ones. active()
 * walks only the connections with a request under way (and fresh ones), not
 * every connection as idle() does: drain() asks again after each response
 * it hands over, so with idle() a drain of N idle connections and R
 * requests cost N x R steps, and blocked the old process's loop for seconds
 * (keepalive-10k.test.ts). The answer is kept for the rest of this
 * synchronous step: no byte is parsed before it ends.
 */
function betweenMessages(server: Server, parser: HttpParser): boolean {
  const list = connectionsList(server)
  if (!list) return false
  let active = activeNow.get(list)
  if (!active) {
    active = new Set(list.active())
    activeNow.set(list, active)
    if (!clearing) {
      clearing = true
      queueMicrotask(() => {
        activeNow = new WeakMap()
        clearing = false
      })
    }
  }
  return !active.has(parser)
}

let activeNow = new WeakMap<ConnectionsList, Set<HttpParser>>()
let clearing = false

/** server[kConnections]: a symbol lib/_http_server.js does not export, found by its description. */
function connectionsList(server: Server): ConnectionsList | undefined {
  for (const symbol of Object.getOwnPropertySymbols(server)) {
    if (symbol.description !== 'http.server.connections') continue
    const list = (server as unknown as Record<symbol, Partial<ConnectionsList> | undefined>)[symbol]
    return typeof list?.active === 'function' ? (list as ConnectionsList) : undefined
  }
  return undefined
}

/** The net.Server fields onconnection (lib/net.js) reads and writes. */
interface NetServerInternals extends Server {
  /** The count behind getConnections(), close()'s callback and maxConnections. */
  _connections: number
  noDelay?: boolean
  keepAlive?: boolean
  /** In seconds (net.Server keeps it so). */
  keepAliveInitialDelay?: number
  highWaterMark?: number
  allowHalfOpen?: boolean
  pauseOnConnect?: boolean
}

/**
 * Makes `fd`, a connected TCP or unix stream socket another process detached
 * with detachIdle(), a connection of `server` (a listening http.Server), as if
 * the server had accepted it: the request already waiting in the kernel's
 * buffer is read and answered, keep-alive works, getConnections() counts it,
 * close() waits for it, drain() sees it. Returns the socket; undefined if the
 * server refused it the way it refuses an accept (maxConnections), which
 * closes the fd. On a throw the fd is still the caller's.
 */
export function adoptConnection(server: HttpServer, fd: number): Socket | undefined {
  const http = process.getBuiltinModule('node:http')
  if (!(server instanceof http.Server) || isTlsServer(server)) {
    throw new HandoverError('ERR_INVALID_ARGUMENT', 'adoptConnection() needs a plain HTTP/1 server (http.createServer)')
  }
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new HandoverError('ERR_INVALID_ARGUMENT', `adoptConnection() needs an fd, not ${String(fd)}`)
  }
  // A closed server would keep its close() callback waiting on a connection it never accepted.
  if (!server.listening) throw new HandoverError('ERR_INVALID_ARGUMENT', 'adoptConnection() needs a listening server')
  const net = server as unknown as NetServerInternals
  let socket: HttpSocket
  try {
    // The options lib/net.js's onconnection gives an accepted socket.
    socket = new Socket({
      fd,
      readable: true,
      writable: true,
      allowHalfOpen: net.allowHalfOpen,
      pauseOnCreate: net.pauseOnConnect,
      readableHighWaterMark: net.highWaterMark,
      writableHighWaterMark: net.highWaterMark,
    } as ConstructorParameters<typeof Socket>[0]) as HttpSocket
  } catch (err) {
    // ERR_INVALID_FD_TYPE: not a socket; EBADF: not open.
    throw new HandoverError('ERR_INVALID_ARGUMENT', `fd ${fd} is not a connected stream socket`, { cause: err })
  }
  // net.Server's maxConnections, as onconnection applies it (Node 22 and later:
  // 0 refuses all; Node 20 read 0 as no limit).
  if (typeof server.maxConnections === 'number' && net._connections >= server.maxConnections) {
    server.emit('drop', { localAddress: socket.localAddress, localPort: socket.localPort, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort })
    socket.destroy()
    return undefined
  }
  // Socket options live on the socket: the old server's settings came with
  // the fd, and this server's apply, as they would at its accept.
  if (net.noDelay) socket.setNoDelay(true)
  if (net.keepAlive) socket.setKeepAlive(true, (net.keepAliveInitialDelay ?? 0) * 1000)
  // What onconnection sets. _connections: Socket#_destroy decrements it
  // through socket._server and calls _emitCloseIfDrained(), so close() and
  // getConnections() count this connection like an accepted one.
  net._connections++
  socket.server = server
  socket._server = server
  // The documented way to hand a server a connection: http.Server's
  // connectionListener gives it a parser, consumes the handle, and the
  // request waiting in the kernel is read in the next poll phase.
  server.emit('connection', socket)
  keepAliveUntilRequest(server, socket)
  // drain() learns of accepted sockets from the net.server.socket channel,
  // which only an accept publishes.
  connectionsOf(server).accept(socket)
  return socket
}

/**
 * An idle keep-alive connection is closed after the server's keepAliveTimeout
 * (plus keepAliveTimeoutBuffer): Node arms that timer when a response
 * finishes (resOnFinish), and disarms it when the next request begins
 * (resetSocketTimeout). An adopted connection is between requests but has
 * had no response here, so nothing armed it: it would stay open until the
 * server's headersTimeout treats it as a fresh connection that never sent a
 * request (a 408, or the app's 'clientError'). So it is armed here, and
 * disarmed at its next request, which Node's own reset would not do (its
 * flag for it lives in a closure), or the timer would cut a slow request.
 * Where headersTimeout is shorter than keepAliveTimeout, that check still
 * comes first for an adopted connection, as for a fresh one.
 */
function keepAliveUntilRequest(server: HttpServer, socket: HttpSocket): void {
  const parser = socket.parser
  const onIncoming = parser?.onIncoming
  if (!server.keepAliveTimeout || !parser || typeof onIncoming !== 'function' || socket.destroyed) return
  // Node 22 and later read server.keepAliveTimeoutBuffer; Node 20 adds a fixed 1000 ms.
  const buffer = (server as HttpServer & { keepAliveTimeoutBuffer?: number }).keepAliveTimeoutBuffer
  socket.setTimeout(server.keepAliveTimeout + (Number.isFinite(buffer) && (buffer as number) >= 0 ? (buffer as number) : 1_000))
  parser.onIncoming = function (this: unknown, ...args: unknown[]): unknown {
    parser.onIncoming = onIncoming
    socket.setTimeout(server.timeout || 0)
    return onIncoming.apply(this, args)
  }
}
