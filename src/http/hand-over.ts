import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Server, Socket } from 'node:net'
import type * as Handoff from './handoff.js'
import type { HandOffTarget } from './handoff-targets.js'

/** Connections handed over and not answered yet, at most: each holds an fd until its answer. */
const MAX_IN_FLIGHT = 256

/**
 * Hands a server's idle keep-alive HTTP/1 connections to a target, one by
 * one as each is idle (at once, or right after its response has gone out),
 * never more than MAX_IN_FLIGHT unanswered. A connection stays this
 * process's until the target's answer: taken back (and then left to the
 * caller's close, `closeInstead`) if the answer is no, or if it is never
 * idle for `idleGrace` (a pipelining client). drain() uses it while the
 * server closes; park() while it only stops accepting.
 */
export class HandOver {
  /** Connections handed over and not answered yet. */
  private readonly sending = new Set<Socket>()
  /** Connections that could not be handed over: the caller closes them as before. */
  readonly closeInstead = new Set<Socket>()
  /** Since when each connection has been tried and found busy. */
  private readonly busySince = new Map<Socket, number>()
  private handoff?: typeof Handoff
  private refilling?: NodeJS.Immediate
  private stopped = false
  /** Connections the target took. */
  handedOver = 0

  constructor(
    private readonly target: HandOffTarget,
    private readonly idleGrace: number,
    /** Runs the caller's next sweep (when the module is loaded, and when room is free again). */
    private readonly sweepNow: () => void,
    /** Called if the module cannot be loaded: nothing is handed over then. */
    onUnavailable: (err: Error) => void,
  ) {
    // Loaded when a connection may move (import-graph.test.ts); the Upgrader
    // preloads it after ready(), so this usually resolves at once.
    import('./handoff.js').then((loaded) => {
      this.handoff = loaded
      if (!this.stopped) this.sweepNow()
    }, onUnavailable)
  }

  /** True while the connection is in flight to the target: the caller leaves it alone. */
  isSending(socket: Socket): boolean {
    return this.sending.has(socket)
  }

  /** Tries to hand `socket` over now; a busy one is tried again later, until idleGrace says to give up. */
  offer(socket: Socket, now: number): void {
    const handoff = this.handoff
    if (!handoff || this.stopped || socket.destroyed || this.sending.has(socket) || this.closeInstead.has(socket)) return
    // Bounded: each one in flight holds an fd; the next sweep or answer goes on.
    if (this.target.inFlight >= MAX_IN_FLIGHT) return
    const fd = handoff.detachIdle(socket)
    if (fd === undefined) {
      const since = this.busySince.get(socket)
      if (since === undefined) this.busySince.set(socket, now)
      else if (now - since >= this.idleGrace) this.closeInstead.add(socket)
      return
    }
    this.busySince.delete(socket)
    this.sending.add(socket)
    void this.target.send(fd).then((adopted) => {
      this.sending.delete(socket)
      if (adopted) {
        this.handedOver++
        handoff.releaseDetached(socket)
        this.refill()
      } else {
        handoff.reattach(socket)
        this.closeInstead.add(socket)
      }
    })
  }

  /**
   * A 'request' listener, prepended to the app's: the connection moves once
   * its response is out (the client is still waiting for it, so it has sent
   * nothing since: the moment a back-to-back client is idle). One that could
   * not move gets `Connection: close`, as without a target.
   */
  readonly afterResponse = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket
    if (this.closeInstead.has(socket)) {
      if (req.httpVersionMajor === 1 && !res.headersSent) res.setHeader('Connection', 'close')
      return
    }
    res.once('finish', () => this.offer(socket, Date.now()))
  }

  /** Listens on the server for responses that finish (where the app listens for requests at all). */
  attach(server: Server): void {
    if (server.listenerCount('request') > 0) server.prependListener('request', this.afterResponse)
  }

  stop(server: Server): void {
    this.stopped = true
    server.removeListener('request', this.afterResponse)
    if (this.refilling) clearImmediate(this.refilling)
  }

  /** Half the room in flight is free again: the next batch goes now, not at the next sweep. */
  private refill(): void {
    if (this.stopped || this.refilling || this.target.inFlight > MAX_IN_FLIGHT / 2) return
    this.refilling = setImmediate(() => {
      this.refilling = undefined
      this.sweepNow()
    })
  }
}
