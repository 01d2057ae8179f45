import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ActivatedSockets } from '../service/activation.js'
import { platformBackend } from '../backend/index.js'
import type { PlatformBackend } from '../backend/types.js'
import type { ControlServer } from '../service/control-socket.js'
import { HandoverError } from '../core/errors.js'
import { checkObject, checkStrings, fileMode, invalidOption, msOption } from '../core/options.js'
import { SocketTable } from '../core/listeners.js'
import { removeOwnPidFile, writePidFile } from '../core/pidfile.js'
import { withCompileCache } from '../core/compile-cache.js'
import { monotonicUsec, notify } from '../service/systemd.js'
import { markNodeChild } from './reaper.js'
import { RestartPolicy } from './restarts.js'
import { Worker, type WorkerState } from './worker.js'

export interface SupervisorOptions {
  /** The app's entry point, run in every worker with handover/register preloaded. */
  script: string
  args?: string[]
  /** Workers per generation: a number, or 'max' for os.availableParallelism(). Default 1. */
  workers?: number | 'max'
  /** The supervisor's pid, written atomically once and removed at exit. */
  pidFile?: string
  /** A unix socket that answers `upgrade` and `status` (the `handover` command). */
  controlSocket?: string
  controlSocketMode?: number
  /** Milliseconds each new worker has to become ready. Default 60 000. */
  readyTimeout?: number
  /** Milliseconds an old worker may drain before it is killed. Default 30 000. */
  drainTimeout?: number
  /** Replace workers one at a time, each new one ready before its old one drains. */
  rolling?: boolean
  /** Node flags for the workers, before the preload. Default: this process's execArgv. */
  execArgv?: string[]
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Where the supervisor's one-line event reports go. Default: stderr, prefixed "handover: ". */
  log?: (line: string) => void
}

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

export interface GenerationResult {
  generation: number
  pids: number[]
  ms: number
}

interface Resolved {
  script: string
  args: string[]
  workers: number
  pidFile?: string
  controlSocket?: string
  controlSocketMode: number
  readyTimeout: number
  drainTimeout: number
  rolling: boolean
  execArgv: string[]
  cwd: string
  env?: NodeJS.ProcessEnv
  log: (line: string) => void
}

/** One place in a generation: the worker serving there now, and its restart history. */
interface Slot {
  worker?: Worker
  restarts: RestartPolicy
  timer?: NodeJS.Timeout
}

const REGISTER = fileURLToPath(new URL('../preload/register.js', import.meta.url))

/**
 * `handover run`: one process that keeps its pid for the life of the
 * service and runs N workers per generation. It holds every listening
 * socket; workers get them at spawn or on request, so one accept queue per
 * address outlives every generation. A new generation takes over when all
 * its workers are ready; only then are the old ones told to drain.
 */
export class Supervisor {
  private generation = 0
  private slots: Slot[] = []
  private readonly draining = new Set<Worker>()
  /** Workers of a generation that is not serving yet, so stop() can kill them. */
  private readonly starting = new Set<Worker>()
  private upgrading?: Promise<GenerationResult>
  private stopping?: Promise<void>
  private control?: ControlServer
  private resolveDone!: () => void
  /** Resolves once stop() has finished: every worker gone, files removed. */
  readonly done = new Promise<void>((r) => (this.resolveDone = r))

  private constructor(
    private readonly options: Resolved,
    private readonly backend: PlatformBackend,
    private readonly table: SocketTable,
    private readonly controlTable: SocketTable,
  ) {}

  /** Starts the first generation; resolves once all its workers are ready, rejects (cleaned up) if any is not. */
  static async start(options: SupervisorOptions): Promise<Supervisor> {
    const resolved = resolveOptions(options)
    if (process.platform === 'win32') {
      throw new HandoverError('ERR_UNSUPPORTED', 'handover run needs SCM_RIGHTS to pass sockets to running workers; on Windows, use the API or handover/register')
    }
    const backend = await platformBackend()
    const table = new SocketTable(backend, resolved.cwd, [], ActivatedSockets.take(backend))
    const controlTable = new SocketTable(backend, resolved.cwd)
    const supervisor = new Supervisor(resolved, backend, table, controlTable)
    try {
      if (resolved.controlSocket !== undefined) {
        const { ControlServer } = await import('../service/control-socket.js')
        supervisor.control = ControlServer.claim(controlTable, resolved.controlSocket, resolved.controlSocketMode)
      }
      const first = await supervisor.startGeneration()
      if (resolved.pidFile !== undefined) await writePidFile(resolved.pidFile)
      supervisor.control?.serve(supervisor.controlTarget(), supervisor.done)
      notify({ READY: 1, MAINPID: process.pid, STATUS: supervisor.statusLine() })
      supervisor.say(`generation ${first.generation} ready (${first.pids.length} worker${first.pids.length === 1 ? '' : 's'}) in ${first.ms} ms`)
    } catch (err) {
      await supervisor.stop({ force: true })
      throw err
    }
    return supervisor
  }

