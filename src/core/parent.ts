import type { BindSpec } from './address.js'
import { Channel } from './channel.js'
import { ConnectionPort } from './connection-port.js'
import { raceDeadline, type Deadline } from './deadline.js'
import { HandoverError } from './errors.js'
import { DEFAULTS } from './options.js'
import type { OsSocket, PlatformBackend } from './platform.js'
import {
  chooseVersion, isTicketKeys, MAX_HELLO_LINE, MAX_LINE, protocolVersions, type HelloMessage, type Message, type TransferEntry, type UpgradeResultMessage,
} from './protocol.js'

/**
 * What a process that handover started talks to: the previous generation
 * (which started it with upgrade()), or the supervisor (`handover run`,
 * which started it as a worker). Both send the sockets in a hello and wait
 * for ready; what differs is said as capabilities, so that the Upgrader
 * asks what it can do rather than which kind of parent it has.
 */
export interface Parent {
  readonly pid: number
  /** The sockets it passed, as its hello described them. */
  readonly sockets: TransferEntry[]
  /** The protocol version chosen from its hello. */
  readonly version: number
  /**
   * TLS session-ticket keys (base64) by socket key, from its hello (and, from
   * the supervisor, with each socket it binds for this process): a TLS
   * server here on that socket starts with them. Empty from older releases.
   */
  readonly ticketKeys: ReadonlyMap<string, string>
  readonly hasExited: boolean
  /** Resolves when it has exited (EOF on the channel). */
  readonly exited: Promise<void>
  /** Resolves when it says it handed over (it made this process the service's main one), or has exited. */
  readonly handedOver: Promise<void>
  /** True once it handed over or exited: it serves no more (it may still drain), and this process may start the next generation. */
  readonly hasHandedOver: boolean
  /** Resolves when it tells this process to leave (a newer generation serves), or has gone; never, for a previous generation. */
  readonly leave: Promise<void>
  /** True if it keeps the service's pid file (the supervisor): this process then writes none. */
  readonly keepsPidFile: boolean
  /**
   * Protocol 2 over a channel that carries sockets: connections it hands to
   * this process (a previous generation's or another worker's idle ones),
   * and, from a worker to the supervisor, the ones this process hands on.
   */
  readonly connections?: ConnectionPort
  /**
   * Tells it this process serves, on the sockets with these keys, and takes
   * connections handed over on those in `adopts`; a parent that has already
   * gone is fine.
   */
  sendReady(keys: string[], adopts?: string[]): Promise<void>
  /** Protocol 2: tells it the ready probe failed (it is retried): its ready timeout then says why. */
  reportProbe(outcome: { path: string; status?: number; body?: string; error?: string }): void
  /** Resolves once it has exited, keeping this process alive meanwhile; rejects as the deadline says. */
  waitForExit(deadline: Deadline): Promise<void>
  /** Resolves once it has handed over (or exited), keeping this process alive meanwhile; rejects as the deadline says. */
  waitForHandOff(deadline: Deadline): Promise<void>
  /**
   * Who answers a deploy the parent passes on (protocol 2): one that was
   * requested while this process was starting, and so could not be run by
   * the parent, which no longer serves.
   */
  onUpgradeRequest(handler: () => Promise<{ pid: number }>): void
  /**
   * What this process adds to each pong (protocol 2; each call adds to the others): figures only it knows,
   * such as the requests its servers received. Pongs are answered whether
   * or not this is called.
   */
  reportInPong(report: () => PongFigures): void
  /**
   * Who stops serving when the parent says pause (`handover run
   * --keep-old`: a newer generation serves, this one stays for a rollback),
   * and serves again when it says resume.
   */
  onPause(pause: () => void, resume: () => void): void
  /** Who hands `count` idle connections on socket `key` over when the supervisor says shed (balancing across workers). */
  onShed(shed: (key: string, count: number) => void): void
  /**
   * Present if the parent starts the next generation itself (the supervisor,
   * for all its workers at once): upgrade() asks it. Absent: this process
   * starts its own successor.
   */
  upgrade?(queue: boolean): Promise<{ pid: number; pids: number[] }>
  /**
   * Present if the parent binds sockets this process asks for (the
   * supervisor holds every listening socket, so that one accept queue per
   * address outlives every worker). Absent: this process binds its own.
   */
  bind?(spec: BindSpec): OsSocket
}

