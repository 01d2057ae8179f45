// The supervisor's own events (upgrades, restarts, replacements, drains,
// failures), each with a stable name, a level, a message for people and
// fields for machines. Where they go is the caller's choice: onEvent, the
// older log(line), or stderr as text or JSON lines (--log-format).
import type { HandoverError } from '../core/errors.js'
import type { ReplaceReason, SupervisorEvent, SupervisorSettings } from '../core/options.js'
import type { SuccessorExit } from '../core/successor.js'
import { formatBytes } from '../service/status-table.js'
import { eventLogger } from './log-relay.js'
import type { Worker } from './worker.js'

export class SupervisorEvents {
  private readonly sink: (event: SupervisorEvent) => void

  constructor(options: Pick<SupervisorSettings, 'onEvent' | 'log' | 'logFormat'>) {
    const { onEvent, log } = options
    this.sink = onEvent ?? (log ? (e) => e.level !== 'debug' && log(e.message) : eventLogger(options.logFormat))
  }

  emit(event: SupervisorEvent): void {
    try {
      this.sink(event)
    } catch {
      // A throwing hook must not take the supervisor down.
    }
  }
}

const who = (w: Worker): Record<string, unknown> => ({ pid: w.pid, generation: w.generation, slot: w.slot })
const how = (exit: SuccessorExit): string => (exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`)
const failure = (err: HandoverError): Record<string, unknown> => ({ code: err?.code ?? 'ERR_UNKNOWN', error: err?.message ?? String(err) })

/** Every event the supervisor emits. */
export const events = {
  controlSocket: (path: string, name: string | undefined): SupervisorEvent => ({
    level: 'info', event: 'control-socket', fields: { path, name },
    message: `control socket ${path}${name === undefined ? '' : ` (handover status ${name})`}`,
  }),
  controlSocketRenamed: (wanted: string, name: string): SupervisorEvent => ({
    level: 'warn', event: 'control-socket-renamed', fields: { wanted, name },
    message: `another handover run already answers as ${wanted}: this one is ${name} (give --name to choose)`,
  }),
  noControlSocket: (err: HandoverError): SupervisorEvent => ({
    level: 'warn', event: 'control-socket-missing', fields: failure(err),
    message: `no control socket: ${err.code}: ${err.message} (give --name or --control-socket)`,
  }),
  generationReady: (generation: number, pids: number[], ms: number): SupervisorEvent => ({
    level: 'info', event: 'generation-ready', fields: { generation, pids, ms },
    message: `generation ${generation} ready (${pids.length} worker${pids.length === 1 ? '' : 's'}) in ${ms} ms`,
  }),
  upgradeQueued: (generation: number, waiting: number): SupervisorEvent => ({
    level: 'info', event: 'upgrade-queued', fields: { generation, waiting },
    message: `upgrade requested during generation ${generation}'s start: queued (${waiting} waiting); one follow-up generation starts when it settles`,
  }),
  upgradeFailed: (err: HandoverError): SupervisorEvent => ({
    level: 'error', event: 'upgrade-failed', fields: failure(err), message: `upgrade failed: ${err.code}: ${err.message}`,
  }),
  workerExited: (w: Worker, exit: SuccessorExit, reason: ReplaceReason, delay: number): SupervisorEvent => ({
    level: reason === 'crash' ? 'error' : 'warn', event: 'worker-exited', fields: { ...who(w), exitCode: exit.code, signal: exit.signal, reason, restartInMs: delay },
    message: reason === 'crash'
      ? `worker ${w.pid} exited with ${how(exit)}, restarting in ${delay} ms`
      : `worker ${w.pid} (${reason}) exited with ${how(exit)}, restarting in ${delay} ms`,
  }),
  restartFailed: (w: Worker, err: HandoverError): SupervisorEvent => ({
    level: 'error', event: 'restart-failed', fields: { ...who(w), ...failure(err) }, message: `could not restart a worker: ${err.code}: ${err.message}`,
  }),
  workerUnresponsive: (w: Worker, silentMs: number): SupervisorEvent => ({
    level: 'error', event: 'worker-unresponsive', fields: { ...who(w), silentMs: Math.round(silentMs) },
    message: `worker ${w.pid} has not answered for ${Math.round(silentMs)} ms (--watchdog): killing it`,
  }),
  workerOverRss: (w: Worker, rss: number, maxRss: number): SupervisorEvent => ({
    level: 'warn', event: 'worker-over-rss', fields: { ...who(w), rss, maxRss },
    message: `worker ${w.pid} uses ${formatBytes(rss)}, over --max-rss ${formatBytes(maxRss)}: starting its replacement`,
  }),
  workerReplaced: (next: Worker, old: Worker, reason: ReplaceReason, ms: number): SupervisorEvent => ({
    level: 'info', event: 'worker-replaced', fields: { ...who(next), replaced: old.pid, reason, ms },
    message: `worker ${next.pid} ready in ${ms} ms in place of ${old.pid} (${reason}), which drains`,
  }),
  replaceFailed: (old: Worker, reason: ReplaceReason, err: HandoverError): SupervisorEvent => ({
    level: 'error', event: 'replace-failed', fields: { ...who(old), reason, ...failure(err) },
    message: `could not replace worker ${old.pid} (${reason}), which keeps serving: ${err.code}: ${err.message}`,
  }),
  workerDrained: (w: Worker, ms: number, forced: boolean): SupervisorEvent => ({
    level: forced ? 'warn' : 'debug', event: 'worker-drained', fields: { ...who(w), ms, outcome: forced ? 'forced' : 'graceful' },
    message: forced ? `worker ${w.pid} was killed ${ms} ms into its drain (the drain timeout)` : `worker ${w.pid} drained in ${ms} ms`,
  }),
  rolledBack: (from: number, to: number, pids: number[]): SupervisorEvent => ({
    level: 'warn', event: 'rolled-back', fields: { from, generation: to, pids },
    message: `rolled back from generation ${from} to generation ${to} (${pids.length} worker${pids.length === 1 ? '' : 's'}): it serves again, ${from} drains`,
  }),
  keptGeneration: (generation: number, ms: number): SupervisorEvent => ({
    level: 'info', event: 'generation-kept', fields: { generation, ms },
    message: `generation ${generation} is kept, paused, for ${ms} ms (handover rollback brings it back)`,
  }),
  socketClosed: (key: string): SupervisorEvent => ({
    level: 'info', event: 'socket-closed', fields: { key }, message: `closed ${key}: no worker listens there any more`,
  }),
}
