import type { HandoverError } from '../core/errors.js'
import type { ReplaceReason } from '../core/options.js'
import { events, type SupervisorEvents } from './events.js'
import { RestartPolicy } from './restarts.js'
import type { Worker } from './worker.js'

/** What a slot needs from the supervisor to replace its worker. */
export interface SlotHost {
  /** Starts a worker of `generation` in slot `slot` (resolves once it runs, not once it is ready). */
  spawn(generation: number, slot: number): Promise<Worker>
  /** True once the service is stopping: nothing is restarted then. */
  readonly stopping: boolean
  readonly events: SupervisorEvents
  /** A worker that no slot holds any more drains, like an old generation's (killed after the drain timeout). */
  drainReplaced(worker: Worker): void
  /** A worker was replaced outside an upgrade (metrics). */
  replaced(reason: ReplaceReason): void
}

/**
 * One place in the serving generation: the worker there now, and its
 * restart history. A worker that exits by itself is replaced with backoff
 * (restarts.ts), in the same generation; so is one the watchdog killed.
 * One over --max-rss is replaced the other way round: its replacement is
 * ready before it drains. A slot that is retired (its generation replaced)
 * stops watching and lets its worker drain.
 */
export class Slot {
  readonly restarts = new RestartPolicy()
  /** Why the worker before this one was replaced, if one was. */
  lastReason?: ReplaceReason
  private timer?: NodeJS.Timeout
  private retired = false
  /** Set when this supervisor killed the worker (the watchdog): its exit is not a crash. */
  private killedFor?: { worker: Worker; reason: ReplaceReason }
  private replacing = false

  constructor(private readonly host: SlotHost, public worker: Worker, readonly index: number) {
    this.watch(worker)
  }

  /** True while a replacement is scheduled and not started yet. */
  get restarting(): boolean {
    return this.timer !== undefined
  }

  /** True while a replacement that must be ready first (max-rss) is starting. */
  get isReplacing(): boolean {
    return this.replacing
  }

  /** The generation is replaced: no more restarts; the worker, if any, drains (killed after `drainTimeout`). */
  retire(drainTimeout: number): Worker | undefined {
    this.retired = true
    clearTimeout(this.timer)
    this.timer = undefined
    const worker = this.worker
    if (worker.state === 'exited') return undefined
    worker.drain(drainTimeout)
    return worker
  }

  /** The service stops: no more restarts. */
  cancel(): void {
    this.retired = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  /**
   * The watchdog: the worker's loop has not answered for `silentMs`. A hung
   * worker serves nobody and its keep-alive clients wait on it, so it is
   * killed now, and replaced as a crashed one is.
   */
  killUnresponsive(silentMs: number): void {
    const worker = this.worker
    if (this.retired || this.host.stopping || worker.state !== 'ready' || this.killedFor?.worker === worker) return
    this.killedFor = { worker, reason: 'watchdog' }
    this.host.events.emit(events.workerUnresponsive(worker, silentMs))
    worker.kill()
  }

  /**
   * Replaces the worker with a new one of the same generation that is ready
   * before the old one drains (--max-rss), so as many workers serve
   * throughout. Resolves when that is done or has failed (the old worker
   * then keeps serving; the next sample may try again).
   */
  async replace(reason: ReplaceReason): Promise<void> {
    const old = this.worker
    if (this.replacing || this.retired || this.host.stopping || this.timer || old.state !== 'ready') return
    this.replacing = true
    const started = Date.now()
    try {
      let next: Worker
      try {
        next = await this.host.spawn(old.generation, this.index)
        await next.ready
      } catch (err) {
        this.host.events.emit(events.replaceFailed(old, reason, err as HandoverError))
        return
      }
      // The slot moved on meanwhile (a new generation, a crash restart, the
      // stop): the new worker is ready and may hold connections, so it drains.
      if (this.retired || this.host.stopping || this.worker !== old) {
        this.host.drainReplaced(next)
        return
      }
      clearTimeout(this.timer)
      this.timer = undefined
      this.take(next, reason)
      // (A getter: it may have exited while the new one started.)
      if ((old.state as string) !== 'exited') this.host.drainReplaced(old)
      this.host.events.emit(events.workerReplaced(next, old, reason, Date.now() - started))
    } finally {
      this.replacing = false
    }
  }

  private take(worker: Worker, reason: ReplaceReason): void {
    this.restarts.count++
    this.lastReason = reason
    this.host.replaced(reason)
    this.worker = worker
    this.watch(worker)
  }

  private watch(worker: Worker): void {
    void worker.exited.then((exit) => {
      if (this.worker !== worker || this.retired || this.host.stopping) return
      const reason = this.killedFor?.worker === worker ? this.killedFor.reason : 'crash'
      this.killedFor = undefined
      const delay = this.restarts.next(worker.readyAt)
      this.lastReason = reason
      this.host.replaced(reason)
      this.host.events.emit(events.workerExited(worker, exit, reason, delay))
      this.timer = setTimeout(() => void this.restart(worker), delay)
    })
  }

  private async restart(gone: Worker): Promise<void> {
    this.timer = undefined
    if (this.retired || this.host.stopping || this.worker !== gone) return
    let worker: Worker
    try {
      worker = await this.host.spawn(gone.generation, this.index)
    } catch (err) {
      this.host.events.emit(events.restartFailed(gone, err as HandoverError))
      this.timer = setTimeout(() => void this.restart(gone), this.restarts.next(undefined))
      return
    }
    // Retired or stopped while it started, or a replacement took the slot: it has no place to serve.
    if (this.retired || this.host.stopping || this.worker !== gone) {
      worker.kill()
      return
    }
    this.worker = worker
    this.watch(worker)
  }
}
