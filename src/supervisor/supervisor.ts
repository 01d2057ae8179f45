import { fileURLToPath } from 'node:url'
import { platformBackend } from '../backend/index.js'
import { ActivatedSockets } from '../core/activation.js'
import { withCompileCache } from '../core/compile-cache.js'
import { HandoverError } from '../core/errors.js'
import { FollowUp } from '../core/follow-up.js'
import { SocketTable } from '../core/listeners.js'
import { DEFAULTS, resolveSupervisorOptions, workerEnv, type SupervisorOptions, type SupervisorSettings } from '../core/options.js'
import type { PlatformBackend } from '../core/platform.js'
import { removeOwnPidFile, writePidFile } from '../core/pidfile.js'
import type { ControlTarget } from '../service/control-socket.js'
import { noMetrics, type MetricsRecorder } from '../service/metrics-recorder.js'
import type { ProbeServer } from '../service/probes.js'
import { monotonicUsec, notify } from '../service/systemd.js'
import { Balancer } from './balancer.js'
import { ConnectionRouter } from './connection-router.js'
import { claimControlSocket, type ClaimedControl } from './control-path.js'
import { availableCpus } from './cpu-count.js'
import { events, SupervisorEvents } from './events.js'
import { Generations, type GenerationResult } from './generations.js'
import { LogRelay, workerPrefix } from './log-relay.js'
import { WorkerMonitor } from './monitor.js'
import { markNodeChild } from './reaper.js'
import { statusLine, supervisorStatus, type SupervisorStatus } from './status.js'
import { TicketKeyStore } from './ticket-keys.js'
import { Worker } from './worker.js'

export type { SupervisorEvent, SupervisorOptions } from '../core/options.js'
export type { GenerationResult } from './generations.js'
export type { SupervisorStatus, WorkerStatus } from './status.js'

const REGISTER = fileURLToPath(new URL('../preload/register.js', import.meta.url))

