import type { Generations } from './generations.js'
import type { Worker, WorkerState } from './worker.js'

export interface WorkerStatus {
  pid: number
  generation: number
  state: WorkerState | 'restarting'
  startedAt: string
  restarts: number
}

export interface SupervisorStatus {
  ok: true
  pid: number
  generation: number
  workers: WorkerStatus[]
}

/** What `handover status` answers: the serving slots first, then the workers still draining. */
export function supervisorStatus(generations: Generations): SupervisorStatus {
  const describe = (w: Worker, restarts: number): WorkerStatus => ({
    pid: w.pid, generation: w.generation, state: w.state, startedAt: new Date(w.startedAt).toISOString(), restarts,
  })
  const workers: WorkerStatus[] = []
  for (const slot of generations.slots) {
    workers.push({ ...describe(slot.worker, slot.restarts.count), ...(slot.restarting && { state: 'restarting' as const }) })
  }
  for (const w of generations.draining) workers.push(describe(w, 0))
  return { ok: true, pid: process.pid, generation: generations.current, workers }
}

/** The one-line STATUS= for the service manager. */
export function statusLine(generations: Generations): string {
  return `generation ${generations.current}, ${generations.slots.length} workers`
}