/** What a worker adds to its pongs: counts only it knows. */
export interface PongFigures {
  requests?: number
  responses?: number
  serverErrors?: number
  /** Open connections that could be handed over, by socket key (balancing). */
  open?: Record<string, number>
}

/** Opens the inherited channel and waits for the parent's hello; `requestFd` is set for a worker of `handover run`. */
export async function connectParent(backend: PlatformBackend, channelFd: number, requestFd: number | undefined, timeout: number): Promise<Parent> {
  const { channel, hello, version } = await greet(backend, channelFd, timeout)
  return requestFd === undefined
    ? new ParentLink(channel, hello, version)
    : new SupervisorParent(channel, hello, version, backend, requestFd)
}

/**
 * Waits for the hello. Everything that can be wrong with it is
 * ERR_BAD_INHERITANCE, except a parent with no protocol version in common:
 * ERR_INCOMPATIBLE, which is also sent to the parent (a 'refused' line) so
 * that its upgrade() says why.
 */
async function greet(backend: PlatformBackend, channelFd: number, timeout: number): Promise<{ channel: Channel; hello: HelloMessage; version: number }> {
  const channel = new Channel(backend.openChannel(channelFd), MAX_HELLO_LINE)
  let timer: NodeJS.Timeout | undefined
  try {
    const hello = await new Promise<HelloMessage>((resolve, reject) => {
      const bad = (why: string, cause?: unknown): void =>
        reject(new HandoverError('ERR_BAD_INHERITANCE', `bad channel from the parent: ${why}`, { cause }))
      channel.on('message', (m: Message) => (m.type === 'hello' ? resolve(m) : bad(`expected hello, got ${m.type}`)))
      channel.on('error', (err: Error) => bad(err.message, err))
      channel.once('close', () => bad('it closed before the parent said hello'))
      timer = setTimeout(() => bad(`no hello within ${timeout} ms`), timeout)
    })
    channel.removeAllListeners()
    channel.limitLines(MAX_LINE)
    let version: number
    try {
      version = chooseVersion(hello, protocolVersions)
    } catch (err) {
      const { code, message } = err as HandoverError
      // Bounded, so that a refusal never hangs create(); a parent gone meanwhile is fine.
      let bound: NodeJS.Timeout | undefined
      await Promise.race([channel.send({ type: 'refused', code, message }), new Promise((r) => (bound = setTimeout(r, 1000)))])
      clearTimeout(bound)
      throw err
    }
    return { channel, hello, version }
  } catch (err) {
    channel.removeAllListeners()
    channel.destroy()
    throw err
  } finally {
    clearTimeout(timer)
  }
}

/** The previous generation, which started this one with upgrade(). */
class ParentLink implements Parent {
  readonly pid: number
  readonly sockets: TransferEntry[]
  readonly ticketKeys: Map<string, string>
  readonly exited: Promise<void>
  readonly handedOver: Promise<void>
  readonly leave: Promise<void> = new Promise(() => {})
  readonly keepsPidFile: boolean = false
  readonly connections?: ConnectionPort
  private exitedFlag = false
  private handedOverFlag = false
  private upgradeHandler?: () => Promise<{ pid: number }>
  /** What each part of this process adds to a pong (the preload's request count, the response counts). */
  private readonly pongReports: Array<() => PongFigures> = []

