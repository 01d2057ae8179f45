import { fileURLToPath } from 'node:url'
import { platformBackend } from '../backend/index.js'
import { ActivatedSockets } from '../core/activation.js'
import { withCompileCache } from '../core/compile-cache.js'
import { HandoverError } from '../core/errors.js'
import { SocketTable } from '../core/listeners.js'
import { resolveSupervisorOptions, workerEnv, type SupervisorOptions, type SupervisorSettings } from '../core/options.js'
import type { PlatformBackend } from '../core/platform.js'
import { removeOwnPidFile, writePidFile } from '../core/pidfile.js'
import type { ControlServer, ControlTarget } from '../service/control-socket.js'
import { monotonicUsec, notify } from '../service/systemd.js'
import { FollowUp } from '../core/follow-up.js'
import { ConnectionRouter } from './connection-router.js'
import { Generations, type GenerationResult } from './generations.js'
import { markNodeChild } from './reaper.js'
import { statusLine, supervisorStatus, type SupervisorStatus } from './status.js'
import { TicketKeyStore } from './ticket-keys.js'
import { Worker } from './worker.js'

export type { SupervisorOptions } from '../core/options.js'
export type { GenerationResult } from './generations.js'
export type { SupervisorStatus, WorkerStatus } from './status.js'

const REGISTER = fileURLToPath(new URL('../preload/register.js', import.meta.url))

/**
 * `handover run`: one process that keeps its pid for the life of the
 * service and runs N workers per generation (generations.ts). It holds
 * every listening socket; workers get them at spawn or on request, so one
 * accept queue per address outlives every generation. This class wires
 * the parts together: the sockets, the workers' start, the service
 * manager, the control socket and the stop.
 */
export class Supervisor {
  private readonly generations: Generations
  /** Idle connections of draining workers, to the serving ones. */
  private readonly router = new ConnectionRouter(() => this.generations.slots.map((s) => s.worker))
  /** TLS session-ticket keys per socket, the same for every worker: sessions resume across workers and generations. */
  private readonly ticketKeys = new TicketKeyStore()
  /** Every worker not yet exited, whatever its role: stop() reaches each. */
  private readonly live = new Set<Worker>()
  private upgrading?: Promise<GenerationResult>
  /** Deploys requested while one was under way: one follow-up generation for all of them. */
  private readonly followUp = new FollowUp<GenerationResult>()
  private stopping?: Promise<void>
  private control?: ControlServer
  private resolveDone!: () => void
  /** Resolves once stop() has finished: every worker gone, files removed. */
  readonly done = new Promise<void>((r) => (this.resolveDone = r))

  private constructor(
    private readonly options: SupervisorSettings,
    private readonly backend: PlatformBackend,
    private readonly table: SocketTable,
    private readonly controlTable: SocketTable,
  ) {
    const supervisor = this
    this.generations = new Generations({
      workers: options.workers,
      drainTimeout: options.drainTimeout,
      spawn: (generation) => this.spawnWorker(generation),
      get stopping() {
        return supervisor.stopping !== undefined
      },
      say: (line) => this.say(line),
    })
  }

