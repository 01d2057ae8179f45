import type { Socket as DgramSocket } from 'node:dgram'
import type { LookupAddress } from 'node:dns'
import { createRequire } from 'node:module'
import type { Server } from 'node:net'
import { announceDrain } from '../http/drain-hooks.js'
import { drain, maxLeaveWindow } from '../http/drain.js'
import { parseAddress } from '../core/address.js'
import { HandoverError } from '../core/errors.js'
import { inClusterWorker, inheritanceOwner, openInheritance, type Inheritance } from '../core/inheritance.js'
import type { Listener } from '../core/listeners.js'
import { withDeadline } from '../core/deadline.js'
import { DEFAULTS, readPreloadSettings, type PreloadSettings, type UpgraderEvent } from '../core/options.js'
import { Upgrader } from '../api/upgrader.js'
import { platformBackend } from '../backend/index.js'
import { installHooks, type Original } from './hooks.js'
import { packetAddress, readBindArgs, readListenArgs, streamAddress, unixAddress, type ListenRequest, type PacketRequest } from './listen-args.js'
import { ReadinessGate, installReadinessGate } from './readiness.js'
import { dgramState, isServing } from './socket-state.js'
import { ProcessSignals } from './signals.js'
import { startInThread } from './in-thread.js'
import { inWorkerThread } from './thread-messages.js'
import { ThreadServers } from './threads.js'

const require = createRequire(import.meta.url)
/** Both --import and --require, or NODE_OPTIONS and a flag: one preload all the same. */
let started: { preload?: Preload; opened: Promise<void> } | undefined

/**
 * handover/register: gives an app that knows nothing of handover the same
 * upgrades as one written against the API. It routes the app's own
 * `server.listen()` and `socket.bind()` through an Upgrader, says ready()
 * when start-up has settled (readiness.ts), upgrades on SIGHUP, and drains
 * every server it saw when a successor takes over or the process is told to
 * stop (signals.ts).
 *
 * If the app calls Upgrader.create() itself, the preload steps aside: the
 * app's Upgrader owns the sockets, and every listen() goes to Node untouched.
 *
 * In a worker_thread (Node runs the preload in each), in-thread.ts takes
 * over: a thread's socket is not handed over (threads.ts says why).
 */
export class Preload {
  private upgrader?: Upgrader
  private inheritance?: Inheritance
  private readonly waiting: Array<() => void> = []
  private readonly servers = new Set<Server>()
  /** HTTP requests the app's servers received (those with a 'request' handler), for the supervisor's status; undefined: none counted. */
  private requests?: number
  private readonly counted = new WeakSet<Server>()
  private readonly packetSockets = new Set<DgramSocket>()
  /** Who serves on each socket-table key in this process: see servedByAnother(). */
  private readonly owners = new Map<string, Server | DgramSocket>()
  /** The directory the Upgrader resolves relative unix paths against (its `cwd`), set with it. */
  private cwd = ''
  private readonly gate = new ReadinessGate(() => this.sayReady())
  private signals?: ProcessSignals
  /** Set once exit() has resolved: a successor took over, or stop() was called. */
  private exiting = false
  private readonly threads = new ThreadServers({
    gate: this.gate,
    opened: () => new Promise<void>((resolve) => this.whenOpen(resolve)),
    active: () => !this.steppedAside && !inClusterWorker(),
    supervised: () => this.inheritance?.parent?.upgrade !== undefined,
    afterUpgrade: async () => {
      await this.signals?.idle()
      return this.exiting
    },
    serving: () => void this.ensureUpgrader(),
  })
  /** Settles once the control socket is claimed, or not: ready() waits for it, since it must claim an inherited one first. */
  private control: Promise<unknown> = Promise.resolve()
  private markReady!: () => void
  /** Resolves once ready() has succeeded. */
  private readonly ready = new Promise<void>((resolve) => (this.markReady = resolve))

  private constructor(private readonly settings: PreloadSettings) {}

  /**
   * Installs the hooks at once and opens the generation (the parent's hello,
   * if any) in the background. `--import` awaits the promise, so the app's
   * listen() finds everything in place; `--require` cannot, and listen()
   * calls made before it resolves complete when it does.
   */
  static start(): { preload?: Preload; opened: Promise<void> } {
    started ??= inWorkerThread() ? { opened: startInThread() } : Preload.begin()
    return started
  }

