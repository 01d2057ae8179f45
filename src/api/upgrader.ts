import { platformBackend } from '../backend/index.js'
import { AcceptGate } from './accept-gate.js'
import { probeUntilHealthy } from './ready-probe.js'
import { adoptableKeys, loadHandoff, offerConnections, takeConnections } from './connection-handoff.js'
import type { PacketNetwork, StreamNetwork } from '../core/address.js'
import { afterReady } from '../core/after-ready.js'
import { withCompileCache } from '../core/compile-cache.js'
import { eitherSignal, waitDeadline, withDeadline } from '../core/deadline.js'
import { FollowUp } from '../core/follow-up.js'
import { HandoverError } from '../core/errors.js'
import { claimInheritance, inClusterWorker, openInheritance, type Inheritance } from '../core/inheritance.js'
import { Listener, SocketTable } from '../core/listeners.js'
import {
  checkWaitOptions, listenName, resolveUpgraderOptions, resolveUpgradeOptions,
  type ListenOptions, type UpgraderEvent, type UpgraderSettings, type UpgradeOptions, type UpgraderOptions, type WaitOptions,
} from '../core/options.js'
import type { Parent } from '../core/parent.js'
import type { PlatformBackend } from '../core/platform.js'
import { removeOwnPidFile, writePidFile } from '../core/pidfile.js'
import { releaseStartingSignal } from '../core/starting-signal.js'
import { Successor } from '../core/successor.js'
import { startWithTicketKeys, ticketKeysToPass } from '../http/ticket-keys.js'
import type { ControlServer } from '../service/control-socket.js'
import { ServiceNotifier } from '../service/systemd.js'

export type { ListenOptions, UpgraderEvent, UpgradeOptions, UpgraderOptions, WaitOptions } from '../core/options.js'

export interface UpgradeResult {
  /** The pid of the new generation, which is now serving. */
  pid: number
}

/**
 * Hands this server's listening sockets to a new copy of itself. One per
 * process: create() it first thing, listen() through it, then ready().
 */
export class Upgrader {
  private readyPromise?: Promise<void>
  private isReady = false
  private upgrading?: Promise<UpgradeResult>
  private successor?: Successor
  private stopped = false
  private readonly stopController = new AbortController()
  /** Requests that arrived while an upgrade was under way (queue: true). */
  private readonly followUp = new FollowUp<UpgradeResult>()
  /** In a process handover started: its servers accept nothing before ready(). */
  private readonly gate?: AcceptGate
  private resolveExit!: () => void
  private readonly exitPromise = new Promise<void>((resolve) => (this.resolveExit = resolve))
  private readonly notifier = new ServiceNotifier()
  private control?: ControlServer

  private constructor(
    private readonly options: UpgraderSettings,
    private readonly backend: PlatformBackend,
    private readonly table: SocketTable,
    private readonly parent?: Parent,
  ) {
    // A parent that tells this process to leave (the supervisor), or its
    // death, is this process's exit(). handover's own copies of the sockets
    // go at once: the parent holds them for the next workers, and a socket
    // no longer served should refuse connections, not queue them.
    // A worker of `handover run`: counts for the supervisor, and parking for
    // --keep-old (loaded only in a worker: other processes never need it).
    const supervised = parent?.upgrade ? import('./supervised.js').then(({ SupervisedWorker }) => new SupervisedWorker(table, parent)) : undefined
    void parent?.leave.then(() => {
      // Queued before exit() resolves below, so it runs before the app's drain().
      void supervised?.then((worker) => worker.leave())
      if (!this.stopped) this.table.closeAll(false)
      // A worker of `handover run`: its idle connections go to the supervisor, which passes them to a serving worker.
      if (parent.connections && !parent.hasExited) offerConnections(table, parent.connections)
      this.resolveExit()
    })
    // Connections a previous generation, or the supervisor, hands to this process.
    if (parent?.connections) takeConnections(table, parent.connections)
    if (parent) this.gate = new AcceptGate(table)
    // TLS servers start with the parent's session-ticket keys for their socket: sessions resume here.
    if (parent) startWithTicketKeys(table, parent.ticketKeys)
    // A deploy that arrived at the parent while this process started: the parent no longer serves, so this one runs it.
    parent?.onUpgradeRequest(() => {
      this.emit({ type: 'upgrade-requested-by-parent' })
      return this.upgrade({ queue: true })
    })
  }

