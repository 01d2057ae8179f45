import type { Http2Session } from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Server, type Socket } from 'node:net'
import { connectionsOf, isTlsServer, speaksHttp1, type ServerConnections } from './connections.js'
import { announceDrain, hooksOwnLongLived } from './drain-hooks.js'
import { HandOver } from './hand-over.js'
import { handOffTargetFor } from './handoff-targets.js'
import type { LongLived } from './long-lived.js'
import { HandoverError } from '../core/errors.js'
import { resolveDrainOptions, type DrainOptions, type DrainSettings } from '../core/options.js'

export type { DrainOptions } from '../core/options.js'
export { maxLeaveWindow } from '../core/options.js'

export interface DrainResult {
  /** Connections that ended before the timeout: finished, or closed between requests. */
  graceful: number
  /** Connections still open at the timeout (or abort), which were destroyed. */
  forced: number
  /** Only with a `leaveWindow`: the long-lived connections asked to leave within it. */
  askedToLeave?: number
  /**
   * Only where connections could be handed over: the idle keep-alive
   * connections the process that serves next took (also counted in
   * `graceful`).
   */
  handedOver?: number
}


const draining = new WeakMap<Server, Promise<DrainResult>>()

/**
 * Stops a server accepting and lets its connections finish without losing a
 * request. Works on net, http, https and http2 servers; calling it again for
 * the same server returns the drain already under way.
 */
export function drain(server: Server, options: DrainOptions = {}): Promise<DrainResult> {
  if (!(server instanceof Server)) {
    return Promise.reject(new HandoverError('ERR_INVALID_ARGUMENT', 'drain() needs a net, http, https or http2 server'))
  }
  const under = draining.get(server)
  if (under) return under
  let settings
  try {
    settings = resolveDrainOptions(options)
  } catch (err) {
    return Promise.reject(err)
  }
  // The app's onDrain() hooks end long-lived connections while the drain waits for them.
  void announceDrain({ leaveWindow: settings.leaveWindow ?? 0 })
  const promise = new Drain(server, settings).run()
  draining.set(server, promise)
  return promise
}

/** The HTTP/2 "graceful shutdown" GOAWAY (RFC 9113, 6.8): no stream is refused yet. */
const ANY_STREAM = 2 ** 31 - 1
/** http2.constants.NGHTTP2_NO_ERROR, without loading node:http2 at start-up. */
const NO_ERROR = 0

class Drain {
  private readonly connections: ServerConnections
  /** Every connection this drain answers for, open or not. */
  private readonly counted = new Set<Socket>()
  /** Since when each HTTP/1 socket has been quiet, and how many bytes it had read then. */
  private readonly quiet = new Map<Socket, { since: number; bytesRead: number }>()
  private readonly noticed = new Map<Http2Session, number>()
  /** Asks long-lived connections to leave over the window, if there is one and no onDrain() hook owns them. */
  private leaving?: LongLived
  /** Hands idle HTTP/1 connections over, where a target takes them (handoff-targets.ts). */
  private handOver?: HandOver
  private poll?: NodeJS.Timeout
  private deadline?: NodeJS.Timeout
  private finish!: (result: DrainResult) => void
  private forced = 0
  private done = false

  constructor(
    private readonly server: Server,
    private readonly settings: DrainSettings,
  ) {
    this.connections = connectionsOf(server)
    // Looked up before close(): the listening handle tells which socket the server serves.
    const target = settings.handOff && !isTlsServer(server) ? handOffTargetFor(server) : undefined
    if (target) {
      this.handOver = new HandOver(target, settings.idleGrace, () => this.sweep(), (err) => {
        process.stderr.write(`handover: idle connections are closed, not handed over: ${err.message}\n`)
        this.handOver = undefined
      })
    }
  }

  run(): Promise<DrainResult> {
    const result = new Promise<DrainResult>((resolve) => (this.finish = resolve))
    const { signal, timeout, idleGrace, leaveWindow } = this.settings
    const interval = Math.min(100, Math.max(10, idleGrace / 5))
    if (leaveWindow !== undefined && !hooksOwnLongLived()) this.startLeaving(leaveWindow, interval)
    // Only where the application listens: on an http2 server, a first
    // 'request' listener would switch on the compatibility API for every stream.
    if (this.handOver) this.handOver.attach(this.server)
    else if (this.server.listenerCount('request') > 0) this.server.prependListener('request', this.announceClose)
    stopAccepting(this.server, () => this.end())
    signal?.addEventListener('abort', this.force, { once: true })
    this.deadline = setTimeout(this.force, timeout)
    this.poll = setInterval(() => this.sweep(), interval)
    this.sweep()
    if (signal?.aborted) this.force()
    return result
  }

