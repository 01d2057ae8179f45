/**
 * Windows: how an old generation stops accepting without resetting
 * connections it has already accepted.
 *
 * libuv keeps 32 AcceptEx requests pending on a listening TCP handle, and
 * while two generations share a socket, the system hands each incoming
 * connection to one of the pending requests of either process. A request
 * that has taken a connection but whose completion the event loop has not
 * processed yet is lost when the handle closes: libuv closes its accept
 * socket, and the client sees ECONNRESET: under Wine, 0–19 per hand-off at
 * 550–750 requests/s, and none since this retirement (docs/windows.md).
 *
 * So before exit() resolves, each server handle on a socket that was passed
 * on is retired: `setSimultaneousAccepts(false)` makes libuv stop re-posting
 * requests as connections are accepted, until all 32 have delivered one;
 * then it posts a single fresh request, behind the new generation's queue.
 * The handle is closed right there, in the callback of that 32nd accepted
 * connection, which this process serves like any other. After a deadline
 * (a quiet server may never see 32 connections) it is closed anyway: with
 * little traffic, little can be in flight.
 */

/** libuv's uv_simultaneous_server_accepts (src/win/tcp.c), fixed since libuv 1.0. */
const LIBUV_PENDING_ACCEPTS = 32
/** How long a quiet server's handle may wait for its pending accepts to be used up. */
const RETIRE_DEADLINE_MS = 1000

type OnConnection = (this: unknown, status: number, client: unknown) => unknown

/** The parts of Node's TCP wrap (process.binding('tcp_wrap').TCP) used here. */
export interface TcpWrap {
  close(callback?: () => void): void
  setSimultaneousAccepts?(enable: boolean): void
  onconnection?: OnConnection
}

/** One handle given to a server: whether it listens, and its retirement. */
class TrackedHandle {
  listening = false
  closed = false
  private accepted = 0
  private retired?: () => void
  private timer?: NodeJS.Timeout
  private readonly closeHandle: (callback?: () => void) => void

  constructor(
    readonly handle: TcpWrap,
    readonly socket: number,
    private readonly forget: (t: TrackedHandle) => void,
  ) {
    const tracked = this
    const protoClose = handle.close
    this.closeHandle = (callback) => protoClose.call(handle, callback)
    // net.Server closes its handle through this; so does a failed listen().
    Object.defineProperty(handle, 'close', {
      configurable: true,
      writable: true,
      value(callback?: () => void) {
        tracked.markClosed()
        return tracked.closeHandle(callback)
      },
    })
    // net.Server assigns onconnection just before listen(); libuv's
    // callback reads it back on every connection.
    let serverCallback: OnConnection | undefined
    const counting: OnConnection = function (status, client) {
      const result = serverCallback?.call(this, status, client)
      if (status === 0) tracked.onAccepted()
      return result
    }
    Object.defineProperty(handle, 'onconnection', {
      configurable: true,
      enumerable: true,
      get: () => counting,
      set: (fn: OnConnection) => {
        serverCallback = fn
        tracked.listening = true
      },
    })
  }

  /** Resolves once the handle is closed, having lost no accepted connection it could avoid losing. */
  retire(): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (!this.listening) {
      this.closeNow()
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      this.retired = resolve
      try {
        this.handle.setSimultaneousAccepts?.(false)
      } catch {
        // Not offered by this Node: the deadline still bounds the wait.
      }
      this.timer = setTimeout(() => this.closeNow(), RETIRE_DEADLINE_MS)
    })
  }

  private onAccepted(): void {
    // Every request posted before retire() has now delivered its connection;
    // the one pending request is the fresh one libuv has just posted.
    if (this.retired && ++this.accepted >= LIBUV_PENDING_ACCEPTS) this.closeNow()
  }

  private closeNow(): void {
    if (!this.closed) this.handle.close()
    this.markClosed()
  }

  private markClosed(): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.timer)
    this.forget(this)
    this.retired?.()
  }
}

/** The TCP handles this process gave to servers, by the socket they duplicate. */
export class AcceptTracker {
  private readonly handles = new Set<TrackedHandle>()

  track(handle: TcpWrap, socket: number): void {
    this.handles.add(new TrackedHandle(handle, socket, (t) => this.handles.delete(t)))
  }

  /** Retires every open handle on one of `sockets` (the ones a successor now serves). */
  async retire(sockets: ReadonlySet<number>): Promise<void> {
    await Promise.all([...this.handles].filter((t) => sockets.has(t.socket)).map((t) => t.retire()))
  }
}