  /**
   * Starts the next generation. Resolves once every new worker is ready and
   * the old ones have been told to drain; an old generation still draining
   * does not hold it up. On failure every new worker is killed and the
   * current generation keeps serving (with --rolling, see rollingUpgrade()).
   */
  upgrade(): Promise<GenerationResult> {
    if (this.stopping) return Promise.reject(new HandoverError('ERR_STOPPED', 'the supervisor is stopping'))
    if (this.upgrading) return Promise.reject(new HandoverError('ERR_UPGRADE_IN_PROGRESS', 'an upgrade is already in progress'))
    notify({ RELOADING: 1, MONOTONIC_USEC: monotonicUsec() })
    this.upgrading = (this.options.rolling ? this.rollingUpgrade() : this.startGeneration()).then(
      (result) => {
        notify({ READY: 1, STATUS: this.statusLine() })
        this.say(`generation ${result.generation} ready (${result.pids.length} worker${result.pids.length === 1 ? '' : 's'}) in ${result.ms} ms`)
        return result
      },
      (err: HandoverError) => {
        notify({ READY: 1, STATUS: `upgrade failed: ${err.code}: ${err.message}`.replace(/[\r\n\0]+/g, ' ').slice(0, 500) })
        this.say(`upgrade failed: ${err.code}: ${err.message}`)
        throw err
      },
    ).finally(() => (this.upgrading = undefined))
    return this.upgrading
  }

  status(): SupervisorStatus {
    const workers: WorkerStatus[] = []
    const describe = (w: Worker, restarts: number): WorkerStatus => ({
      pid: w.pid, generation: w.generation, state: w.state, startedAt: new Date(w.startedAt).toISOString(), restarts,
    })
    for (const slot of this.slots) {
      if (slot.worker) workers.push({ ...describe(slot.worker, slot.restarts.count), ...(slot.timer && { state: 'restarting' as const }) })
    }
    for (const w of this.draining) workers.push(describe(w, 0))
    return { ok: true, pid: process.pid, generation: this.generation, workers }
  }

  /**
   * Stops the service: every worker drains (killed after drainTimeout, or at
   * once with `force`), then the control socket, the held sockets and the
   * pid file go. Resolves when all of that is done.
   */
  stop(options: { force?: boolean } = {}): Promise<void> {
    if (options.force) for (const w of this.allWorkers()) w.kill()
    this.stopping ??= (async () => {
      notify({ STOPPING: 1 })
      for (const slot of this.slots) clearTimeout(slot.timer)
      const workers = this.allWorkers()
      for (const w of workers) (w.state === 'starting' ? w.kill() : w.drain(this.options.drainTimeout))
      await Promise.all(workers.map((w) => w.exited))
      this.controlTable.closeAll(true)
      this.table.closeAll(true)
      if (this.options.pidFile !== undefined) removeOwnPidFile(this.options.pidFile)
      this.resolveDone()
    })()
    return this.stopping
  }

  /** Every worker alive or starting, whatever its role. */
  private allWorkers(): Worker[] {
    const out = new Set<Worker>(this.draining)
    for (const slot of this.slots) if (slot.worker) out.add(slot.worker)
    for (const w of this.starting) out.add(w)
    return [...out]
  }

  private spawnWorker(generation: number): Worker {
    const o = this.options
    const env = { ...(o.env ?? process.env) }
    // The supervisor's own settings, not the workers'.
    delete env.HANDOVER_PID_FILE
    // A worker's own drain gives up (destroying what is left) a little before the supervisor would kill it.
    env.HANDOVER_DRAIN_TIMEOUT ??= String(Math.max(0, o.drainTimeout - 1_000))
    const worker = Worker.spawn({
      backend: this.backend,
      command: process.execPath,
      args: [...o.execArgv, '--import', REGISTER, o.script, ...o.args],
      cwd: o.cwd,
      env: withCompileCache(env),
      sockets: this.table.outgoing(),
      generation,
      readyTimeout: o.readyTimeout,
      provideSocket: (network, address) => {
        const listener = this.table.listen(network, address, network.startsWith('udp'))
        return listener.fd as number
      },
      onUpgradeRequest: (w) => {
        this.upgrade().then(
          ({ pids }) => w.send({ type: 'upgrade-result', ok: true, pids }),
          (err: HandoverError) => w.send({ type: 'upgrade-result', ok: false, code: err.code, message: err.message }),
        )
      },
    })
    this.starting.add(worker)
    markNodeChild(worker.pid, worker.exited)
    void worker.exited.then(() => this.starting.delete(worker))
    return worker
  }