/**
 * `handover run`: one process that keeps its pid for the life of the
 * service and runs N workers per generation (generations.ts). It holds
 * every listening socket; workers get them at spawn or on request, so one
 * accept queue per address outlives every generation. This class wires
 * the parts together: the sockets, the workers' start and output, the
 * service manager, the control socket, the monitor (monitor.ts), the
 * metrics and probes servers, and the stop.
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
  private control?: ClaimedControl
  private readonly events: SupervisorEvents
  private metrics: MetricsRecorder = noMetrics
  private closeMetrics?: () => Promise<void>
  private probes?: ProbeServer
  private monitor?: WorkerMonitor
  private balancer?: Balancer
  /** With --log-prefix: one relay per output, shared by every worker, so their lines never mix. */
  private readonly relays?: { stdout: LogRelay; stderr: LogRelay }
  /** Worker output still being relayed: stop() lets it finish before it resolves. */
  private readonly relaying = new Set<Promise<void>>()
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
    this.events = new SupervisorEvents(options)
    this.generations = new Generations({
      workers: options.workers,
      drainTimeout: options.drainTimeout,
      probation: options.probation,
      canary: options.canary,
      maxErrorRate: options.maxErrorRate,
      keepOld: options.keepOld,
      spawn: (generation, slot) => this.spawnWorker(generation, slot),
      get stopping() {
        return supervisor.stopping !== undefined
      },
      events: this.events,
      replaced: (reason) => this.metrics.recordWorkerRestart(reason),
    })
    if (options.logPrefix) {
      // A reader that went away (EPIPE) must not crash the supervisor; the workers' lines are then lost, as they would be.
      for (const out of [process.stdout, process.stderr]) if (out.listenerCount('error') === 0) out.on('error', () => {})
      this.relays = { stdout: new LogRelay(process.stdout), stderr: new LogRelay(process.stderr) }
    }
  }

  /** Starts the first generation; resolves once all its workers are ready, rejects (cleaned up) if any is not. */
  static async start(options: SupervisorOptions): Promise<Supervisor> {
    // -w max: the CPUs this process may use, counted here (core/ cannot read cgroups).
    const resolved = resolveSupervisorOptions(options, availableCpus)
    if (process.platform === 'win32') {
      throw new HandoverError('ERR_UNSUPPORTED', 'handover run needs SCM_RIGHTS to pass sockets to running workers; on Windows, use the API or handover/register')
    }
    const backend = await platformBackend()
    const table = new SocketTable(backend, resolved.cwd, { activated: ActivatedSockets.take(backend) })
    const controlTable = new SocketTable(backend, resolved.cwd)
    const supervisor = new Supervisor(resolved, backend, table, controlTable)
    try {
      await supervisor.openServers()
      supervisor.control = await claimControlSocket(resolved, controlTable, supervisor.events)
      const first = await supervisor.generations.startAll()
      supervisor.closeUnusedSockets()
      if (resolved.pidFile !== undefined) await writePidFile(resolved.pidFile)
      const { control } = supervisor
      if (control) {
        control.server.serve(supervisor.controlTarget(), supervisor.done)
        supervisor.events.emit(events.controlSocket(control.path, control.name))
      }
      supervisor.monitor = new WorkerMonitor({
        generations: supervisor.generations, metrics: supervisor.metrics, events: supervisor.events,
        sampleInterval: DEFAULTS.sampleInterval, maxRss: resolved.maxRss, watchdog: resolved.watchdog,
      })
      if (resolved.balance) {
        const { generations } = supervisor
        supervisor.balancer = new Balancer({
          workers: () => generations.slots.map((s) => s.worker),
          // The drain moves connections during an upgrade; a replacement changes who serves.
          busy: () => supervisor.upgrading !== undefined || supervisor.stopping !== undefined || generations.incoming.length > 0 || generations.slots.some((s) => s.isReplacing),
          interval: DEFAULTS.balanceInterval,
        })
      }
      supervisor.metrics.setWorkers(supervisor.generations.serving)
      supervisor.probes?.setReady(true)
      notify({ READY: 1, MAINPID: process.pid, STATUS: statusLine(supervisor.generations) })
      supervisor.events.emit(events.generationReady(first.generation, first.pids, first.ms))
    } catch (err) {
      await supervisor.stop({ force: true })
      throw err
    }
    return supervisor
  }

  /** The metrics and probes servers, loaded only when asked for, listening before the first generation starts. */
  private async openServers(): Promise<void> {
    const { metrics, probes } = this.options
    if (metrics) {
      const { MetricsServer } = await import('../service/metrics.js')
      const server = await MetricsServer.start(metrics)
      this.metrics = server
      this.closeMetrics = () => server.close()
    }
    if (probes) {
      const { ProbeServer } = await import('../service/probes.js')
      this.probes = await ProbeServer.start({ ...probes, livenessThreshold: DEFAULTS.livenessThreshold })
    }
  }

  /**
   * Makes the generation kept by --keep-old serve again, within
   * milliseconds (its workers only resume accepting), and the current one
   * drain as an old one would: its idle connections go to the kept
   * generation's workers. Rejects with ERR_NO_ROLLBACK when none is kept,
   * ERR_UPGRADE_IN_PROGRESS during an upgrade, ERR_STOPPED once stopping.
   */
  async rollback(): Promise<GenerationResult> {
    if (this.stopping) throw new HandoverError('ERR_STOPPED', 'the supervisor is stopping')
    if (this.upgrading) throw new HandoverError('ERR_UPGRADE_IN_PROGRESS', 'an upgrade is in progress: roll back once it has settled')
    const from = this.generations.current
    const result = this.generations.rollBack()
    this.metrics.setWorkers(this.generations.serving)
    notify({ STATUS: statusLine(this.generations) })
    this.events.emit(events.rolledBack(from, result.generation, result.pids))
    return result
  }

  /** --shutdown-delay, in ms. */
  get shutdownDelay(): number {
    return this.options.shutdownDelay
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
      this.events.emit(events.upgradeQueued(this.generations.latest, this.followUp.waiting + 1))
      return this.followUp.join(options.signal)
    }
    notify({ RELOADING: 1, MONOTONIC_USEC: monotonicUsec() })
    const { generations, metrics } = this
    const started = performance.now()
    const seconds = (): number => (performance.now() - started) / 1000
    this.upgrading = (this.options.rolling ? generations.startRolling() : generations.startAll()).then(
      (result) => {
        metrics.recordUpgrade('success', seconds())
        metrics.setWorkers(generations.serving)
        this.closeUnusedSockets()
        notify({ READY: 1, STATUS: statusLine(generations) })
        this.events.emit(events.generationReady(result.generation, result.pids, result.ms))
        return result
      },
      (err: HandoverError) => {
        metrics.recordUpgrade('failure', seconds())
        // --rolling may have replaced some slots before it failed.
        metrics.setWorkers(generations.serving)
        notify({ READY: 1, STATUS: `upgrade failed: ${err.code}: ${err.message}`.replace(/[\r\n\0]+/g, ' ').slice(0, 500) })
        this.events.emit(events.upgradeFailed(err))
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
    return supervisorStatus(this.generations, (pid) => this.monitor?.of(pid), this.control?.name)
  }

  /**
   * SIGTERM: /readyz fails at once, the workers keep serving for
   * --shutdown-delay (so that a load balancer stops sending first), then
   * stop(). Aborting `force` (a second signal) cuts the delay short.
   */
  async shutdown(force?: AbortSignal): Promise<void> {
    if (!this.probes && this.options.shutdownDelay === 0) return this.stop()
    // Loaded with the probes server already, or small: a timer and a flag.
    const { delayedShutdown } = await import('../service/probes.js')
    return delayedShutdown(this.probes, this.options.shutdownDelay, () => this.stop(), force)
  }

  /**
   * Stops the service: every worker drains (killed after drainTimeout, or at
   * once with `force`), then the control socket, the held sockets, the pid
   * file and the metrics and probes servers go. Resolves when all of that is done.
   */
  stop(options: { force?: boolean } = {}): Promise<void> {
    if (options.force) for (const w of this.live) w.kill()
    this.stopping ??= (async () => {
      notify({ STOPPING: 1 })
      this.probes?.setReady(false, 'stopping')
      this.monitor?.stop()
      this.balancer?.stop()
      this.generations.cancelRestarts()
      // A kept generation's time is up: it drains with the rest.
      this.generations.releaseKept()
      const workers = [...this.live]
      for (const w of workers) (w.state === 'starting' ? w.kill() : w.drain(this.options.drainTimeout))
      await Promise.all(workers.map((w) => w.exited))
      this.controlTable.closeAll(true)
      this.table.closeAll(true)
      if (this.options.pidFile !== undefined) removeOwnPidFile(this.options.pidFile)
      // The workers' last lines, written before the supervisor says it stopped (bounded: a pipe inherited by a grandchild may stay open).
      await Promise.race([Promise.all(this.relaying), new Promise((r) => setTimeout(r, 1000).unref())])
      await Promise.all([this.probes?.close(), this.closeMetrics?.()])
      this.resolveDone()
    })()
    return this.stopping
  }

  private async spawnWorker(generation: number, slot: number): Promise<Worker> {
    const o = this.options
    const sockets = this.table.outgoing()
    const worker = await Worker.spawn({
      backend: this.backend,
      command: process.execPath,
      args: [...o.execArgv, ...o.nodeArgs, '--import', REGISTER, o.script, ...o.args],
      cwd: o.cwd,
      env: withCompileCache(workerEnv(o.env ?? process.env, o)),
      sockets,
      ticketKeys: this.ticketKeys.forSockets(sockets),
      generation,
      slot,
      pipeOutput: this.relays !== undefined,
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
    this.relayOutput(worker)
    void worker.exited.then((exit) => {
      this.live.delete(worker)
      if (worker.drainStartedAt === undefined) return
      // Killed in its drain: the drain timeout (or a forced stop) ended it, not the worker.
      const ms = Date.now() - worker.drainStartedAt
      const forced = exit.signal === 'SIGKILL'
      this.metrics.recordDrain(ms / 1000, forced ? 'forced' : 'graceful')
      this.events.emit(events.workerDrained(worker, ms, forced))
      // Issue 18 (the connection hand-off) hook: each connection the
      // ConnectionRouter passes on and a new worker adopts (its route()
      // resolving true) is this.metrics.addConnectionsHandedOver(1); when a
      // draining worker reports what its drain closed, addConnectionsClosed(n).
    })
    // Stopped while it started: stop() has already looked at the live workers.
    if (this.stopping) worker.kill()
    return worker
  }

  /** --log-prefix: the worker's stdout and stderr, line by line, each line prefixed with who wrote it. */
  private relayOutput(worker: Worker): void {
    if (!this.relays) return
    const prefix = workerPrefix(worker)
    const { stdout, stderr } = worker.output
    for (const [stream, relay] of [[stdout, this.relays.stdout], [stderr, this.relays.stderr]] as const) {
      if (!stream) continue
      const relayed = relay.attach(stream, prefix)
      this.relaying.add(relayed)
      void relayed.then(() => this.relaying.delete(relayed))
    }
  }

  /**
   * Closes the listening sockets no worker of the serving generation uses
   * (the app moved to another port): a client is refused there instead of
   * waiting in a queue nobody accepts from. Only when every such worker
   * said which it uses (protocol 2's ready); older workers may use any.
   */
  private closeUnusedSockets(): void {
    const used = new Set<string>()
    // A kept generation may serve again (a rollback): its sockets stay too.
    for (const worker of [...this.generations.slots.map((s) => s.worker), ...this.generations.keptWorkers]) {
      const keys = worker.keys
      if (keys === undefined) return
      for (const key of keys) used.add(key)
    }
    for (const key of this.table.closeExcept(used)) this.events.emit(events.socketClosed(key))
  }

  private controlTarget(): ControlTarget {
    return {
      hasParent: false,
      upgrade: async ({ queue, signal }) => {
        const { pids, generation } = await this.upgrade({ queue, signal })
        return { pid: pids[0], pids, generation }
      },
      status: () => this.status(),
      rollback: async () => {
        const { pids, generation } = await this.rollback()
        return { pid: pids[0], pids, generation }
      },
    }
  }
}
