import { HandoverError } from '../core/errors.js'
import type { ReplaceReason } from '../core/options.js'
import { events, type SupervisorEvents } from './events.js'
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
  /** ms the new workers serve beside the old ones before the cut-over (0: none). */
  readonly probation: number
  /** Start this many new workers first, through the probation, then the rest. */
  readonly canary?: number
  /** In the probation, the new workers' 5xx share must not exceed both this and the old ones'. */
  readonly maxErrorRate?: number
  /** ms a replaced generation is kept, paused, for rollback() (0: it drains at once). */
  readonly keepOld: number
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
  /** The number given to the last generation started, served or not: a failed one's number is not given again, so logs and status never name two generations alike. */
  private numbered = 0
  slots: Slot[] = []

  /** The number of the generation started last (the one starting, during an upgrade). */
  get latest(): number {
    return this.numbered
  }

  readonly draining = new Set<Worker>()
  /** The workers of the generation being started, not serving in a slot yet (status). */
  incoming: Worker[] = []
  /** The replaced generation kept for a rollback (--keep-old), until its time is up. */
  private kept?: { generation: number; slots: Slot[]; timer: NodeJS.Timeout }
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

  /**
   * All N new workers at once (or, with a canary, n first, through the
   * probation, then the rest); the old generation drains once every one is
   * ready and, with a probation, has served that long beside it. On any
   * failure every new worker is killed and the old generation never
   * stopped serving.
   */
  async startAll(): Promise<GenerationResult> {
    const started = Date.now()
    const generation = ++this.numbered
    const { workers: count } = this.host
    // The first generation has nothing to fall back to: no canary, no probation.
    const guarded = this.slots.length > 0
    const canary = guarded ? this.host.canary : undefined
    const probation = guarded ? this.host.probation : 0
    const first = canary !== undefined && canary < count ? canary : count
    const workers: Worker[] = []
    try {
      workers.push(...await spawnAll(this.host, generation, first, 0))
      this.incoming = [...workers]
      await Promise.all(workers.map((w) => w.ready))
      this.checkNotStopping()
      if (probation > 0) await this.probation(workers, probation)
      if (first < count) {
        const rest = await spawnAll(this.host, generation, count - first, first)
        workers.push(...rest)
        this.incoming = [...workers]
        await Promise.all(rest.map((w) => w.ready))
        this.checkNotStopping()
      }
    } catch (err) {
      for (const w of workers) w.kill()
      await Promise.all(workers.map((w) => w.exited))
      throw err
    } finally {
      this.incoming = []
    }
    this.cutOver(generation, workers.map((worker, i) => new Slot(this.slotHost, worker, i)))
    return { generation, pids: workers.map((w) => w.pid), ms: Date.now() - started }
  }

  /**
   * The new workers serve beside the old generation for `ms`. Rejects with
   * ERR_CHILD_EXITED if one of them dies in it, and with ERR_NOT_HEALTHY if
   * (with maxErrorRate) their share of 5xx answers over it exceeds both the
   * limit and the old generation's share over the same time. Workers that
   * count no responses (an older release, a server the preload does not
   * see) are judged by their exit alone.
   */
  private async probation(workers: Worker[], ms: number): Promise<void> {
    for (const w of workers) w.phase = 'probation'
    const old = this.slots.map((s) => s.worker).filter((w) => w.state === 'ready')
    const guard = this.host.maxErrorRate
    const before = guard === undefined ? undefined : await countsOf([...workers, ...old])
    const started = Date.now()
    let timer: NodeJS.Timeout | undefined
    const died = workers.map((w) => w.exited.then(({ code, signal }) => {
      throw new HandoverError('ERR_CHILD_EXITED', `worker ${w.pid} exited with ${signal ? `signal ${signal}` : `code ${code}`} during the ${ms} ms probation after it was ready`, {
        exitCode: code, signal, pid: w.pid,
      })
    }))
    try {
      // The guard looks every CHECK_EVERY ms, and fails a release as soon as
      // it has answered enough to judge: a bad release costs less than its
      // whole probation.
      for (;;) {
        const left = ms - (Date.now() - started)
        if (left <= 0) break
        await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, guard === undefined ? left : Math.min(left, CHECK_EVERY)))), ...died])
        clearTimeout(timer)
        if (guard !== undefined && before) this.judge(workers, old, before, await countsOf([...workers, ...old]), guard, ms, MIN_TO_JUDGE)
      }
      if (guard !== undefined && before) this.judge(workers, old, before, await countsOf([...workers, ...old]), guard, ms, 1)
    } finally {
      clearTimeout(timer)
      for (const w of workers) w.phase = undefined
      // The exits watched above are not errors once it is over.
      for (const d of died) d.catch(() => {})
    }
  }

  /**
   * Throws ERR_NOT_HEALTHY if the new workers' share of 5xx since `before`
   * exceeds both `guard` and the old generation's share, once they have
   * answered at least `enough` requests.
   */
  private judge(workers: Worker[], old: Worker[], before: Counts, after: Counts, guard: number, ms: number, enough: number): void {
    // A new worker counted from 0: its first pongs may come before it counts
    // (the part that counts is loaded after ready), and it answered nothing
    // before it was ready.
    const rate = (group: Worker[], fromZero = false): { errors: number; responses: number } => {
      let errors = 0
      let responses = 0
      for (const w of group) {
        const a = after.get(w)
        const b = before.get(w) ?? (fromZero ? { responses: 0, serverErrors: 0 } : undefined)
        if (!a || !b) continue
        responses += a.responses - b.responses
        errors += a.serverErrors - b.serverErrors
      }
      return { errors, responses }
    }
    const fresh = rate(workers, true)
    const serving = rate(old)
    if (fresh.responses < enough) return
    const freshRate = fresh.errors / fresh.responses
    const oldRate = serving.responses === 0 ? 0 : serving.errors / serving.responses
    if (freshRate > guard && freshRate > oldRate) {
      throw new HandoverError('ERR_NOT_HEALTHY', `the new workers answered ${percent(freshRate)} of their requests with 5xx during the ${ms} ms probation ` +
        `(${fresh.errors} of ${fresh.responses}), over the ${percent(guard)} allowed and the old generation's ${percent(oldRate)} (${serving.errors} of ${serving.responses}): rolled back`)
    }
  }

  /** The new slots serve; the old generation drains, or is kept, paused, for a rollback (--keep-old). */
  private cutOver(generation: number, slots: Slot[]): void {
    const old = this.slots
    this.current = generation
    this.slots = slots
    this.releaseKept()
    if (this.host.keepOld > 0 && old.length > 0) this.keep(old)
    else for (const slot of old) this.retire(slot)
  }

  private keep(slots: Slot[]): void {
    const generation = slots[0].worker.generation
    for (const slot of slots) {
      slot.cancel()
      if (slot.worker.state === 'ready') slot.worker.pause()
    }
    const timer = setTimeout(() => this.releaseKept(), this.host.keepOld)
    timer.unref()
    this.kept = { generation, slots, timer }
    this.host.events.emit(events.keptGeneration(generation, this.host.keepOld))
  }

  /** The kept generation's time is up (or a newer one is kept, or the service stops): it drains. */
  releaseKept(): void {
    const kept = this.kept
    if (!kept) return
    this.kept = undefined
    clearTimeout(kept.timer)
    for (const slot of kept.slots) {
      slot.worker.phase = undefined
      this.retire(slot)
    }
  }

  /** Whether a generation is kept for a rollback. */
  get canRollBack(): boolean {
    return this.kept !== undefined && this.kept.slots.some((s) => s.worker.state === 'ready')
  }

  /**
   * Makes the kept generation serve again (its workers resume accepting, at
   * once) and the current one drain as an old one would (its idle
   * connections go to the kept one's workers). Rejects with ERR_NO_ROLLBACK
   * when nothing is kept.
   */
  rollBack(): GenerationResult {
    const started = Date.now()
    const kept = this.kept
    if (!kept || !this.canRollBack) {
      throw new HandoverError('ERR_NO_ROLLBACK', 'no previous generation is kept to roll back to: run with --keep-old <ms>, and roll back within that time')
    }
    this.kept = undefined
    clearTimeout(kept.timer)
    const alive = kept.slots.filter((s) => s.worker.state === 'ready')
    for (const slot of alive) slot.worker.resume()
    const newer = this.slots
    this.current = kept.generation
    // New slots over the kept workers: a kept worker that died meanwhile is not brought back.
    this.slots = alive.map((slot, i) => new Slot(this.slotHost, slot.worker, i))
    for (const slot of newer) this.retire(slot)
    return { generation: kept.generation, pids: alive.map((s) => s.worker.pid), ms: Date.now() - started }
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
    const generation = ++this.numbered
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

  /** Every worker that serves, starting (in a slot), is kept or drains. */
  workers(): Worker[] {
    return [...new Set([...this.draining, ...this.slots.map((s) => s.worker), ...(this.kept?.slots.map((s) => s.worker) ?? [])])]
  }

  /** The kept generation's workers (status). */
  get keptWorkers(): Worker[] {
    return this.kept?.slots.map((s) => s.worker).filter((w) => w.state !== 'exited') ?? []
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

type Counts = Map<Worker, { responses: number; serverErrors: number }>

/** How often the error-rate guard looks during a probation, in ms. */
const CHECK_EVERY = 500
/** Answers the new workers must have given before the guard fails them early (at the end, any number will do). */
const MIN_TO_JUDGE = 20

/** Each worker's counts as of now (a fresh pong from each); a worker that counts nothing is left out. */
async function countsOf(workers: Worker[]): Promise<Counts> {
  await Promise.all(workers.map((w) => w.refresh()))
  const out = new Map<Worker, { responses: number; serverErrors: number }>()
  for (const w of workers) {
    if (w.responses !== undefined && w.serverErrors !== undefined) out.set(w, { responses: w.responses, serverErrors: w.serverErrors })
  }
  return out
}

function percent(rate: number): string {
  return `${(rate * 100).toFixed(1)}%`
}

/** Starts `count` workers in slots from `first`; if any cannot be started, the others are killed and reaped, and that error is thrown. */
async function spawnAll(host: GenerationsHost, generation: number, count: number, first: number): Promise<Worker[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => host.spawn(generation, first + i)))
  const workers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (!failed) return workers
  for (const w of workers) w.kill()
  await Promise.all(workers.map((w) => w.exited))
  throw failed.reason
}
