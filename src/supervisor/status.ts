import type { ReplaceReason } from '../core/options.js'
import type { Generations } from './generations.js'
import type { WorkerFigures } from './monitor.js'
import type { Worker, WorkerState } from './worker.js'

export interface WorkerStatus {
  pid: number
  generation: number
  /** Its place in the generation, from 0 (the log prefix counts from 1: w1). */
  slot: number
  /**
   * Its process state, or where it is in a deploy: `probation` (a new
   * generation serving beside the old one before the cut-over), `kept`
   * (a replaced generation, paused for a rollback), `restarting`.
   */
  state: WorkerState | 'restarting' | 'probation' | 'kept'
  startedAt: string
  /** Workers this slot has had replaced outside upgrades (crashes, --max-rss, --watchdog). */
  restarts: number
  /** Why the last of them was replaced. */
  restartReason?: ReplaceReason
  /** Bytes resident, from the supervisor's last sample. */
  rss?: number
  /** Percent of one CPU over the supervisor's last sample interval. */
  cpu?: number
  /** HTTP requests it has received (under the preload, protocol 2). */
  requests?: number
}

export interface SupervisorStatus {
  ok: true
  pid: number
  /** The service's name (--name, or the script's), when it has a control socket of that name. */
  name?: string
  generation: number
  workers: WorkerStatus[]
}

/** What `handover status` answers: the serving slots first, then a generation starting (or in its probation), one kept, and the workers still draining. */
export function supervisorStatus(generations: Generations, figures: (pid: number) => WorkerFigures | undefined, name?: string): SupervisorStatus {
  const describe = (w: Worker, restarts: number): WorkerStatus => {
    const f = figures(w.pid)
    const state = w.state === 'ready' && w.phase ? w.phase : w.state
    return {
      pid: w.pid, generation: w.generation, slot: w.slot, state, startedAt: new Date(w.startedAt).toISOString(), restarts,
      ...(f?.rss !== undefined && { rss: f.rss }),
      ...(f?.cpu !== undefined && { cpu: Math.round(f.cpu * 10) / 10 }),
      ...(w.requests !== undefined && { requests: w.requests }),
    }
  }
  const workers: WorkerStatus[] = []
  for (const slot of generations.slots) {
    workers.push({
      ...describe(slot.worker, slot.restarts.count),
      ...(slot.lastReason && { restartReason: slot.lastReason }),
      ...(slot.restarting && { state: 'restarting' as const }),
    })
  }
  for (const w of generations.incoming) workers.push(describe(w, 0))
  for (const w of generations.keptWorkers) workers.push(describe(w, 0))
  for (const w of generations.draining) workers.push(describe(w, 0))
  return { ok: true, pid: process.pid, ...(name !== undefined && { name }), generation: generations.current, workers }
}

/** The one-line STATUS= for the service manager. */
export function statusLine(generations: Generations): string {
  return `generation ${generations.current}, ${generations.slots.length} workers`
}
