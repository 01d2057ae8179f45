// The supervisor's periodic look at its workers: a heartbeat over each
// worker's channel (ping, pong: --watchdog, requests served, how late the
// worker's loop runs), and a sample of each one's RSS and CPU from /proc
// (status, the metrics' per-worker gauges, --max-rss). One unreferenced
// timer: it never keeps the supervisor alive by itself.
import type { MetricsRecorder, WorkerSample } from '../service/metrics-recorder.js'
import type { SupervisorEvents } from './events.js'
import { events } from './events.js'
import type { Generations } from './generations.js'
import { CpuSampler, type ProcessStats } from './process-stats.js'

export interface MonitorOptions {
  generations: Generations
  metrics: MetricsRecorder
  events: SupervisorEvents
  /** ms between samples of RSS and CPU. */
  sampleInterval: number
  /** Bytes: a worker over it is replaced, one at a time. */
  maxRss?: number
  /** ms a worker may leave a ping unanswered before it is killed and replaced. */
  watchdog?: number
}

export type WorkerFigures = ProcessStats & { cpu?: number }

/** The shortest tick: pings more often than this would only add load. */
const MIN_TICK = 25

export class WorkerMonitor {
  private readonly sampler = new CpuSampler()
  private figures = new Map<number, WorkerFigures>()
  private readonly timer: NodeJS.Timeout
  private readonly tick: number
  private lastSample = Number.NEGATIVE_INFINITY
  private lastRun = performance.now()

  constructor(private readonly o: MonitorOptions) {
    // With a watchdog, pings go out at least 4 times per watchdog period, so
    // a hung worker is found within about 1.25 periods of its last answer.
    this.tick = o.watchdog === undefined ? o.sampleInterval : Math.max(MIN_TICK, Math.min(o.sampleInterval, Math.floor(o.watchdog / 4)))
    this.timer = setInterval(() => this.run(), this.tick)
    this.timer.unref()
    this.run()
  }

  /** The last sample of `pid`, if it was sampled. */
  of(pid: number): WorkerFigures | undefined {
    return this.figures.get(pid)
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private run(): void {
    const now = performance.now()
    const { generations, watchdog } = this.o
    // This process's own loop was held (synchronous work, a paused VM): the
    // workers' pongs may be waiting unread, and timers run before I/O in a
    // turn of the loop. Judge at the next tick, once they are read.
    const stalled = now - this.lastRun > 2 * this.tick
    this.lastRun = now
    for (const slot of generations.slots) {
      const waited = slot.worker.heartbeat(now)
      if (watchdog !== undefined && waited > watchdog && !stalled) slot.killUnresponsive(waited)
    }
    // Half a tick early rather than a whole tick late.
    if (now - this.lastSample >= this.o.sampleInterval - this.tick / 2) {
      this.lastSample = now
      this.sample()
    }
  }

  private sample(): void {
    const { generations, metrics, maxRss } = this.o
    const workers = generations.workers().filter((w) => w.state !== 'exited')
    this.figures = this.sampler.sample(workers.map((w) => w.pid))
    const samples: WorkerSample[] = workers.map((w) => {
      const f = this.figures.get(w.pid)
      return {
        slot: w.slot, generation: w.generation, pid: w.pid, rss: f?.rss, cpu: f?.cpu,
        eventLoopDelay: w.pingRoundTrip === undefined ? undefined : w.pingRoundTrip / 1000,
      }
    })
    metrics.setWorkerSamples(samples)
    metrics.setWorkers(generations.serving)
    if (maxRss !== undefined) this.recycle(maxRss)
  }

  /** --max-rss: the serving worker furthest over the limit is replaced; one at a time, across all slots. */
  private recycle(maxRss: number): void {
    const { generations } = this.o
    if (generations.slots.some((s) => s.isReplacing)) return
    let worst: { slot: (typeof generations.slots)[number]; rss: number } | undefined
    for (const slot of generations.slots) {
      const rss = this.figures.get(slot.worker.pid)?.rss
      if (slot.worker.state === 'ready' && rss !== undefined && rss > maxRss && (!worst || rss > worst.rss)) worst = { slot, rss }
    }
    if (!worst) return
    this.o.events.emit(events.workerOverRss(worst.slot.worker, worst.rss, maxRss))
    void worst.slot.replace('max-rss')
  }
}