  private static begin(): { preload: Preload; opened: Promise<void> } {
    const preload = new Preload(readPreloadSettings())
    installReadinessGate(preload.gate)
    preload.threads.watch()
    installHooks({
      listen: (server, original, args) => preload.listen(server, original, args),
      bind: (socket, original, args) => preload.bind(socket, original, args),
    })
    const opened = openInheritance(platformBackend(), DEFAULTS.parentTimeout).then((inheritance) => {
      preload.inheritance = inheritance
      // `handover status` shows each worker's requests: its pongs carry the count
      // (the Upgrader adds the responses, for --max-error-rate).
      inheritance.parent?.reportInPong(() => ({ requests: preload.requests }))
      for (const resume of preload.waiting.splice(0)) resume()
    })
    return { preload, opened }
  }

  /** The app's Upgrader.create() owns the sockets: leave every listen() to Node. */
  private get steppedAside(): boolean {
    const owner = inheritanceOwner()
    return owner !== undefined && this.upgrader === undefined
  }

  private whenOpen(then: () => void): void {
    if (this.inheritance) then()
    else this.waiting.push(then)
  }

  private ensureUpgrader(): Upgrader {
    if (!this.upgrader) {
      const { pidFile, readyTimeout, readyProbe, probation } = this.settings
      this.cwd = process.cwd()
      this.upgrader = Upgrader.forPreload(this.inheritance!, { pidFile, readyTimeout, readyProbe, probation, cwd: this.cwd, onEvent: sayEvent })
      this.signals = new ProcessSignals(this.upgrader, this.settings, (force) => this.retire(force), this.ready, () => this.threads.blocker())
      warnIfClamped(this.settings)
      this.control = openControlSocket(this.upgrader, this.settings)
      void this.upgrader.exit().then(() => {
        this.exiting = true
        if (this.signals?.shutdownIsTheApps) return
        void this.retire()
      })
    }
    return this.upgrader
  }

  private listen(server: Server, original: Original, args: unknown[]): Server {
    // Already listening: Node throws ERR_SERVER_ALREADY_LISTEN itself.
    if (server.listening || this.steppedAside || inClusterWorker()) return original.apply(server, args) as Server
    const request = readListenArgs(args)
    if (!request) return this.passThrough(server, original, args)
    this.servers.add(server)
    this.countRequests(server)
    const done = this.gate.listenStarted()
    // Node binds it itself: the same socket, or the same error (EADDRINUSE, ENOTFOUND...) in the app's 'error' handler.
    const leaveToNode = (): void => {
      done(false)
      original.apply(server, args)
    }
    const bindWith = ({ network, address }: { network: string; address: string }): void => {
      if (this.steppedAside || this.servedByAnother(server, network, address, false)) return leaveToNode()
      const listener = this.take(() => this.ensureUpgrader().listen(network as 'tcp', address), `${network} ${address}`)
      if (!listener) return leaveToNode()
      server.once('listening', () => done(true))
      adopt(server, original, listener, request)
    }
    if (request.kind === 'unix') {
      this.whenOpen(() => bindWith({ network: 'unix', address: unixAddress(request.path) }))
    } else if (request.host === '') {
      this.whenOpen(() => bindWith(streamAddress('', 0, request.port, request.ipv6Only)))
    } else {
      // Node looks every host up, IP literals too, with these same defaults.
      lookup(request.host, (err, ip, family) => {
        if (err) leaveToNode()
        else this.whenOpen(() => bindWith(streamAddress(ip, family, request.port, request.ipv6Only)))
      })
    }
    return server
  }

  /**
   * Counts the requests of a server that has a 'request' handler (node:http
   * and https, and http2's compatibility API, which only then makes request
   * objects). A server without one (net, http2 on streams) is left as it is:
   * adding a 'request' listener to an http2 server would switch that API on.
   */
  private countRequests(server: Server): void {
    if (this.counted.has(server) || server.listenerCount('request') === 0) return
    this.counted.add(server)
    this.requests ??= 0
    server.on('request', () => void (this.requests = (this.requests ?? 0) + 1))
  }

  private bind(socket: DgramSocket, original: Original, args: unknown[]): DgramSocket {
    const request = readBindArgs(args)
    const state = dgramState(socket)
    // Already bound: Node throws ERR_SOCKET_ALREADY_BOUND itself.
    if (!request || state.reuseAddr || state.reusePort || isServing(socket) || this.steppedAside || inClusterWorker()) {
      return original.apply(socket, args) as DgramSocket
    }
    const type = (socket as unknown as { type: 'udp4' | 'udp6' }).type
    const done = this.gate.listenStarted()
    const leaveToNode = (): void => {
      done(false)
      original.apply(socket, args)
    }
    const bindWith = (ip: string): void => {
      const { network, address } = packetAddress(type, ip, request.port, state.ipv6Only)
      if (this.steppedAside || this.servedByAnother(socket, network, address, true)) return leaveToNode()
      const listener = this.take(() => this.ensureUpgrader().listenPacket(network, address), `${network} ${address}`)
      if (!listener) return leaveToNode()
      this.packetSockets.add(socket)
      // Before the bind: dgram emits 'listening' for an adopted fd synchronously.
      socket.once('listening', () => done(true))
      adoptPacket(socket, original, listener, request)
    }
    if (request.address === '') this.whenOpen(() => bindWith(''))
    else {
      lookup(request.address, (err, ip) => (err ? leaveToNode() : this.whenOpen(() => bindWith(ip))), type === 'udp4' ? 4 : 6)
    }
    return socket
  }

