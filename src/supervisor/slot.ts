import type { HandoverError } from '../core/errors.js'
import { RestartPolicy } from './restarts.js'
import type { Worker } from './worker.js'

/** What a slot needs from the supervisor to replace its worker. */
export interface SlotHost {
  /** Starts a worker of `generation` (resolves once it runs, not once it is ready). */
  spawn(generation: number): Promise<Worker>
  /** True once the service is stopping: nothing is restarted then. */
  readonly stopping: boolean
  say(line: string): void
}

/**
 * One place in the serving generation: the worker there now, and its
 * restart history. A worker that exits by itself is replaced with backoff
 * (restarts.ts), in the same generation; a slot that is retired (its
 * generation replaced) stops watching and lets its worker drain.
 */
export class Slot {
  readonly restarts = new RestartPolicy()
  private timer?: NodeJS.Timeout
  private retired = false

  constructor(private readonly host: SlotHost, public worker: Worker) {
    this.watch(worker)
  }

  /** True while a replacement is scheduled and not started yet. */
  get restarting(): boolean {
    return this.timer !== undefined
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

  private watch(worker: Worker): void {
    void worker.exited.then(({ code, signal }) => {
      if (this.worker !== worker || this.retired || this.host.stopping) return
      const delay = this.restarts.next(worker.readyAt)
      this.host.say(`worker ${worker.pid} exited with ${signal ? `signal ${signal}` : `code ${code}`}, restarting in ${delay} ms`)
      this.timer = setTimeout(() => void this.restart(worker.generation), delay)
    })
  }

  private async restart(generation: number): Promise<void> {
    this.timer = undefined
    if (this.retired || this.host.stopping) return
    let worker: Worker
    try {
      worker = await this.host.spawn(generation)
    } catch (err) {
      const e = err as HandoverError
      this.host.say(`could not restart a worker: ${e.code}: ${e.message}`)
      this.timer = setTimeout(() => void this.restart(generation), this.restarts.next(undefined))
      return
    }
    // Retired or stopped while it started: it has no place to serve.
    if (this.retired || this.host.stopping) {
      worker.kill()
      return
    }
    this.worker = worker
    this.watch(worker)
  }
}
