import type { ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'
import { Channel } from './channel.js'
import { ConnectionPort } from './connection-port.js'
import { HandoverError } from './errors.js'
import type { PlatformBackend, SpawnRequest } from './platform.js'
import { notHealthy } from './probe-report.js'
import { helloMessage, protocolVersions, type Message, type ProbeMessage } from './protocol.js'

export type SuccessorState = 'starting' | 'ready' | 'draining' | 'exited'

export interface SuccessorExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface SpawnSuccessor extends SpawnRequest {
  backend: PlatformBackend
  /** Milliseconds it has to say ready; then it is killed (ERR_UPGRADE_TIMEOUT). */
  readyTimeout: number
  /** Aborting it before ready kills the process; the reason (a HandoverError) is the rejection. */
  signal?: AbortSignal
  /** How errors name it: 'the new process' (default) or 'worker'. */
  label?: string
  /** TLS session-ticket keys by socket key, for its hello: its TLS servers start with them. */
  ticketKeys?: Record<string, string>
  /** Messages other than ready and refused (a worker's upgrade-request). */
  onMessage?: (message: Message, successor: Successor) => void
}

/**
 * The process a process starts to take over from it: the next generation
 * (the Upgrader has at most one), or a worker (the supervisor has a set per
 * generation). One handshake for both: spawn with the sockets and a channel,
 * say hello, then wait for ready, a refusal, a protocol version this side
 * never offered, an exit, the ready timeout or an abort. On every failure
 * the process is killed and, before `ready` rejects, reaped: no orphan
 * outlives the error.
 */
export class Successor {
  readonly pid: number
  readonly startedAt = Date.now()
  state: SuccessorState = 'starting'
  readyAt?: number
  /** The protocol version it chose. */
  version = 1
  /** The keys of the sockets it kept from the hello, as its ready said; undefined from a release that does not say. */
  keys?: readonly string[]
  /** Protocol 2 over a channel that carries sockets, once ready: connections to hand it, and from it. */
  connections?: ConnectionPort
  /** The keys on which it takes handed-over connections, as its ready said. */
  adopts: readonly string[] = []
  /** Resolves once it said ready; rejects (after it was killed and reaped) if it did not. */
  readonly ready: Promise<void>
  readonly exited: Promise<SuccessorExit>
  private drainTimer?: NodeJS.Timeout
  /** Upgrade requests passed on so far, to number the next. */
  private upgradeRequests = 0
  private onHandshakeMessage = (_m: Message): void => {}
  /** The last failed ready probe the process reported, if any. */
  private lastProbe?: ProbeMessage
  private onProtocolError = (_err: unknown): void => {}

  private constructor(
    readonly process: ChildProcess,
    readonly channel: Channel,
    private readonly options: SpawnSuccessor,
    /** A worker's socket-request channel (the supervisor's end). */
    readonly requests?: Socket,
  ) {
    this.pid = process.pid as number
    this.exited = new Promise((resolve) => {
      if (process.exitCode !== null || process.signalCode !== null) resolve({ code: process.exitCode, signal: process.signalCode })
      else process.once('exit', (code, signal) => resolve({ code, signal }))
    })
    void this.exited.then(() => {
      this.state = 'exited'
      clearTimeout(this.drainTimer)
      channel.destroy()
      requests?.destroy()
    })
    this.ready = this.handshake()
    // Observed by whoever waits on it; never an unhandled rejection here.
    this.ready.catch(() => {})
  }

  /**
   * Starts the process. Resolves once it runs (Node's 'spawn'); rejects with
   * ERR_SPAWN_FAILED if it could not be started. Then `ready` tells the rest.
   */
  static async spawn(options: SpawnSuccessor): Promise<Successor> {
    const what = options.label ?? 'the new process'
    if (options.signal?.aborted) throw options.signal.reason
    let spawned
    try {
      spawned = options.backend.spawn(options)
    } catch (err) {
      throw new HandoverError('ERR_SPAWN_FAILED', `could not start ${what} (${options.command}): ${(err as Error).message}`, { cause: err })
    }
    const { child, channel: transport, transfer, requests } = spawned
    // Node reports a failed spawn (ENOENT, EMFILE...) as 'error' on a later
    // tick, and a started one as 'spawn'; unheard, 'error' would crash this process.
    const failure = await new Promise<Error | undefined>((resolve) => {
      child.once('error', resolve)
      if (child.pid === undefined || !transport) {
        // Out of fds: Node may have given up before it set up the child's stdio, and say so only by 'error'.
        setImmediate(() => resolve(new Error(child.pid === undefined ? 'no process' : 'no channel to it')))
      } else {
        child.once('spawn', () => resolve(undefined))
      }
    })
    child.on('error', () => {})
    if (failure || !transport) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      transport?.destroy()
      requests?.destroy()
      const why = failure?.message ?? 'no channel to it'
      throw new HandoverError('ERR_SPAWN_FAILED', `could not start ${what} (${options.command}): ${why}`, { cause: failure })
    }
    const successor = new Successor(child, new Channel(transport), options, requests)
    // `version` is the lowest: a protocol 1 child demands exactly 1 there.
    void successor.channel.send(helloMessage(transfer, options.ticketKeys))
    return successor
  }

  /** spawn(), then waits for ready; on failure it has been killed and reaped. */
  static async start(options: SpawnSuccessor): Promise<Successor> {
    const successor = await Successor.spawn(options)
    await successor.ready
    return successor
  }

  private get name(): string {
    return `${this.options.label ?? 'the new process'} ${this.pid}`
  }

  private ended(): boolean {
    return this.process.exitCode !== null || this.process.signalCode !== null
  }

  private async handshake(): Promise<void> {
    const { signal, readyTimeout } = this.options
    const { min, max } = protocolVersions
    let timer: NodeJS.Timeout | undefined
    let onAbort = (): void => {}
    const outcome = new Promise<void>((resolve, reject) => {
      const fail = (err: unknown): void => {
        this.kill()
        reject(err)
      }
      void this.exited.then(({ code, signal: how }) => {
        reject(new HandoverError('ERR_CHILD_EXITED', `${this.name} exited with ${how ? `signal ${how}` : `code ${code}`} before it was ready`, {
          exitCode: code, signal: how, pid: this.pid,
        }))
      })
      this.onHandshakeMessage = (message: Message) => {
        if (message.type === 'ready') {
          // Only the first counts.
          if (this.state !== 'starting') return
          // A protocol 1 child says no version: it speaks 1.
          const version = message.version ?? 1
          if (version < min || version > max) {
            return fail(new HandoverError('ERR_PROTOCOL', `${this.name} chose protocol version ${version}, which this one never offered`))
          }
          this.version = version
          this.keys = message.keys
          if (version >= 2 && this.channel.carriesSockets) {
            this.connections = new ConnectionPort(this.channel)
            this.adopts = message.adopts ?? []
          }
          resolve()
        } else if (message.type === 'probe') {
          this.lastProbe = message
        } else if (message.type === 'refused') {
          // Its create() is about to reject: kill it now rather than wait for the app to exit.
          fail(new HandoverError('ERR_INCOMPATIBLE', `${this.name} refused the hand-off: ${message.code}: ${message.message.slice(0, 500)}`, {
            pid: this.pid,
          }))
        } else if (this.options.onMessage) {
          this.options.onMessage(message, this)
        } else if (message.type !== 'connection' && message.type !== 'adopted') {
          fail(new HandoverError('ERR_PROTOCOL', `${this.name} sent an unexpected ${message.type} message`))
        }
      }
      this.channel.on('message', this.onHandshakeMessage)
      // A child that breaks the protocol is killed, before ready or after.
      this.onProtocolError = fail
      this.channel.on('error', fail)
      timer = setTimeout(() => {
        // A process whose ready probe kept failing says so: that, not a bare timeout, is why.
        const probe = this.lastProbe
        fail(probe ? notHealthy(probe.path, { ...probe, ok: false }, readyTimeout, `${this.name}'s ready probe`) : new HandoverError('ERR_UPGRADE_TIMEOUT', `${this.name} was not ready within ${readyTimeout} ms`, { pid: this.pid }))
      }, readyTimeout)
      onAbort = () => fail(signal?.reason)
      if (signal?.aborted) onAbort()
      else signal?.addEventListener('abort', onAbort, { once: true })
    })
    try {
      await outcome
      // stop() in the same tick as "ready": the stop wins, the child goes.
      if (signal?.aborted) throw signal.reason
      this.state = 'ready'
      this.readyAt = Date.now()
    } catch (err) {
      this.kill()
      await this.exited
      throw err
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }

  /**
   * The probation after ready: both processes serve for `ms`, and the caller
   * hands over only if this one is still running then. Rejects with
   * ERR_CHILD_EXITED if it dies first, or with the signal's reason when that
   * aborts; either way it has been killed and reaped.
   */
  async serveProbation(ms: number, signal: AbortSignal): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    let onAbort = (): void => {}
    try {
      await new Promise<void>((resolve, reject) => {
        void this.exited.then(({ code, signal: how }) => {
          reject(new HandoverError('ERR_CHILD_EXITED', `${this.name} exited with ${how ? `signal ${how}` : `code ${code}`} during the ${ms} ms probation after it was ready`, {
            exitCode: code, signal: how, pid: this.pid,
          }))
        })
        // SIGKILL at once, as before ready: stop() followed by process.exit() must leave no child serving.
        onAbort = () => {
          this.kill()
          reject(signal.reason)
        }
        if (signal.aborted) return onAbort()
        signal.addEventListener('abort', onAbort, { once: true })
        timer = setTimeout(resolve, ms)
      })
    } catch (err) {
      this.kill()
      await this.exited
      throw err
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
  }

  send(message: Message): void {
    void this.channel.send(message)
  }

  /** Tells it the hand-off is done: it is the service manager's main process now, and its READY=1 counts. */
  handedOver(): void {
    this.send({ type: 'handed-over' })
  }

  /** Tells it to drain and exit (a worker whose generation is replaced); kills it if it is still alive after `timeout` ms. */
  drain(timeout: number): void {
    if (this.state === 'exited' || this.state === 'draining') return
    this.state = 'draining'
    this.send({ type: 'drain' })
    this.drainTimer = setTimeout(() => this.kill(), timeout)
  }

  /**
   * It serves on its own from now on: this process neither waits for it
   * nor is kept alive by it. The channel stays open, unreferenced, until
   * this process exits, which the successor sees as EOF.
   */
  letGo(): void {
    this.channel.removeListener('message', this.onHandshakeMessage)
    this.channel.removeListener('error', this.onProtocolError)
    // A later protocol error or close must not crash or kill anything.
    this.channel.on('error', () => {})
    this.channel.unref()
    this.process.unref()
  }

  /**
   * Protocol 2, after the hand-off: passes on a deploy that was requested
   * while this successor started (this process no longer serves, so the
   * successor must run it), and resolves with the pid of the generation it
   * started. Keeps this process alive meanwhile.
   */
  async requestUpgrade(): Promise<{ pid: number }> {
    if (this.version < 2) {
      throw new HandoverError('ERR_INCOMPATIBLE', `${this.name} speaks protocol ${this.version}, which cannot take a queued upgrade: ask it directly`)
    }
    if (this.ended()) throw new HandoverError('ERR_CHILD_EXITED', `${this.name} has exited`, { pid: this.pid })
    const release = this.channel.hold()
    let onMessage = (_m: Message): void => {}
    try {
      const result = await new Promise<Message & { type: 'upgrade-result' }>((resolve, reject) => {
        const id = ++this.upgradeRequests
        onMessage = (m) => m.type === 'upgrade-result' && m.id === id && resolve(m)
        this.channel.on('message', onMessage)
        void this.exited.then(({ code, signal }) => reject(new HandoverError('ERR_CHILD_EXITED', `${this.name} exited with ${signal ? `signal ${signal}` : `code ${code}`} before it answered the queued upgrade`, { pid: this.pid })))
        this.send({ type: 'upgrade-request', id })
      })
      if (!result.ok || !result.pids?.length) throw new HandoverError(result.code ?? 'ERR_UNKNOWN', result.message ?? `${this.name} refused the queued upgrade`)
      return { pid: result.pids[0] }
    } finally {
      this.channel.removeListener('message', onMessage)
      release()
    }
  }

  kill(): void {
    if (!this.ended()) this.process.kill('SIGKILL')
  }
}