  static async create(options: UpgraderOptions = {}): Promise<Upgrader> {
    const resolved = resolveUpgraderOptions(options)
    if (inClusterWorker()) {
      // Refused here, not at the first listen: there it would die with
      // "bind EEXIST"/"bind EINVAL", which points nowhere near the cause.
      throw new HandoverError(
        'ERR_UNSUPPORTED',
        'Upgrader.create() in a node:cluster worker (or pm2 cluster mode): the cluster primary owns the ' +
          "workers' sockets, and handover cannot pass them on. For one pid on every core use `handover run -w N app.js`; " +
          'or run one process without cluster (pm2: exec_mode fork)',
      )
    }
    claimInheritance('Upgrader.create()')
    const upgrader = Upgrader.assemble(await openInheritance(platformBackend(), resolved.parentTimeout), resolved)
    if (resolved.controlSocket !== undefined) {
      try {
        // Loaded only when asked for: see platformBackend().
        const { ControlServer } = await import('../service/control-socket.js')
        upgrader.control = ControlServer.claim(upgrader.table, resolved.controlSocket, resolved.controlSocketMode)
      } catch (err) {
        upgrader.table.closeAll(false)
        throw err
      }
    }
    return upgrader
  }

  /**
   * For handover/register: an Upgrader over an inheritance it has already
   * opened, built synchronously so that the app's own listen() can go
   * through it at once. No controlSocket (it needs an async import).
   */
  static forPreload(inheritance: Inheritance, options: Omit<UpgraderOptions, 'controlSocket' | 'controlSocketMode'>): Upgrader {
    const resolved = resolveUpgraderOptions(options)
    claimInheritance('handover/register')
    return Upgrader.assemble(inheritance, resolved)
  }

  /**
   * For handover/register: claims a control socket after forPreload(), with
   * `claim` given this Upgrader's socket table. Call it before ready(), or
   * ready() closes an inherited control socket as unclaimed; ready() serves
   * it (at once if ready() already ran). A stop() meanwhile closes it again.
   */
  async claimControl<T extends { server: ControlServer }>(claim: (table: SocketTable) => Promise<T | undefined>): Promise<T | undefined> {
    this.assertUsable('claimControl')
    const claimed = await claim(this.table)
    if (!claimed) return undefined
    if (this.stopped) {
      if (!this.successor) this.table.closeAll(this.isLast())
      return undefined
    }
    this.control = claimed.server
    if (this.isReady) claimed.server.serve(this, this.exitPromise)
    return claimed
  }

  private static assemble(inheritance: Inheritance, resolved: UpgraderSettings): Upgrader {
    const { backend, parent, activated } = inheritance
    const table = new SocketTable(backend, resolved.cwd, { inherited: parent?.sockets, activated, bind: parent?.bind?.bind(parent) })
    // A worker's pid file would name one worker of many: the supervisor keeps the service's.
    const options = parent?.keepsPidFile ? { ...resolved, pidFile: undefined } : resolved
    return new Upgrader(options, backend, table, parent)
  }

  /** True if this process was started by upgrade(), or by `handover run`. */
  get hasParent(): boolean {
    return this.parent !== undefined
  }

  /** True if this process is a worker of `handover run`: upgrade() asks the supervisor, exit() follows its drain. */
  get isSupervised(): boolean {
    return this.parent?.upgrade !== undefined
  }

  /**
   * A listening stream socket for `tcp`, `tcp4`, `tcp6` or `unix`: inherited
   * from the parent when it has one at the same address, bound afresh
   * otherwise. Pass it to `server.listen(listener)`. A bare port number
   * means the network's wildcard, as `:port` does.
   */
  listen(network: StreamNetwork, address: string | number, options?: ListenOptions): Listener {
    this.assertUsable('listen')
    return this.table.listen(network, address, false, listenName(options))
  }

  /** A bound datagram socket for `udp`, `udp4` or `udp6`. Pass it to `socket.bind(listener)`. */
  listenPacket(network: PacketNetwork, address: string | number, options?: ListenOptions): Listener {
    this.assertUsable('listenPacket')
    return this.table.listen(network, address, true, listenName(options))
  }

  /**
   * Says this process is serving: closes inherited sockets nobody asked for,
   * writes the pid file, and tells the parent (if any) to hand over. Call it
   * once every server is listening. Later calls return the same promise.
   */
  ready(): Promise<void> {
    if (this.stopped) return Promise.reject(stoppedError())
    this.readyPromise ??= (async () => {
      this.table.closeUnclaimed()
      if (this.options.readyProbe !== undefined) await this.probe(this.options.readyProbe)
      const { pidFile } = this.options
      if (pidFile !== undefined) await writePidFile(pidFile)
      // stop() while the pid file was written: the parent must not hand
      // over to a process that is shutting down.
      if (this.stopped) {
        if (pidFile !== undefined) removeOwnPidFile(pidFile)
        throw stoppedError()
      }
      this.isReady = true
      // From now on this process takes connections, not before (its parent may still serve alone).
      this.gate?.open()
      releaseStartingSignal()
      if (this.parent) {
        await this.parent.sendReady(this.table.keys(), adoptableKeys(this.table))
        // READY=1 counts only once the parent has made this process the main one.
        void this.parent.handedOver.then(() => this.stopped || this.notifier.readyAfterHandOff())
      } else {
        this.notifier.ready()
      }
      this.control?.serve(this, this.exitPromise)
      // Off the critical path (the parent, if any, is handing over by now).
      setImmediate(afterReady)
      // What moving connections needs (adopting the parent's, handing this
      // process's own over at its drain), loaded before either comes: a
      // drain that had to load it first would let the loop turn, and read,
      // before its first hand-off.
      setImmediate(() => void loadHandoff().catch(() => {}))
    })().catch((err: unknown) => {
      // Not ready after all: a later call may try again.
      this.readyPromise = undefined
      throw err
    })
    return this.readyPromise
  }