  /** All N new workers at once; the old generation drains once every one is ready. */
  private async startGeneration(): Promise<GenerationResult> {
    const started = Date.now()
    const generation = this.generation + 1
    const workers: Worker[] = []
    try {
      for (let i = 0; i < this.options.workers; i++) workers.push(this.spawnWorker(generation))
      await Promise.all(workers.map((w) => w.ready))
      if (this.stopping) throw new HandoverError('ERR_STOPPED', 'the supervisor is stopping')
    } catch (err) {
      for (const w of workers) w.kill()
      await Promise.all(workers.map((w) => w.exited))
      throw err
    }
    const old = this.slots
    this.generation = generation
    this.slots = workers.map((worker) => this.adopt({ worker, restarts: new RestartPolicy() }))
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
  private async rollingUpgrade(): Promise<GenerationResult> {
    const started = Date.now()
    const generation = this.generation + 1
    const pids: number[] = []
    for (let i = 0; i < this.options.workers; i++) {
      const worker = this.spawnWorker(generation)
      try {
        await worker.ready
        if (this.stopping) throw new HandoverError('ERR_STOPPED', 'the supervisor is stopping')
      } catch (err) {
        worker.kill()
        await worker.exited
        throw err
      }
      this.generation = generation
      const old = this.slots[i]
      this.slots[i] = this.adopt({ worker, restarts: new RestartPolicy() })
      if (old) this.retire(old)
      pids.push(worker.pid)
    }
    return { generation, pids, ms: Date.now() - started }
  }

  /** A serving slot's worker is watched: if it exits by itself, it is replaced with backoff. */
  private adopt(slot: Slot): Slot {
    const worker = slot.worker as Worker
    this.starting.delete(worker)
    void worker.exited.then(({ code, signal }) => this.onExit(slot, worker, code, signal))
    return slot
  }

  private retire(slot: Slot): void {
    clearTimeout(slot.timer)
    slot.timer = undefined
    const worker = slot.worker
    slot.worker = undefined
    if (!worker || worker.state === 'exited') return
    this.draining.add(worker)
    void worker.exited.then(() => this.draining.delete(worker))
    worker.drain(this.options.drainTimeout)
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.worker !== worker || this.stopping) return
    const how = signal ? `signal ${signal}` : `code ${code}`
    const delay = slot.restarts.next(worker.readyAt)
    this.say(`worker ${worker.pid} exited with ${how}, restarting in ${delay} ms`)
    slot.timer = setTimeout(() => this.restart(slot, worker.generation), delay)
  }

  private restart(slot: Slot, generation: number): void {
    slot.timer = undefined
    if (this.stopping || !this.slots.includes(slot)) return
    let worker: Worker
    try {
      worker = this.spawnWorker(generation)
    } catch (err) {
      const e = err as HandoverError
      this.say(`could not restart a worker: ${e.code}: ${e.message}`)
      slot.timer = setTimeout(() => this.restart(slot, generation), slot.restarts.next(undefined))
      return
    }
    slot.worker = worker
    this.adopt(slot)
  }

  private controlTarget() {
    return {
      hasParent: false,
      upgrade: async () => {
        const { pids, generation } = await this.upgrade()
        return { pid: pids[0], pids, generation }
      },
      status: () => this.status(),
    }
  }

  private statusLine(): string {
    return `generation ${this.generation}, ${this.slots.filter((s) => s.worker).length} workers`
  }

  private say(line: string): void {
    this.options.log(line)
  }
}

function resolveOptions(o: SupervisorOptions): Resolved {
  checkObject('options', o)
  if (typeof o.script !== 'string' || o.script === '') throw invalidOption('script', o.script, 'the path of the app to run')
  let workers = 1
  if (o.workers === 'max') workers = availableParallelism()
  else if (o.workers !== undefined) {
    if (!Number.isInteger(o.workers) || (o.workers as number) < 1 || (o.workers as number) > 1024) throw invalidOption('workers', o.workers, "a whole number from 1 to 1024, or 'max'")
    workers = o.workers as number
  }
  const args = checkStrings('args', o.args)
  const execArgv = checkStrings('execArgv', o.execArgv)
  const cwd = o.cwd ?? process.cwd()
  const mode = fileMode('controlSocketMode', o.controlSocketMode ?? 0o600, 0o600)
  return {
    script: resolve(cwd, o.script),
    args: args ?? [],
    workers,
    pidFile: o.pidFile === undefined ? undefined : resolve(cwd, o.pidFile),
    controlSocket: o.controlSocket,
    controlSocketMode: mode,
    readyTimeout: msOption('readyTimeout', o.readyTimeout, 60_000, 1),
    drainTimeout: msOption('drainTimeout', o.drainTimeout, 30_000, 1),
    rolling: o.rolling === true,
    execArgv: execArgv ?? process.execArgv,
    cwd,
    env: o.env,
    log: o.log ?? ((line) => process.stderr.write(`handover: ${line}\n`)),
  }
}
