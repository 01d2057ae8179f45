// Kubernetes probes for `handover run --probes <host:port>`: /livez and
// /readyz, served by the supervisor itself; and the --shutdown-delay
// mechanics (readyz fails first, the app keeps serving, then the drain).
//
// /livez says whether the supervisor's own event loop runs. The server
// shares that loop, so while the loop is stalled nothing answers at all:
// the kubelet sees its probe time out (timeoutSeconds, 1 s by default),
// which it counts as a failure exactly like a 503, and restarts the
// container after failureThreshold failures in a row. What this server
// adds is the stall that has just ended: a probe that arrives during a
// stall is read when the loop runs again, and is answered 503 if the loop
// was held for `livenessThreshold` ms or more, so a probe with a long
// timeout fails too. Workers are not judged here: a hung worker is the
// watchdog's business (it is replaced), not a reason to restart the pod.
//
// /readyz is 200 while a generation serves, including through upgrades
// (the old generation serves until the new one is ready), and 503 before
// the first generation is ready and from SIGTERM on.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { HandoverError } from '../core/errors.js'
import { DEFAULTS, type HostPort } from '../core/options.js'

/** How often the loop's lag is sampled (ms). */
const TICK = 100

export interface ProbeServerOptions extends HostPort {
  /** /livez fails for a stall of this many ms or more. Default DEFAULTS.livenessThreshold. */
  livenessThreshold?: number
}

/**
 * Measures how late a TICK-ms timer fires: an event loop held by
 * synchronous work (or a stop) fires it late by that long.
 */
export class LoopWatch {
  private lastTick: number
  private lastLag = 0
  private readonly timer: NodeJS.Timeout

  constructor(private readonly clock: () => number = () => performance.now()) {
    this.lastTick = clock()
    this.timer = setInterval(() => {
      const now = this.clock()
      this.lastLag = Math.max(0, now - this.lastTick - TICK)
      this.lastTick = now
    }, TICK)
    this.timer.unref()
  }

  /**
   * How long the loop has been held, as seen now: the lag of the last tick
   * (a stall that has just ended), or how overdue the next tick is (a
   * request can be read before the overdue timer runs, in the same turn).
   */
  stall(): number {
    return Math.max(this.lastLag, this.clock() - this.lastTick - TICK)
  }

  stop(): void {
    clearInterval(this.timer)
  }
}

export class ProbeServer {
  private isReady = false
  private notReadyReason = 'starting: no generation is ready yet'

  private constructor(
    private readonly server: http.Server,
    private readonly watch: LoopWatch,
    private readonly threshold: number,
  ) {}

  /** Listens on host:port; resolves once listening (rejects with the bind error, e.g. EADDRINUSE). */
  static async start(options: ProbeServerOptions): Promise<ProbeServer> {
    const threshold = options.livenessThreshold ?? DEFAULTS.livenessThreshold
    if (!Number.isInteger(threshold) || threshold < 1) throw new HandoverError('ERR_INVALID_OPTION', `invalid livenessThreshold ${threshold}: whole milliseconds, at least 1`)
    const watch = new LoopWatch()
    let probes: ProbeServer | undefined
    const server = http.createServer((req, res) => probes?.answer(req, res))
    // Probes are small and frequent; a slow or idle client is not kept.
    server.requestTimeout = 5_000
    server.headersTimeout = 5_000
    server.keepAliveTimeout = 5_000
    probes = new ProbeServer(server, watch, threshold)
    try {
      await listen(server, options)
    } catch (err) {
      watch.stop()
      const e = err as NodeJS.ErrnoException
      throw new HandoverError(e.code ?? 'ERR_INVALID_ADDRESS', `cannot serve probes on ${options.host}:${options.port}: ${e.message}`, { address: `${options.host}:${options.port}`, cause: err })
    }
    // The supervisor's own life decides when the process exits, not this server.
    server.unref()
    return probes
  }

  /** Where it listens (the port resolved, for port 0). */
  get address(): HostPort {
    const a = this.server.address() as AddressInfo
    return { host: a.address, port: a.port }
  }

  get ready(): boolean {
    return this.isReady
  }

  /** The supervisor says: a generation serves (true), or it stops serving (false, with why). */
  setReady(ready: boolean, reason = 'stopping'): void {
    this.isReady = ready
    if (!ready) this.notReadyReason = reason
  }

  /** Closes the listener and every connection; resolves when closed. */
  close(): Promise<void> {
    this.watch.stop()
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0]
    const send = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) })
      res.end(req.method === 'HEAD' ? undefined : body)
    }
    if (path !== '/livez' && path !== '/readyz') return send(404, 'not found: /livez or /readyz\n')
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'GET or HEAD\n')
    if (path === '/livez') {
      const stall = Math.round(this.watch.stall())
      return stall >= this.threshold ? send(503, `event loop stalled for ${stall} ms\n`) : send(200, 'ok\n')
    }
    return this.isReady ? send(200, 'ok\n') : send(503, `not ready: ${this.notReadyReason}\n`)
  }
}

function listen(server: http.Server, { host, port }: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/**
 * --shutdown-delay: at SIGTERM, /readyz fails at once, the app keeps
 * serving for `ms` so that Kubernetes takes the pod out of its endpoints
 * (a readiness probe period or so) before any connection is closed, then
 * `drain` runs. `signal` (a second SIGTERM) cuts the wait short. Resolves
 * when `drain` has.
 */
export async function delayedShutdown(probes: ProbeServer | undefined, ms: number, drain: () => Promise<void>, signal?: AbortSignal): Promise<void> {
  probes?.setReady(false, 'shutting down')
  if (ms > 0 && !signal?.aborted) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      signal?.addEventListener('abort', done, { once: true })
    })
  }
  await drain()
}
