import type { ServerResponse } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import type { Server, Socket } from 'node:net'
// Types only: a runtime import of connections.js would split it into a chunk of its own (import-graph.test.ts).
import type { ServerConnections } from './connections.js'

/**
 * Long-lived connections (WebSockets and other upgraded HTTP/1 connections,
 * server-sent event streams over HTTP/1 and HTTP/2, the connections of a
 * plain `net` server such as an MQTT broker) never end by themselves, so a
 * drain would wait for them until its deadline and then cut them all at
 * once, and every client would reconnect in the same second.
 *
 * With a leave window, each one gets its own moment in the window, spread
 * evenly with some jitter, and at that moment it is asked to leave in the
 * way its protocol understands: a close frame with 1012 ("service restart")
 * from the WebSocket library's own object, the end of the event stream
 * after a `retry:` hint, an end of the stream (FIN) for a connection whose
 * protocol handover does not speak. Short HTTP requests are not touched.
 *
 * drain() loads this module only when it has a window to apply, so that no
 * generation pays for it at start-up.
 */

/** RFC 6455 close code 1012 (IANA registry): "service restart", reconnect. */
const SERVICE_RESTART = 1012
/**
 * Written before the end of an event stream: an EventSource reconnects after
 * this many ms. The leading newline ends a line the app left open, so the
 * field stands on a line of its own (an empty line dispatches nothing).
 */
const RETRY_HINT = '\nretry: 1000\n\n'
const EVENT_STREAM = /^content-type:[ \t]*text\/event-stream/im

/** What each connection kind does once its moment has come. */
interface Departure {
  /** When it is asked to leave (a Date.now() time). */
  at: number
  /** Gone, or closing by someone else's hand: forget it without asking. */
  gone(): boolean
  /** Asks it to leave; false to be called again at the next sweep (waiting for a quiet moment). */
  leave(now: number): boolean
}

type Candidate = Omit<Departure, 'at'>

/** What ws (8.x, also 7.x) keeps on the socket under a Symbol('websocket'); only these members are used. */
interface WebSocketLike {
  readonly readyState: number
  readonly _socket: Socket
  close(code: number, reason: string): void
}

/** What aedes keeps on the socket as `socket.client`; only these members are looked at. */
interface AedesClientLike {
  readonly conn: Socket
  readonly broker: object
  close(): void
}

export class LongLived {
  /** Connections asked to leave so far. */
  asked = 0
  private readonly seen = new WeakSet<object>()
  private readonly waiting = new Map<object, Departure>()
  private readonly ends: number
  private readonly http2: boolean
  /**
   * The schedule's own clock: moments up to it are due. It follows the real
   * one, but after a stall (a busy event loop, a long GC) it moves at most
   * two sweep intervals per sweep, so the departures that fell due meanwhile
   * go out at up to twice their planned rate instead of in one burst.
   */
  private cursor?: number
  private lastSweep?: number

  /**
   * @param window ms from `start` within which every moment falls
   * @param quiet ms a connection whose protocol handover does not speak must
   *   have sent and received nothing before its end (FIN), so that a
   *   request on it is not cut in the middle; at the window's end it is
   *   ended all the same
   * @param interval ms between sweeps, as the drain polls
   * @param tls whether the server is a TLS one (https, secure http2, tls): its connections are the secure sockets
   */
  constructor(
    server: Server,
    private readonly connections: ServerConnections,
    window: number,
    private readonly quiet: number,
    start: number,
    private readonly interval: number,
    private readonly tls: boolean,
  ) {
    this.ends = start + window
    this.http2 = typeof (server as Server & { updateSettings?: unknown }).updateSettings === 'function'
  }

