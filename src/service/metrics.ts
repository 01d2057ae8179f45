// Prometheus metrics for `handover run --metrics <host:port>`: text at
// /metrics, from prom-client, loaded with import() only when metrics are
// on (an upgrade's critical path never reads it).
//
// Every counter lives in the supervisor, whose pid and memory outlive
// every generation and every worker crash: unlike counters kept in Node
// cluster workers (prometheus/client_js #385, #250), these never reset
// while the service runs, and one scrape port shows the whole service
// (no scrape landing on a different worker each time).
//
// The supervisor calls the recorder (MetricsRecorder); with metrics off it
// holds `noMetrics`, which does nothing, so call sites need no test.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { HandoverError } from '../core/errors.js'
import type { HostPort } from '../core/options.js'
import type { DrainOutcome, MetricsRecorder, RestartReason, UpgradeResult, WorkerSample } from './metrics-recorder.js'

export { noMetrics, type DrainOutcome, type MetricsRecorder, type RestartReason, type UpgradeResult, type WorkerSample } from './metrics-recorder.js'

/** Upgrades take from tens of milliseconds to the ready timeout (60 s by default). */
const UPGRADE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
/** Drains end in a moment (idle keep-alive) or at the drain timeout (30 s by default), or later with long requests. */
const DRAIN_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
const WORKER_LABELS = ['slot', 'generation', 'pid'] as const

interface Instruments {
  registry: Registry
  upgrades: Counter<'result'>
  upgradeDuration: Histogram<'result'>
  workers: Gauge
  restarts: Counter<'reason'>
  drainDuration: Histogram<'outcome'>
  handedOver: Counter
  closed: Counter
  rss: Gauge<(typeof WORKER_LABELS)[number]>
  cpu: Gauge<(typeof WORKER_LABELS)[number]>
  loopDelay: Gauge<(typeof WORKER_LABELS)[number]>
}

async function instruments(): Promise<Instruments> {
  let client: typeof import('prom-client')
  try {
    const imported = await import('prom-client')
    // prom-client is CommonJS: its exports are the default export (named ones too, through Node's CJS lexer).
    client = (imported as { default?: typeof import('prom-client') }).default ?? imported
  } catch (err) {
    throw new HandoverError('ERR_UNSUPPORTED', `--metrics needs the prom-client package, which handover depends on, and it could not be loaded: ${(err as Error).message}`, { cause: err })
  }
  // A registry of our own: never the global one an app in the same process might use.
  const registry = new client.Registry()
  const registers = [registry]
  const i: Instruments = {
    registry,
    upgrades: new client.Counter({ name: 'handover_upgrades_total', help: 'Upgrades (new generations) attempted, by result.', labelNames: ['result'], registers }),
    upgradeDuration: new client.Histogram({ name: 'handover_upgrade_duration_seconds', help: 'From the start of an upgrade until every new worker was ready (success) or the upgrade failed.', labelNames: ['result'], buckets: UPGRADE_BUCKETS, registers }),
    workers: new client.Gauge({ name: 'handover_workers', help: 'Workers of the serving generation that are alive.', registers }),
    restarts: new client.Counter({ name: 'handover_worker_restarts_total', help: 'Workers replaced outside an upgrade, by reason (crash, max-rss, watchdog).', labelNames: ['reason'], registers }),
    drainDuration: new client.Histogram({ name: 'handover_drain_duration_seconds', help: 'From telling an old worker to drain until it exited; forced: killed at the drain timeout.', labelNames: ['outcome'], buckets: DRAIN_BUCKETS, registers }),
    handedOver: new client.Counter({ name: 'handover_connections_handed_over_total', help: 'Open connections passed from a draining worker to a new one.', registers }),
    closed: new client.Counter({ name: 'handover_connections_closed_total', help: 'Connections closed by a drain (idle ones closed, and those still open at the drain timeout).', registers }),
    rss: new client.Gauge({ name: 'handover_worker_resident_memory_bytes', help: 'Resident set size of each worker.', labelNames: WORKER_LABELS, registers }),
    cpu: new client.Gauge({ name: 'handover_worker_cpu_usage_ratio', help: 'CPU used by each worker over the last sample (1: one CPU).', labelNames: WORKER_LABELS, registers }),
    loopDelay: new client.Gauge({ name: 'handover_worker_event_loop_delay_seconds', help: 'How late each worker\'s event loop answered the supervisor\'s last ping (the round trip).', labelNames: WORKER_LABELS, registers }),
  }
  // Known label values start at 0, so that rate() and increase() see the first event.
  for (const result of ['success', 'failure']) i.upgrades.inc({ result }, 0)
  for (const reason of ['crash', 'max-rss', 'watchdog']) i.restarts.inc({ reason }, 0)
  i.handedOver.inc(0)
  i.closed.inc(0)
  return i
}

const finiteNonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0

/**
 * The recorder and its HTTP server (GET /metrics). Start it before the
 * first generation; close it after the last worker has gone.
 */
export class MetricsServer implements MetricsRecorder {
  private constructor(private readonly i: Instruments, private readonly server: http.Server) {}

  static async start(address: HostPort): Promise<MetricsServer> {
    const i = await instruments()
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0]
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /metrics\n')
        return
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain' }).end('GET or HEAD\n')
        return
      }
      i.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': i.registry.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      )
    })
    server.requestTimeout = 10_000
    server.headersTimeout = 10_000
    server.keepAliveTimeout = 30_000
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new HandoverError(err.code ?? 'ERR_INVALID_ADDRESS', `cannot serve metrics on ${address.host}:${address.port}: ${err.message}`, { address: `${address.host}:${address.port}`, cause: err })))
      server.listen(address.port, address.host, () => resolve())
    })
    server.removeAllListeners('error')
    server.on('error', () => {})
    server.unref()
    return new MetricsServer(i, server)
  }

  get address(): HostPort {
    const a = this.server.address() as AddressInfo
    return { host: a.address, port: a.port }
  }

  /** The exposition text, as /metrics serves it. */
  text(): Promise<string> {
    return this.i.registry.metrics()
  }

  recordUpgrade(result: UpgradeResult, seconds: number): void {
    this.i.upgrades.inc({ result })
    if (finiteNonNegative(seconds)) this.i.upgradeDuration.observe({ result }, seconds)
  }

  setWorkers(count: number): void {
    if (finiteNonNegative(count)) this.i.workers.set(count)
  }

  recordWorkerRestart(reason: RestartReason): void {
    this.i.restarts.inc({ reason })
  }

  recordDrain(seconds: number, outcome: DrainOutcome): void {
    if (finiteNonNegative(seconds)) this.i.drainDuration.observe({ outcome }, seconds)
  }

  addConnectionsHandedOver(count: number): void {
    if (finiteNonNegative(count)) this.i.handedOver.inc(count)
  }

  addConnectionsClosed(count: number): void {
    if (finiteNonNegative(count)) this.i.closed.inc(count)
  }

  setWorkerSamples(samples: WorkerSample[]): void {
    this.i.rss.reset()
    this.i.cpu.reset()
    this.i.loopDelay.reset()
    for (const s of samples) {
      const labels = { slot: String(s.slot), generation: String(s.generation), pid: String(s.pid) }
      if (finiteNonNegative(s.rss)) this.i.rss.set(labels, s.rss)
      if (finiteNonNegative(s.cpu)) this.i.cpu.set(labels, s.cpu / 100)
      if (finiteNonNegative(s.eventLoopDelay)) this.i.loopDelay.set(labels, s.eventLoopDelay)
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }
}