  /**
   * Starts the next generation and resolves with its pid once it is ready and
   * has outlived the probation; exit() resolves at the same moment. On failure the new process has been
   * killed, this one keeps serving, and a later upgrade() may try again.
   *
   * With `queue: true`, a request that arrives while an upgrade is under way
   * (or just after this process handed over) is not refused: it joins one
   * follow-up generation, started once the current one settles, and
   * resolves with that generation's pid. If this process has handed over by
   * then, its successor starts the follow-up (protocol 2).
   */
  upgrade(options: UpgradeOptions = {}): Promise<UpgradeResult> {
    let waitMs: number
    try {
      waitMs = resolveUpgradeOptions(options)
    } catch (err) {
      return Promise.reject(err)
    }
    const queue = options.queue === true
    if (this.stopped) return Promise.reject(stoppedError())
    if (this.successor) {
      if (queue) return this.passOn(this.successor)
      return Promise.reject(new HandoverError('ERR_ALREADY_UPGRADED', `already handed over to process ${this.successor.pid}`))
    }
    if (this.upgrading) {
      if (!queue) return Promise.reject(new HandoverError('ERR_UPGRADE_IN_PROGRESS', 'an upgrade is already in progress'))
      this.emit({ type: 'upgrade-queued', waiting: this.followUp.waiting + 1 })
      return this.followUp.join(options.signal)
    }
    if (!this.isReady) return Promise.reject(new HandoverError('ERR_NOT_READY', 'call ready() before upgrade()'))
    if (this.parent?.upgrade) return this.track(this.parent.upgrade(queue).then(({ pid }) => ({ pid })))
    // The parent still serves until it hands over (its probation): the next
    // generation may start once it has, even while it still drains. Default
    // 0: a caller that did not ask to wait learns at once.
    const parent = this.parent && !this.parent.hasHandedOver ? this.parent : undefined
    if (parent && waitMs === 0) return Promise.reject(parentNotHandedOver(parent))
    this.notifier.reloading()
    const { signal, release } = options.signal
      ? eitherSignal(this.stopController.signal, options.signal)
      : { signal: this.stopController.signal, release: () => {} }
    // While waiting this counts as the upgrade in progress: a second
    // upgrade() gets ERR_UPGRADE_IN_PROGRESS, stop() and the signal end the wait.
    const run = async (): Promise<UpgradeResult> => {
      if (parent) {
        try {
          await parent.waitForHandOff({ timeout: waitMs, signal, timedOut: () => parentNotHandedOver(parent, waitMs), aborted: () => signal.reason })
        } catch (err) {
          if (!this.stopped) this.notifier.upgradeFailed(err)
          throw err
        }
      }
      return this.runUpgrade(signal)
    }
    return this.track(run().finally(release))
  }

  /** Makes `upgrade` the one in progress; once it settles, a follow-up that requests joined meanwhile starts. */
  private track(upgrade: Promise<UpgradeResult>): Promise<UpgradeResult> {
    this.upgrading = upgrade
    void upgrade.then(() => {}, () => {}).then(() => {
      this.upgrading = undefined
      this.followUp.settle(() => this.upgrade({ queue: true }))
    })
    return upgrade
  }

  /** A deploy this process can no longer run (it handed over): the successor runs it. */
  private passOn(successor: Successor): Promise<UpgradeResult> {
    this.emit({ type: 'upgrade-passed-on', pid: successor.pid })
    return successor.requestUpgrade()
  }

  /** Tells the onEvent option, if any; a throwing listener is reported, never thrown into handover. */
  private emit(event: UpgraderEvent): void {
    try {
      this.options.onEvent?.(event)
    } catch (err) {
      process.emitWarning(`an onEvent listener threw: ${(err as Error)?.message ?? String(err)}`, { type: 'HandoverWarning' })
    }
  }

  /**
   * The ready probe: GET `path` to this process's own servers until they
   * answer 2xx, each failure told to the parent (whose ready timeout then
   * fails the upgrade with ERR_NOT_HEALTHY); without a parent, bounded by
   * this process's readyTimeout.
   */
  private async probe(path: string): Promise<void> {
    await probeUntilHealthy(this.backend, this.table, path, {
      timeout: this.options.readyTimeout,
      signal: this.stopController.signal,
      onFailure: (outcome) => this.parent?.reportProbe({ path, ...outcome }),
    })
  }