  /**
   * Finds the connections that became long-lived since the last sweep and
   * gives them their moments, then asks those whose moment has come.
   */
  sweep(now: number): void {
    const found = this.discover()
    // Evenly spread over what is left of the window, each at a random point
    // of its own slot: no two share a moment, and no pattern repeats across
    // processes. Past the window, at once.
    const span = Math.max(0, this.ends - now)
    found.forEach(([key, candidate], i) => {
      this.waiting.set(key, { ...candidate, at: now + (span * (i + Math.random())) / found.length })
    })
    const step = now - (this.lastSweep ?? now)
    this.lastSweep = now
    this.cursor = Math.min(now, (this.cursor ?? now) + Math.min(step, 2 * this.interval))
    for (const [key, departure] of this.waiting) {
      if (departure.gone()) this.waiting.delete(key)
      else if (this.cursor >= departure.at && departure.leave(now)) {
        this.waiting.delete(key)
        this.asked++
      }
    }
    // Nothing left behind: the next stall is measured from here.
    if (this.waiting.size === 0) this.cursor = now
  }

  private discover(): Array<[object, Candidate]> {
    const found: Array<[object, Candidate]> = []
    const add = (key: object, candidate: Candidate | undefined): void => {
      if (!candidate || this.seen.has(key)) return
      this.seen.add(key)
      found.push([key, candidate])
    }
    const sockets = this.tls ? this.connections.secure : this.connections.accepted
    for (const socket of sockets) {
      if (socket.destroyed) continue
      if (hasParser(socket)) {
        // An HTTP/1 connection: long-lived only while it streams events.
        const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
        if (res && !this.seen.has(res) && isEventStream(res)) add(res, this.eventStream(res))
      } else if (!this.http2 || webSocketOf(socket)) {
        // Upgraded (WebSocket), or a plain net server's connection. On an
        // HTTP/2 server, a socket without a parser carries a session, whose
        // streams are looked at below.
        if (!this.seen.has(socket)) add(socket, this.connection(socket))
      }
    }
    if (this.http2) {
      for (const stream of this.connections.streams) {
        if (!this.seen.has(stream) && isEventStream2(stream)) add(stream, this.eventStream2(stream))
      }
    }
    return found
  }

  /** A WebSocket of a library recognised by its object, an MQTT connection of aedes, or anything else on a socket. */
  private connection(socket: Socket): Candidate {
    const whenQuiet = this.endWhenQuiet(socket)
    // ws attaches itself only once its handshake completes: looked for again until found.
    let ws = webSocketOf(socket)
    return {
      gone: () => socket.destroyed || socket.writableEnded || (ws !== undefined && ws.readyState > 1),
      leave: (now) => {
        ws ??= webSocketOf(socket)
        if (ws) {
          // ws writes the close frame after what it has queued, and ends the
          // socket once the client's close frame is back.
          ws.close(SERVICE_RESTART, 'service restart')
          return true
        }
        if (aedesClientOf(socket)) {
          // An MQTT connection: aedes writes each packet whole, so a FIN now
          // cuts none. Not aedes's own client.close(): it destroys the
          // socket, and with bytes still unread the kernel sends a reset
          // (ECONNRESET at 14 of 100 publishing mqtt.js clients, measured).
          // Once the client closes its side, aedes ends its session itself.
          guardAfterLeaving(socket)
          socket.end()
          return true
        }
        return whenQuiet(now)
      },
    }
  }

  /**
   * A FIN once the connection has been quiet for `quiet` ms (or the window
   * is over): handover does not know this protocol's messages, so it waits
   * for a moment between them, as a drain does for HTTP/1.
   */
  private endWhenQuiet(socket: Socket): (now: number) => boolean {
    let bytes = -1
    let since = 0
    return (now) => {
      const seen = socket.bytesRead + socket.bytesWritten
      if (seen !== bytes) {
        bytes = seen
        since = now
      }
      if (now - since < this.quiet && now < this.ends) return false
      guardAfterLeaving(socket)
      socket.end()
      return true
    }
  }

  /** An HTTP/1 response of `text/event-stream`. */
  private eventStream(res: ServerResponse): Candidate {
    return {
      gone: () => res.writableEnded || res.destroyed,
      leave: () => {
        guardAfterLeaving(res)
        res.write(RETRY_HINT)
        // The response said keep-alive; its socket closes once it is
        // written instead, so that the EventSource reconnects on a new
        // connection, to the new generation. _last is what Node's server
        // reads after the response (resOnFinish), Node 20 to 26.
        const own = res as ServerResponse & { _last?: boolean }
        if (typeof own._last === 'boolean') own._last = true
        // The terminating chunk: the EventSource sees a clean end, not an abort.
        res.end()
        return true
      },
    }
  }