  constructor(protected readonly channel: Channel, hello: HelloMessage, readonly version: number) {
    this.pid = hello.parentPid
    this.sockets = hello.sockets
    this.ticketKeys = new Map(Object.entries(hello.ticketKeys ?? {}))
    if (version >= 2 && channel.carriesSockets) this.connections = new ConnectionPort(channel)
    this.exited = new Promise((resolve) => {
      const done = (): void => {
        this.exitedFlag = true
        resolve()
      }
      if (channel.closed) done()
      else channel.once('close', done)
    })
    this.handedOver = this.when('handed-over')
    // Set in the turn the line is read, not a microtask later: the parent
    // passes a deploy on right after it, and read in one chunk, the request
    // is handled in the same turn and must find this generation handed over.
    channel.on('message', (m: Message) => m.type === 'handed-over' && (this.handedOverFlag = true))
    channel.on('message', (m: Message) => m.type === 'upgrade-request' && this.answerUpgradeRequest(m.id))
    // The heartbeat: answered from this event loop, so a blocked loop answers late or never.
    channel.on('message', (m: Message) => m.type === 'ping' && this.pong(m.id))
    // Anything the parent says that this release does not know, or a broken line, can only be ignored.
    channel.on('error', () => {})
    channel.unref()
  }

  get hasExited(): boolean {
    return this.exitedFlag
  }

  get hasHandedOver(): boolean {
    return this.handedOverFlag || this.exitedFlag
  }

  onUpgradeRequest(handler: () => Promise<{ pid: number }>): void {
    this.upgradeHandler = handler
  }

  reportInPong(report: () => PongFigures): void {
    this.pongReports.push(report)
  }

  onPause(pause: () => void, resume: () => void): void {
    this.channel.on('message', (m: Message) => {
      if (m.type === 'pause') pause()
      else if (m.type === 'resume') resume()
    })
  }

  onShed(shed: (key: string, count: number) => void): void {
    this.channel.on('message', (m: Message) => m.type === 'shed' && shed(m.key, m.count))
  }

  private pong(id: number): void {
    let figures: PongFigures = {}
    for (const report of this.pongReports) {
      try {
        figures = { ...figures, ...report() }
      } catch {
        // A figure that cannot be read is left out; the pong itself is what counts.
      }
    }
    const counts: PongFigures = {}
    for (const key of ['requests', 'responses', 'serverErrors'] as const) {
      const value = figures[key]
      if (Number.isSafeInteger(value) && (value as number) >= 0) counts[key] = value
    }
    if (figures.open) counts.open = figures.open
    void this.channel.send({ type: 'pong', id, ...counts })
  }

  /** Runs the deploy the parent passed on and tells it how it went, keeping this process alive meanwhile. */
  private answerUpgradeRequest(id: number | undefined): void {
    const handler = this.upgradeHandler
    const release = this.channel.hold()
    const run = handler ? handler() : Promise.reject(new HandoverError('ERR_UNSUPPORTED', 'this process takes no upgrade requests'))
    void run.then(
      ({ pid }) => this.channel.send({ type: 'upgrade-result', id, ok: true, pids: [pid] }),
      (err: HandoverError) => this.channel.send({ type: 'upgrade-result', id, ok: false, code: err?.code ?? 'ERR_UNKNOWN', message: err?.message ?? String(err) }),
    ).finally(release)
  }

  /** Resolves when the parent says `type`, or has exited. */
  protected when(type: Message['type']): Promise<void> {
    return new Promise((resolve) => {
      this.channel.on('message', (m: Message) => m.type === type && resolve())
      void this.exited.then(resolve)
    })
  }

  waitForExit(deadline: Deadline): Promise<void> {
    return raceDeadline(this.exited, deadline).finally(this.channel.hold())
  }

  waitForHandOff(deadline: Deadline): Promise<void> {
    return raceDeadline(this.handedOver, deadline).finally(this.channel.hold())
  }

  reportProbe(outcome: { path: string; status?: number; body?: string; error?: string }): void {
    if (this.version < 2) return
    const { path, status, body, error } = outcome
    void this.channel.send({ type: 'probe', path, status, body, error })
  }

  sendReady(keys: string[], adopts?: string[]): Promise<void> {
    // Protocol 1 parents ignore both lists.
    return this.channel.send({ type: 'ready', pid: process.pid, version: this.version, keys, ...(this.connections && adopts && { adopts }) })
  }
}

/**
 * The supervisor of `handover run`. It starts every generation (upgrade()
 * asks it), tells this worker when to drain (`leave`), and binds the
 * sockets the worker asks for over a second channel (`bind`).
 */