  /**
   * A listen the preload does not bind (port 0, `{ fd }`, a handle...): Node
   * does it, and the socket is not handed over, but the server still counts
   * as one this process serves on: it can make the process ready, SIGHUP
   * upgrades it, and it is drained at the end.
   */
  private passThrough(server: Server, original: Original, args: unknown[]): Server {
    this.servers.add(server)
    server.once('listening', () => this.whenOpen(() => {
      if (this.steppedAside) return
      this.ensureUpgrader()
      this.gate.listenedOutside()
    }))
    return original.apply(server, args) as Server
  }

  /**
   * True if another server (or dgram socket) of this process is serving on
   * this address: the Upgrader would hand out its socket again, where plain
   * Node gets EADDRINUSE. Node then binds it itself, and gets exactly that,
   * since handover's copy of the socket is still bound. Otherwise `owner`
   * becomes the one serving on it: a server closed since (close(), then
   * listen() again) no longer counts, and a new generation starts with none
   * (what it inherits is not a second listen).
   */
  private servedByAnother(owner: Server | DgramSocket, network: string, address: string, packet: boolean): boolean {
    let key: string
    try {
      // The key as the Upgrader's socket table makes it, with its cwd.
      this.ensureUpgrader()
      key = parseAddress(network, address, packet, this.cwd).key
    } catch {
      return false // take() meets the same error, and reports it.
    }
    const current = this.owners.get(key)
    if (current !== undefined && current !== owner && isServing(current)) return true
    this.owners.set(key, owner)
    return false
  }

  /**
   * A Listener from the Upgrader, or undefined to let Node bind it instead.
   * A system error (EADDRINUSE, EACCES...) is Node's to report, exactly as
   * without the preload; anything else is said on stderr, since that socket
   * will not be handed over.
   */
  private take(get: () => Listener, what: string): Listener | undefined {
    try {
      return get()
    } catch (err) {
      const code = (err as HandoverError).code ?? ''
      if (!/^E[A-Z]/.test(code)) {
        process.stderr.write(`handover: ${what} is left to Node and will not be handed over: ${code}: ${(err as Error).message}\n`)
      }
      return undefined
    }
  }

  private sayReady(): void {
    const upgrader = this.upgrader
    if (!upgrader) return
    this.control.then(() => upgrader.ready()).then(this.markReady, (err: HandoverError) => process.stderr.write(`handover: ready() failed: ${err.code}: ${err.message}\n`))
  }

  private retiring?: Promise<void>

  /**
   * A successor is serving, or this last generation was told to stop: drain
   * every server seen, worker threads' too (running the app's onDrain hooks), close the datagram
   * sockets, then let the process exit; if something else keeps it alive,
   * exit anyway once `exitGrace` has passed.
   */
  retire(force?: AbortSignal): Promise<void> {
    this.retiring ??= (async () => {
      const { drainTimeout, exitGrace } = this.settings
      const leaveWindow = this.settings.leaveWindow === undefined ? undefined : Math.min(this.settings.leaveWindow, maxLeaveWindow(drainTimeout))
      const { handOff } = this.settings
      const drains = [...this.servers].filter((s) => s.listening).map((s) => drain(s, { timeout: drainTimeout, signal: force, leaveWindow, handOff }))
      await Promise.all([announceDrainWithin(drainTimeout, leaveWindow ?? 0), ...drains, this.threads.drain(drainTimeout)])
      for (const socket of this.packetSockets) socket.close()
      setTimeout(() => process.exit(process.exitCode ?? 0), exitGrace).unref()
    })()
    return this.retiring
  }
}

/** The socket-table name the control socket is held under: a new generation finds the inherited one by it, whatever its path. */
const CONTROL_SOCKET_NAME = 'handover-control'