  /** Loaded on demand (import-graph.test.ts); the window counts from now, the first sweep follows the load. */
  private startLeaving(window: number, interval: number): void {
    const start = Date.now()
    import('./long-lived.js').then(({ LongLived }) => {
      if (this.done) return
      this.leaving = new LongLived(this.server, this.connections, window, this.settings.idleGrace, start, interval, isTlsServer(this.server))
      this.sweep()
    }, (err: Error) => process.stderr.write(`handover: long-lived connections are left to the drain's timeout: ${err.message}\n`))
  }

  /** Runs before the application's own handler, so the header is still unsent. */
  private readonly announceClose = (req: IncomingMessage, res: ServerResponse): void => {
    // HTTP/2 requests through the compatibility API end with the session's GOAWAY.
    if (req.httpVersionMajor === 1 && !res.headersSent) res.setHeader('Connection', 'close')
  }

  private sweep(): void {
    if (this.done) return
    const now = Date.now()
    for (const socket of this.connections.accepted) this.counted.add(socket)
    this.leaving?.sweep(now)
    for (const session of this.connections.sessions) this.endSession(session, now)
    const httpSockets = isTlsServer(this.server) ? this.connections.secure : this.connections.accepted
    const handOver = this.handOver
    for (const socket of httpSockets) {
      if (!speaksHttp1(socket) || handOver?.isSending(socket)) continue
      if (handOver && !handOver.closeInstead.has(socket)) handOver.offer(socket, now)
      else this.closeIfIdle(socket, now)
    }
  }

  /** Announces the shutdown at once, and closes the session after the grace. */
  private endSession(session: Http2Session, now: number): void {
    if (session.closed || session.destroyed) return
    const noticedAt = this.noticed.get(session)
    if (noticedAt === undefined) {
      this.noticed.set(session, now)
      session.goaway(NO_ERROR, ANY_STREAM)
    } else if (now - noticedAt >= this.settings.idleGrace) {
      // A GOAWAY naming the last stream it took; open streams still finish.
      session.close()
    }
  }

  /** Closes an HTTP/1 connection that has neither a request nor a byte in flight for the grace. */
  private closeIfIdle(socket: Socket, now: number): void {
    if (socket.destroyed) return
    const seen = this.quiet.get(socket)
    const bytesRead = socket.bytesRead
    if (hasResponseInFlight(socket) || !seen || seen.bytesRead !== bytesRead) {
      // The grace counts from the last sign of life, or from the first look.
      this.quiet.set(socket, { since: now, bytesRead })
      return
    }
    if (now - seen.since >= this.settings.idleGrace) socket.destroy()
  }

  private readonly force = (): void => {
    if (this.done) return
    this.sweep()
    const open = [...this.counted].filter((socket) => !socket.destroyed)
    this.forced = open.length
    for (const session of this.connections.sessions) session.destroy()
    for (const socket of this.connections.secure) socket.destroy()
    for (const socket of this.connections.accepted) socket.destroy()
    // Connections accepted before handover was loaded are in Node's own list only.
    const http = this.server as Server & { closeAllConnections?: () => void }
    http.closeAllConnections?.()
    this.end()
  }

  private end(): void {
    if (this.done) return
    this.done = true
    clearInterval(this.poll)
    clearTimeout(this.deadline)
    this.handOver?.stop(this.server)
    this.settings.signal?.removeEventListener('abort', this.force)
    this.server.removeListener('request', this.announceClose)
    for (const socket of this.connections.accepted) this.counted.add(socket)
    const result: DrainResult = { graceful: this.counted.size - this.forced, forced: this.forced }
    if (this.settings.leaveWindow !== undefined) result.askedToLeave = this.leaving?.asked ?? 0
    if (this.handOver) result.handedOver = this.handOver.handedOver
    this.finish(result)
  }
}

/**
 * Stops accepting. http.Server#close() would first destroy every idle
 * connection, counting one that was just accepted and has not sent its
 * request yet as idle: its client would see ECONNRESET. So that step is
 * skipped, and drain() closes idle connections itself, after their grace.
 * The callback runs once the server has no connection left.
 */
function stopAccepting(server: Server, drained: () => void): void {
  const own = Object.getOwnPropertyDescriptor(server, 'closeIdleConnections')
  const http = server as Server & { closeIdleConnections?: () => void }
  if (typeof http.closeIdleConnections === 'function') {
    Object.defineProperty(server, 'closeIdleConnections', { value: () => {}, configurable: true, writable: true })
  }
  try {
    // Not listening any more is fine: the callback still waits for the connections.
    server.close(() => drained())
  } finally {
    if (own) Object.defineProperty(server, 'closeIdleConnections', own)
    else delete http.closeIdleConnections
  }
}

/** The response being written on the socket; Node's closeIdleConnections() reads the same field. */
function hasResponseInFlight(socket: Socket): boolean {
  return (socket as Socket & { _httpMessage?: unknown })._httpMessage != null
}