class SupervisorParent extends ParentLink {
  override readonly leave: Promise<void>
  override readonly keepsPidFile = true
  private upgradeWaiter?: (result: UpgradeResultMessage) => void

  constructor(channel: Channel, hello: HelloMessage, version: number, private readonly backend: PlatformBackend, private readonly requestFd: number) {
    super(channel, hello, version)
    this.leave = this.when('drain')
    channel.on('message', (m: Message) => m.type === 'upgrade-result' && this.answerUpgrade(m))
    void this.exited.then(() => this.answerUpgrade({ type: 'upgrade-result', ok: false, code: 'ERR_STOPPED', message: 'the supervisor has gone' }))
  }

  /**
   * Asks for a new generation and waits for the answer, keeping the
   * process alive meanwhile. One at a time; the supervisor's own checks
   * (ERR_UPGRADE_IN_PROGRESS, unless `queue`) apply.
   */
  async upgrade(queue: boolean): Promise<{ pid: number; pids: number[] }> {
    if (this.upgradeWaiter) throw new HandoverError('ERR_UPGRADE_IN_PROGRESS', 'this worker already asked for an upgrade')
    if (this.hasExited) throw new HandoverError('ERR_STOPPED', 'the supervisor has gone')
    const answer = new Promise<UpgradeResultMessage>((resolve) => (this.upgradeWaiter = resolve))
    const release = this.channel.hold()
    let result: UpgradeResultMessage
    try {
      await this.channel.send({ type: 'upgrade-request', ...(queue && { queue }) })
      result = await answer
    } finally {
      release()
    }
    if (!result.ok || !result.pids?.length) {
      throw new HandoverError(result.code ?? 'ERR_SUPERVISOR', result.message ?? 'the supervisor refused the upgrade')
    }
    return { pid: result.pids[0], pids: result.pids }
  }

  private answerUpgrade(result: UpgradeResultMessage): void {
    const waiter = this.upgradeWaiter
    this.upgradeWaiter = undefined
    waiter?.(result)
  }

  /**
   * The supervisor's socket for `spec`: it binds it once and sends the same
   * socket to every worker that asks. Blocks, bounded: listen() is
   * synchronous in Node, and the answer comes from another process, which
   * is not waiting on this one.
   */
  bind(spec: BindSpec): OsSocket {
    const request = { type: 'socket', network: spec.network, address: spec.requested }
    let answer: { line: string; socket?: OsSocket }
    try {
      answer = this.backend.requestSocket(this.requestFd, `${JSON.stringify(request)}\n`, DEFAULTS.socketRequestTimeout)
    } catch (err) {
      const e = err as { syscall?: string; message?: string }
      throw new HandoverError('ERR_SUPERVISOR', `the supervisor did not answer the request for ${spec.network} ${spec.requested}: ${e.syscall ?? ''} ${e.message ?? String(err)}`, { cause: err })
    }
    let reply: { ok?: boolean; code?: string; message?: string; ticketKeys?: unknown }
    try {
      reply = JSON.parse(answer.line) as typeof reply
    } catch {
      // Never a piece of the ticket keys in an error.
      const shown = answer.line.slice(0, 80).replace(/("ticketKeys":)".*/, '$1(not shown)')
      reply = { ok: false, code: 'ERR_PROTOCOL', message: `the supervisor answered ${JSON.stringify(shown)}` }
    }
    if (reply.ok === true && answer.socket !== undefined) {
      // The supervisor's TLS session-ticket keys for this socket, the same for every worker.
      if (reply.ticketKeys === undefined || isTicketKeys(reply.ticketKeys)) {
        if (reply.ticketKeys !== undefined) this.ticketKeys.set(spec.key, reply.ticketKeys)
        return answer.socket
      }
      reply = { ok: false, code: 'ERR_PROTOCOL', message: `the supervisor sent malformed TLS ticket keys for ${spec.network} ${spec.requested}` }
    }
    if (answer.socket !== undefined) this.backend.close(answer.socket)
    throw new HandoverError(reply.code ?? 'ERR_PROTOCOL', reply.message ?? 'the supervisor sent no socket')
  }
}
