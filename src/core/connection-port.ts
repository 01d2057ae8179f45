import { closeSync } from 'node:fs'
import type { Channel } from './channel.js'
import type { OsSocket } from './platform.js'
import type { Message } from './protocol.js'

/**
 * Takes a connection that arrived: true if it now serves it (the socket is
 * then its own), false to decline (the socket is closed here). A promise
 * for one that is passed on first (the supervisor, to a worker); the taker
 * then closes its copy itself once it knows.
 */
export type ConnectionTaker = (key: string, socket: OsSocket) => boolean | Promise<boolean>

/**
 * Connections moving over one channel (protocol 2, POSIX): an idle
 * keep-alive connection's socket goes with a `connection` line, and the
 * other side answers `adopted`. The sender keeps serving the connection
 * until the answer says ok (then it lets its handle go) or no (then it takes
 * it back): a receiver that dies with sockets in flight costs nothing, since
 * the sender still holds every connection it was not told was adopted.
 */
export class ConnectionPort {
  private nextId = 0
  private readonly pending = new Map<number, (ok: boolean) => void>()
  private taker?: ConnectionTaker
  private release?: () => void

  constructor(private readonly channel: Channel) {
    channel.on('message', (m: Message, socket?: OsSocket) => {
      if (m.type === 'adopted') this.settle(m.id, m.ok)
      else if (m.type === 'connection' && socket !== undefined) this.receive(m.id, m.key, socket)
    })
    channel.once('close', () => {
      for (const id of [...this.pending.keys()]) this.settle(id, false)
    })
  }

  /** Answers sent so far and not yet come back. */
  get inFlight(): number {
    return this.pending.size
  }

  /**
   * Sends a connection's socket; resolves true once the other side adopted
   * it, false if it declined or went away first. The caller keeps its own
   * copy of the socket throughout, and closes it only on true.
   */
  send(key: string, socket: OsSocket): Promise<boolean> {
    if (this.channel.closed) return Promise.resolve(false)
    const id = ++this.nextId
    const answer = new Promise<boolean>((resolve) => this.pending.set(id, resolve))
    // Waiting for answers keeps the process alive; the channel itself must not.
    this.release ??= this.channel.hold()
    this.channel.send({ type: 'connection', id, key, fd: true }, socket).catch(() => this.settle(id, false))
    return answer
  }

  /** Who adopts the connections that arrive; without one, each is declined. */
  onConnection(taker: ConnectionTaker): void {
    this.taker = taker
  }

  private receive(id: number, key: string, socket: OsSocket): void {
    let outcome: boolean | Promise<boolean> = false
    try {
      outcome = this.taker?.(key, socket) ?? false
    } catch {
      outcome = false
    }
    if (typeof outcome === 'boolean') {
      if (!outcome) closeQuietly(socket)
      // In the same synchronous step as the adoption: no byte of the
      // connection has been read here yet if the sender hears no.
      void this.channel.send({ type: 'adopted', id, ok: outcome })
      return
    }
    void outcome.catch(() => false).then((ok) => this.channel.send({ type: 'adopted', id, ok }))
  }

  private settle(id: number, ok: boolean): void {
    const resolve = this.pending.get(id)
    if (!resolve) return
    this.pending.delete(id)
    if (this.pending.size === 0) {
      this.release?.()
      this.release = undefined
    }
    resolve(ok)
  }
}

function closeQuietly(socket: OsSocket): void {
  try {
    closeSync(socket)
  } catch {
    // Already closed.
  }
}