  /** An HTTP/2 stream of `text/event-stream`, on the stream or the compatibility API. */
  private eventStream2(stream: ServerHttp2Stream): Candidate {
    return {
      gone: () => stream.destroyed || stream.closed || stream.writableEnded,
      leave: () => {
        guardAfterLeaving(stream)
        stream.write(RETRY_HINT)
        // END_STREAM; the session's own GOAWAY (drain.ts) closes the connection after it.
        stream.end()
        return true
      },
    }
  }
}

/** Node's HTTP/1 server gives each connection a parser and takes it away when the connection is upgraded. */
function hasParser(socket: Socket): boolean {
  return (socket as Socket & { parser?: unknown }).parser != null
}

function isEventStream(res: ServerResponse): boolean {
  if (!res.headersSent || res.writableEnded || res.destroyed) return false
  // writeHead(200, { ... }) alone leaves getHeader() empty: the header block that was sent tells.
  const sent = (res as ServerResponse & { _header?: unknown })._header
  return typeof sent === 'string' ? EVENT_STREAM.test(sent) : /^text\/event-stream/i.test(String(res.getHeader('content-type') ?? ''))
}

function isEventStream2(stream: ServerHttp2Stream): boolean {
  if (!stream.headersSent || stream.destroyed || stream.closed || stream.writableEnded) return false
  return /^text\/event-stream/i.test(String(stream.sentHeaders?.['content-type'] ?? ''))
}

/**
 * ws attaches its WebSocket to the socket under `Symbol('websocket')`
 * (lib/constants.js `kWebSocket`, the same from ws 7.0 to 8.23), and clears
 * it when the socket closes. Found by the symbol's description, since every
 * copy of ws in an app (socket.io's engine.io brings its own) has its own
 * symbol, and checked by shape: the object must point back to this socket.
 */
function webSocketOf(socket: Socket): WebSocketLike | undefined {
  for (const key of Object.getOwnPropertySymbols(socket)) {
    if (key.description !== 'websocket') continue
    const ws = (socket as unknown as Record<symbol, Partial<WebSocketLike> | undefined>)[key]
    if (ws && ws._socket === socket && typeof ws.close === 'function' && typeof ws.readyState === 'number') return ws as WebSocketLike
  }
  return undefined
}

/** aedes (0.x and 1.x) sets `conn.client` to its Client, whose `conn` is the socket and `broker` the Aedes instance. */
function aedesClientOf(socket: Socket): AedesClientLike | undefined {
  const client = (socket as Socket & { client?: Partial<AedesClientLike> }).client
  if (client && client.conn === socket && typeof client.close === 'function' && typeof client.broker === 'object') return client as AedesClientLike
  return undefined
}

/** What an app may still run into after handover ended its connection under it. */
const AFTER_LEAVING = new Set(['ERR_STREAM_WRITE_AFTER_END', 'ERR_STREAM_DESTROYED', 'EPIPE', 'ECONNRESET'])
const guarded = new WeakSet<object>()

/**
 * An app that writes to a response or socket after handover ended it (its
 * interval has not noticed yet) gets an 'error' event, which without a
 * listener would crash it: Node emits ERR_STREAM_WRITE_AFTER_END until the
 * response has finished. Those errors are ignored; any other one is thrown
 * as it would have been, unless the app listens for errors itself.
 */
function guardAfterLeaving(emitter: NodeJS.EventEmitter): void {
  if (guarded.has(emitter)) return
  guarded.add(emitter)
  const onError = (err: NodeJS.ErrnoException): void => {
    if (AFTER_LEAVING.has(err?.code ?? '')) return
    if (emitter.listenerCount('error') === 1) throw err
  }
  emitter.on('error', onError)
}