  /** Starts the first generation; resolves once all its workers are ready, rejects (cleaned up) if any is not. */
  static async start(options: SupervisorOptions): Promise<Supervisor> {
    const resolved = resolveSupervisorOptions(options)
    if (process.platform === 'win32') {
      throw new HandoverError('ERR_UNSUPPORTED', 'handover run needs SCM_RIGHTS to pass sockets to running workers; on Windows, use the API or handover/register')
    }
    const backend = await platformBackend()
    const table = new SocketTable(backend, resolved.cwd, { activated: ActivatedSockets.take(backend) })
    const controlTable = new SocketTable(backend, resolved.cwd)
    const supervisor = new Supervisor(resolved, backend, table, controlTable)
    try {
      if (resolved.controlSocket !== undefined) {
        const { ControlServer } = await import('../service/control-socket.js')
        supervisor.control = ControlServer.claim(controlTable, resolved.controlSocket, resolved.controlSocketMode)
      }
      const first = await supervisor.generations.startAll()
      supervisor.closeUnusedSockets()
      if (resolved.pidFile !== undefined) await writePidFile(resolved.pidFile)
      supervisor.control?.serve(supervisor.controlTarget(), supervisor.done)
      notify({ READY: 1, MAINPID: process.pid, STATUS: statusLine(supervisor.generations) })
      supervisor.sayReady(first)
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
   * current generation keeps serving (with --rolling, see Generations.startRolling()).
   * With `queue`, a request during an upgrade joins one follow-up
   * generation, started once the current one settles, and resolves with it.
   */
  upgrade(options: { queue?: boolean; signal?: AbortSignal } = {}): Promise<GenerationResult> {
    if (this.stopping) return Promise.reject(new HandoverError('ERR_STOPPED', 'the supervisor is stopping'))
    if (this.upgrading) {
      if (!options.queue) return Promise.reject(new HandoverError('ERR_UPGRADE_IN_PROGRESS', 'an upgrade is already in progress'))
      const waiting = this.followUp.waiting + 1
      this.say(`upgrade requested during generation ${this.generations.current + 1}'s start: queued (${waiting} waiting); one follow-up generation starts when it settles`)
      return this.followUp.join(options.signal)
    }
    notify({ RELOADING: 1, MONOTONIC_USEC: monotonicUsec() })
    const { generations } = this
    this.upgrading = (this.options.rolling ? generations.startRolling() : generations.startAll()).then(
      (result) => {
        this.closeUnusedSockets()
        notify({ READY: 1, STATUS: statusLine(generations) })
        this.sayReady(result)
        return result
      },
      (err: HandoverError) => {
        notify({ READY: 1, STATUS: `upgrade failed: ${err.code}: ${err.message}`.replace(/[\r\n\0]+/g, ' ').slice(0, 500) })
        this.say(`upgrade failed: ${err.code}: ${err.message}`)
        throw err
      },
    ).finally(() => {
      this.upgrading = undefined
      this.followUp.settle(() => this.upgrade({ queue: true }))
    })
    return this.upgrading
  }

  /** Sends `signal` to every worker of the serving generation (the app's own signals, which the supervisor does not use). */
  signalWorkers(signal: NodeJS.Signals): void {
    for (const slot of this.generations.slots) {
      if (slot.worker.state === 'ready') slot.worker.signal(signal)
    }
  }

  status(): SupervisorStatus {
    return supervisorStatus(this.generations)
  }

  /**
   * Stops the service: every worker drains (killed after drainTimeout, or at
   * once with `force`), then the control socket, the held sockets and the
   * pid file go. Resolves when all of that is done.
   */
  stop(options: { force?: boolean } = {}): Promise<void> {
    if (options.force) for (const w of this.live) w.kill()
    this.stopping ??= (async () => {
      notify({ STOPPING: 1 })
      this.generations.cancelRestarts()
      const workers = [...this.live]
      for (const w of workers) (w.state === 'starting' ? w.kill() : w.drain(this.options.drainTimeout))
      await Promise.all(workers.map((w) => w.exited))
      this.controlTable.closeAll(true)
      this.table.closeAll(true)
      if (this.options.pidFile !== undefined) removeOwnPidFile(this.options.pidFile)
      this.resolveDone()
    })()
    return this.stopping
  }

  private async spawnWorker(generation: number): Promise<Worker> {
    const o = this.options
    const sockets = this.table.outgoing()
    const worker = await Worker.spawn({
      backend: this.backend,
      command: process.execPath,
      args: [...o.execArgv, '--import', REGISTER, o.script, ...o.args],
      cwd: o.cwd,
      env: withCompileCache(workerEnv(o.env ?? process.env, o)),
      sockets,
      ticketKeys: this.ticketKeys.forSockets(sockets),
      generation,
      readyTimeout: o.readyTimeout,
      provideSocket: (network, address) => {
        const packet = network.startsWith('udp')
        const listener = this.table.listen(network, address, packet)
        const key = this.table.keyOf(network, address, packet)
        return { socket: listener.fd as number, key, ticketKeys: this.ticketKeys.for(key, listener.network) }
      },
      onUpgradeRequest: (w, queue) => {
        this.upgrade({ queue }).then(
          ({ pids }) => w.send({ type: 'upgrade-result', ok: true, pids }),
          (err: HandoverError) => w.send({ type: 'upgrade-result', ok: false, code: err.code, message: err.message }),
        )
      },
    })
    this.live.add(worker)
    void worker.ready.then(() => this.router.attach(worker), () => {})
    markNodeChild(worker.pid, worker.exited)
    void worker.exited.then(() => this.live.delete(worker))
    // Stopped while it started: stop() has already looked at the live workers.
    if (this.stopping) worker.kill()
    return worker
  }

  /**
   * Closes the listening sockets no worker of the serving generation uses
   * (the app moved to another port): a client is refused there instead of
   * waiting in a queue nobody accepts from. Only when every such worker
   * said which it uses (protocol 2's ready); older workers may use any.
   */
  private closeUnusedSockets(): void {
    const used = new Set<string>()
    for (const slot of this.generations.slots) {
      const keys = slot.worker.keys
      if (keys === undefined) return
      for (const key of keys) used.add(key)
    }
    for (const key of this.table.closeExcept(used)) this.say(`closed ${key}: no worker listens there any more`)
  }

  private controlTarget(): ControlTarget {
    return {
      hasParent: false,
      upgrade: async ({ queue, signal }) => {
        const { pids, generation } = await this.upgrade({ queue, signal })
        return { pid: pids[0], pids, generation }
      },
      status: () => this.status(),
    }
  }

  private sayReady(result: GenerationResult): void {
    const n = result.pids.length
    this.say(`generation ${result.generation} ready (${n} worker${n === 1 ? '' : 's'}) in ${result.ms} ms`)
  }

  private say(line: string): void {
    this.options.log(line)
  }
}