/**
 * The control socket `handover status|upgrade [name]` finds (unless
 * HANDOVER_CONTROL_SOCKET=0): HANDOVER_CONTROL_SOCKET's path, else
 * <runtime dir>/<HANDOVER_NAME or the script's name>.sock, with the rules
 * of `handover run`'s (service/control-claim.ts). Loaded and claimed in the
 * background while the app starts; a new generation takes its parent's. A
 * worker of `handover run` has none: the supervisor's is the service's.
 * Never fails the app: what goes wrong is said once on stderr.
 */
function openControlSocket(upgrader: Upgrader, settings: PreloadSettings): Promise<unknown> {
  const { controlSocket, name } = settings
  if (controlSocket === false || upgrader.isSupervised) return Promise.resolve()
  // Said by the first generation only: each new one would say the same.
  const say = (line: string): void => void (upgrader.hasParent || process.stderr.write(`handover: ${line}\n`))
  const claiming = upgrader.claimControl(async (table) => {
    const { claimControlSocket } = await import('../service/control-claim.js')
    return claimControlSocket(table, {
      path: controlSocket,
      name,
      script: process.argv[1] ?? '',
      mode: DEFAULTS.controlSocketMode,
      tableName: CONTROL_SOCKET_NAME,
      noSocket: (err) => say(`no control socket: ${err.code}: ${err.message} (set HANDOVER_NAME or HANDOVER_CONTROL_SOCKET, or HANDOVER_CONTROL_SOCKET=0 for none)`),
      renamed: (wanted, unique) => say(`another server already answers as ${wanted}: this one is ${unique} (set HANDOVER_NAME to choose)`),
      nameTaken: (taken, path) => `another server already answers as ${taken} (${path}): set HANDOVER_NAME to another name`,
    })
  })
  return claiming.then((claimed) => {
    // The last generation's socket file goes when it exits however it does (stop() removes it only without a successor).
    if (claimed) process.once('exit', () => upgrader.stop())
  }, (err: HandoverError) => say(`no control socket: ${err.code ?? 'ERR_UNKNOWN'}: ${err.message}`))
}

/** The Upgrader's own doings, one line each on stderr, as the signals' are. */
function sayEvent(event: UpgraderEvent): void {
  const line = event.type === 'upgrade-queued'
    ? `upgrade queued (${event.waiting} waiting): one follow-up generation starts when the upgrade under way settles`
    : event.type === 'upgrade-passed-on'
      ? `upgrade passed on to pid ${event.pid}, which serves now`
      : 'upgrading: a deploy reached the previous generation while this one started'
  process.stderr.write(`handover: ${line}\n`)
}

function adopt(server: Server, original: Original, listener: Listener, request: ListenRequest): void {
  const target: Record<string, unknown> = listener.fd !== undefined ? { fd: listener.fd } : { handle: listener.handle }
  if (request.signal) target.signal = request.signal
  const args: unknown[] = [target]
  if (request.backlog !== undefined) args.push(request.backlog)
  if (request.callback) args.push(request.callback)
  original.apply(server, args)
  // Node reports an adopted unix socket's address as null; with listen(path) it is the path.
  if (request.kind === 'unix') (server as unknown as { _pipeName?: string })._pipeName = request.path
}

function adoptPacket(socket: DgramSocket, original: Original, listener: Listener, request: PacketRequest): void {
  const args: unknown[] = [{ fd: listener.fd, exclusive: request.exclusive }]
  if (request.callback) args.push(request.callback)
  original.apply(socket, args)
}

function lookup(host: string, callback: (err: Error | null, ip: string, family: number) => void, family?: 4 | 6): void {
  const dns = require('node:dns') as typeof import('node:dns')
  const done = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], fam?: number): void =>
    callback(err, address as string, fam ?? 0)
  if (family === undefined) dns.lookup(host, done)
  else dns.lookup(host, { family }, done)
}


/** The app's onDrain() hooks, bounded by the drain timeout like the drains themselves. */
function announceDrainWithin(ms: number, leaveWindow: number): Promise<void> {
  return withDeadline(announceDrain({ leaveWindow }), { timeout: ms }, 'the onDrain() hooks').catch(() => {})
}

/** A leave window set longer than the drain allows is clamped: said once, when the process starts serving. */
function warnIfClamped({ leaveWindow, leaveWindowSet, drainTimeout }: PreloadSettings): void {
  const max = maxLeaveWindow(drainTimeout)
  if (!leaveWindowSet || leaveWindow === undefined || leaveWindow <= max) return
  process.stderr.write(`handover: HANDOVER_LEAVE_WINDOW=${leaveWindow} is clamped to ${max} ms, 3/4 of the drain timeout (${drainTimeout} ms): long-lived connections must have left before it\n`)
}
