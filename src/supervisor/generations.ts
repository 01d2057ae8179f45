import { HandoverError } from '../core/errors.js'
import type { ReplaceReason } from '../core/options.js'
import type { SupervisorEvents } from './events.js'
import { Slot, type SlotHost } from './slot.js'
import type { Worker } from './worker.js'

export interface GenerationResult {
  generation: number
  pids: number[]
  ms: number
}

export interface GenerationsHost {
  readonly workers: number
  readonly drainTimeout: number
  /** Starts a worker of `generation` in slot `slot` (resolves once it runs, not once it is ready). */
  spawn(generation: number, slot: number): Promise<Worker>
  readonly stopping: boolean
  readonly events: SupervisorEvents
  /** A worker was replaced outside an upgrade (metrics). */
  replaced(reason: ReplaceReason): void
}

/**
 * The generations of `handover run`: the serving one (a slot per worker),
 * the ones still draining, and the workers of one still starting. A new
 * generation is a set of successors started together; it takes over when
 * all of them are ready, and only then are the old ones told to drain.
 */
export class Generations {
  /** The number of the newest generation that serves (in any slot). */
  current = 0
  slots: Slot[] = []
  readonly draining = new Set<Worker>()
  private readonly slotHost: SlotHost

  constructor(private readonly host: GenerationsHost) {
    const generations = this
    this.slotHost = {
      spawn: (generation, slot) => host.spawn(generation, slot),
      get stopping() {
        return host.stopping
      },
      events: host.events,
      drainReplaced: (worker) => generations.drain(worker),
      replaced: (reason) => host.replaced(reason),
    }
  }

  /** All N new workers at once; the old generation drains once every one is ready. */
  async startAll(): Promise<GenerationResult> {
    const started = Date.now()
    const generation = this.current + 1
    const workers = await spawnAll(this.host, generation, this.host.workers)
    try {
      await Promise.all(workers.map((w) => w.ready))
      this.checkNotStopping()
    } catch (err) {
      for (const w of workers) w.kill()
      await Promise.all(workers.map((w) => w.exited))
      throw err
    }
    const old = this.slots
    this.current = generation
    this.slots = workers.map((worker, i) => new Slot(this.slotHost, worker, i))
    for (const slot of old) this.retire(slot)
    return { generation, pids: workers.map((w) => w.pid), ms: Date.now() - started }
  }

  /**
   * One worker at a time: each new worker is ready before its old one is
   * told to drain, so as many workers serve throughout. If a new worker
   * fails, it is killed and the rolling stops there: the slots already
   * replaced keep their new workers, the rest keep the old ones, all
   * serving, and status shows each worker's generation. The generation
   * number is the new one once any slot has it.
   */
  async startRolling(): Promise<GenerationResult> {
    const started = Date.now()
    const generation = this.current + 1
    const pids: number[] = []
    for (let i = 0; i < this.host.workers; i++) {
      const worker = await this.host.spawn(generation, i)
      try {
        await worker.ready
        this.checkNotStopping()
      } catch (err) {
        worker.kill()
        await worker.exited
        throw err
      }
      this.current = generation
      const old = this.slots[i]
      this.slots[i] = new Slot(this.slotHost, worker, i)
      if (old) this.retire(old)
      pids.push(worker.pid)
    }
    return { generation, pids, ms: Date.now() - started }
  }

  /** Every worker that serves, starting (in a slot) or drains. */
  workers(): Worker[] {
    return [...new Set([...this.draining, ...this.slots.map((s) => s.worker)])]
  }

  /** Workers of the serving slots that are alive. */
  get serving(): number {
    return this.slots.filter((s) => s.worker.state !== 'exited').length
  }

  /** The service stops: no slot restarts its worker any more. */
  cancelRestarts(): void {
    for (const slot of this.slots) slot.cancel()
  }

  private retire(slot: Slot): void {
    const worker = slot.retire(this.host.drainTimeout)
    if (worker) this.track(worker)
  }

  /** A worker no slot holds any more (replaced in its slot): it drains like an old generation's. */
  private drain(worker: Worker): void {
    worker.drain(this.host.drainTimeout)
    this.track(worker)
  }

  private track(worker: Worker): void {
    this.draining.add(worker)
    void worker.exited.then(() => this.draining.delete(worker))
  }

  private checkNotStopping(): void {
    if (this.host.stopping) throw new HandoverError('ERR_STOPPED', 'the supervisor is stopping')
  }
}

/** Starts `count` workers; if any cannot be started, the others are killed and reaped, and that error is thrown. */
async function spawnAll(host: GenerationsHost, generation: number, count: number): Promise<Worker[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, (_, slot) => host.spawn(generation, slot)))
  const workers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (!failed) return workers
  for (const w of workers) w.kill()
  await Promise.all(workers.map((w) => w.exited))
  throw failed.reason
}