  /** Resolves when this process should stop serving: a successor is ready, or stop() was called. */
  exit(): Promise<void> {
    return this.exitPromise
  }

  /**
   * Refuses further upgrades and kills a starting child. Without a
   * successor, also closes handover's sockets, removes the unix socket files
   * and the pid file: this generation is the last. Servers are yours to close.
   */
  stop(): void {
    if (this.stopped) return
    this.stopped = true
    releaseStartingSignal()
    this.stopController.abort(stoppedError())
    if (!this.successor) {
      // A new generation that never became ready is not the last one: its
      // parent still serves on these paths.
      const last = this.isLast()
      if (last) this.notifier.stopping()
      this.table.closeAll(last)
      if (last && this.options.pidFile !== undefined) removeOwnPidFile(this.options.pidFile)
    }
    this.resolveExit()
  }

  /** Without a successor: whether this generation is the last (its files are its to remove). */
  private isLast(): boolean {
    return !this.parent || this.isReady || this.parent.hasExited
  }

  /** Resolves once the parent process has exited; at once if there is none. */
  waitForParent(options: WaitOptions = {}): Promise<void> {
    try {
      checkWaitOptions(options)
    } catch (err) {
      return Promise.reject(err)
    }
    const parent = this.parent
    if (!parent || parent.hasExited) return withDeadline(Promise.resolve(), options, 'the parent to exit')
    return parent.waitForExit(waitDeadline(options, 'the parent to exit'))
  }

  private async runUpgrade(signal: AbortSignal): Promise<UpgradeResult> {
    const o = this.options
    let child: Successor | undefined
    try {
      const sockets = this.table.outgoing()
      child = await Successor.spawn({
        backend: this.backend,
        command: o.command,
        args: o.args,
        cwd: o.cwd,
        env: withCompileCache(this.notifier.childEnv(o.env ?? process.env), o.compileCache),
        sockets,
        // In memory, over the channel only: the TLS servers' session-ticket keys, so that sessions resume on the child.
        ticketKeys: ticketKeysToPass(this.table, sockets.map((s) => s.key), this.parent?.ticketKeys),
        readyTimeout: o.readyTimeout,
        signal,
      })
      await child.ready
      if (o.probation > 0) await child.serveProbation(o.probation, signal)
    } catch (err) {
      throw await this.upgradeFailed(err, child?.pid)
    }
    this.successor = child
    child.letGo()
    // drain() hands this process's idle keep-alive connections to the child, on the sockets it said it adopts on.
    if (child.connections && child.adopts.length > 0) offerConnections(this.table, child.connections, child.adopts)
    // Before the child's READY=1, which the manager accepts only from its main process.
    this.notifier.handedOver(child.pid)
    child.handedOver()
    // The child holds its own copies now; the servers keep theirs until closed.
    this.table.closeAll(false)
    // Windows only: servers stop accepting there without dropping accepted connections.
    await this.backend.retireListeners?.()
    this.resolveExit()
    return { pid: child.pid }
  }

  /**
   * This process stays the server: the pid file and the service manager get
   * it back (MAINPID= never moved: it is sent only once the hand-off is done).
   */
  private async upgradeFailed(err: unknown, childPid: number | undefined): Promise<unknown> {
    const { pidFile } = this.options
    // The child may have written its pid file before it was turned down.
    if (pidFile !== undefined && childPid !== undefined) {
      if (this.stopped) removeOwnPidFile(pidFile, childPid)
      else await writePidFile(pidFile).catch(() => {})
    }
    if (!this.stopped) this.notifier.upgradeFailed(err)
    return err
  }

  private assertUsable(method: string): void {
    if (this.stopped) throw stoppedError()
    if (this.upgrading) {
      // A socket bound now would not reach the generation being started.
      throw new HandoverError('ERR_UPGRADE_IN_PROGRESS', `${method}() while an upgrade is in progress`)
    }
    if (this.successor) {
      throw new HandoverError('ERR_ALREADY_UPGRADED', `${method}() after the hand-off to process ${this.successor.pid}`)
    }
  }
}

/** The parent still serves beside this process (its probation): it has not handed over. */
function parentNotHandedOver(parent: Parent, waitedMs = 0): HandoverError {
  const how = waitedMs > 0 ? `within ${waitedMs} ms` : 'yet (its probation); pass upgrade({ waitForParent: ms }) to wait'
  return new HandoverError('ERR_PARENT_NOT_EXITED', `the previous process ${parent.pid} has not handed over ${how}`)
}

function stoppedError(): HandoverError {
  return new HandoverError('ERR_STOPPED', 'the upgrader was stopped')
}
