import type { Server } from 'node:net'
import type { SocketTable } from '../core/listeners.js'
import { pauseAccepting, resumeAccepting } from '../http/accept-pause.js'
import { listeningFd, onListening } from '../http/listening.js'

/**
 * No traffic before ready (issue 20): in a process handover started (a new
 * generation, a worker), every server that listens on one of its sockets
 * accepts nothing until the process says it is ready. The socket is shared
 * and already listening, so connections wait in the kernel meanwhile, and
 * the process that serves takes them; a process that never becomes ready
 * never answered a request.
 */
export class AcceptGate {
  private readonly paused = new Set<Server>()
  private opened = false
  private readonly stopWatching: () => void
  /**
   * A paused handle does not keep the event loop alive; the process must not
   * exit because its only server is waiting for the gate.
   */
  private keepAlive?: NodeJS.Timeout

  constructor(private readonly table: SocketTable) {
    this.stopWatching = onListening((server) => this.hold(server))
  }

  /** Servers that accept nothing yet. */
  get holding(): number {
    return this.paused.size
  }

  /** From now on the servers accept. */
  open(): void {
    if (this.opened) return
    this.opened = true
    this.stopWatching()
    for (const server of this.paused) resumeAccepting(server)
    this.paused.clear()
    clearInterval(this.keepAlive)
  }

  private hold(server: Server): void {
    if (this.opened) return
    const fd = listeningFd(server)
    // Only servers on sockets handover handed out; others (an admin port of the app's own) are the app's business.
    if (fd === undefined || this.table.keyOfListenerFd(fd) === undefined) return
    if (!pauseAccepting(server)) return
    this.paused.add(server)
    server.once('close', () => this.paused.delete(server))
    this.keepAlive ??= setInterval(() => {}, 1 << 30)
  }
}
