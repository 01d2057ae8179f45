import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { HandoverError } from '../core/errors.js'
import type { OsSocket, PlatformBackend } from '../core/platform.js'
import type { ConnectionPort } from '../core/connection-port.js'
import type { Message } from '../core/protocol.js'
import { Successor, type SpawnSuccessor, type SuccessorExit, type SuccessorState } from '../core/successor.js'
import type { PosixSpawnRequest } from '../backend/posix.js'

export type WorkerState = SuccessorState

export interface WorkerSpawn extends Omit<PosixSpawnRequest, 'worker'>, Pick<SpawnSuccessor, 'ticketKeys'> {
  backend: PlatformBackend
  generation: number
  /** Its place in the generation, from 0. */
  slot: number
  readyTimeout: number
  /** Aborting it kills a worker that is not ready yet. */
  signal?: AbortSignal
  /** Binds (or finds) the socket a worker asks for; returns an fd for it that the caller may close, its key and its TLS ticket keys. */
  provideSocket(network: string, address: string): { socket: OsSocket; key: string; ticketKeys?: string }
  onUpgradeRequest(worker: Worker, queue: boolean): void
}

/**
 * One worker process of `handover run`: a Successor (the same handshake as
 * the next generation of the API) that serves one slot of one generation,
 * plus the socket-request channel through which its listen() asks the
 * supervisor for an address the supervisor does not hold yet. It is in a
 * process group of its own, so signals meant for the service reach the
 * supervisor, which decides.
 */
export class Worker {
  readonly generation: number
  readonly slot: number
  /** Sockets it asked the supervisor for, by key. */
  readonly requested = new Set<string>()
  /** HTTP requests it has received, as its last pong said (protocol 2, under the preload). */
  requests?: number
  /** HTTP responses its servers finished, and how many were 5xx, as its last pong said. */
  responses?: number
  serverErrors?: number
  /**
   * Its open connections that can be handed over, by socket key, as its
   * last pong said, and corrected since by the router for each one moved
   * to or from it. Undefined from an older release: it is not balanced.
   */
  open?: Record<string, number>
  /**
   * Where it is in a deploy, beside its process state: in the probation of
   * its generation, or kept (paused) after a newer one took over
   * (--keep-old). Status shows it.
   */
  phase?: 'probation' | 'kept'
  /** Those waiting for its next pong (refresh()). */
  private readonly pongWaiters: Array<() => void> = []
  /** Milliseconds its last ping took to be answered: how late its event loop runs. */
  pingRoundTrip?: number
  /** When it was told to drain (Date.now()), for the drain's duration. */
  drainStartedAt?: number
  /** The ping not answered yet: its id and when it was sent (performance.now()). */
  private outstanding?: { id: number; sentAt: number }
  private pings = 0

  private constructor(private readonly successor: Successor, generation: number, slot: number) {
    this.generation = generation
    this.slot = slot
  }

  /** Starts a worker; resolves once it runs, rejects with ERR_SPAWN_FAILED. `ready` tells the rest. */
  static async spawn(options: WorkerSpawn): Promise<Worker> {
    let worker: Worker | undefined
    const successor = await Successor.spawn({
      ...options,
      worker: true,
      label: 'worker',
      // Every socket is the supervisor's: no worker removes a unix socket file.
      sockets: options.sockets.map((s) => ({ ...s, activated: true })),
      onMessage: (m: Message) => {
        if (m.type === 'upgrade-request' && worker) options.onUpgradeRequest(worker, m.queue === true)
        else if (m.type === 'pong' && worker) worker.pong(m.id, m)
      },
    })
    worker = new Worker(successor, options.generation, options.slot)
    const requests = successor.requests
    if (requests) serveSocketRequests(requests, options, worker)
    return worker
  }

  /**
   * The keys of the sockets it serves on: those it kept from the hello, as
   * its ready said, and those it asked for since. Undefined if its ready did
   * not say (a release before protocol 2): it may use any of them.
   */
  get keys(): Set<string> | undefined {
    const kept = this.successor.keys
    return kept && new Set([...kept, ...this.requested])
  }

  get pid(): number {
    return this.successor.pid
  }

  /** Protocol 2, once ready: connections handed to it and by it (connection-router.ts). */
  get connections(): ConnectionPort | undefined {
    return this.successor.connections
  }

  /** The socket keys on which it adopts connections handed over, as its ready said. */
  get adopts(): readonly string[] {
    return this.successor.adopts
  }

  get state(): WorkerState {
    return this.successor.state
  }

  get startedAt(): number {
    return this.successor.startedAt
  }

  get readyAt(): number | undefined {
    return this.successor.readyAt
  }

  /** Settles once the worker said ready; rejects if it exits or times out first (it is then killed and reaped). */
  get ready(): Promise<void> {
    return this.successor.ready
  }

  get exited(): Promise<SuccessorExit> {
    return this.successor.exited
  }

  /** Its stdout and stderr, when it was spawned with `pipeOutput`. */
  get output(): { stdout?: Readable; stderr?: Readable } {
    const child = this.successor.process
    return { stdout: child.stdout ?? undefined, stderr: child.stderr ?? undefined }
  }

  send(message: Message): void {
    this.successor.send(message)
  }

  /**
   * The heartbeat: sends a ping if none is outstanding and the worker can
   * answer one (ready, and a protocol version of 2 or more). Returns how
   * long the outstanding ping has waited (ms), 0 if there is none.
   */
  heartbeat(now = performance.now()): number {
    if (this.state !== 'ready' || this.successor.version < 2) return 0
    if (this.outstanding) return now - this.outstanding.sentAt
    this.outstanding = { id: ++this.pings, sentAt: now }
    this.send({ type: 'ping', id: this.pings })
    return 0
  }

  private pong(id: number, figures: { requests?: number; responses?: number; serverErrors?: number; open?: Record<string, number> }): void {
    if (this.outstanding?.id !== id) return
    this.pingRoundTrip = performance.now() - this.outstanding.sentAt
    this.outstanding = undefined
    if (figures.requests !== undefined) this.requests = figures.requests
    if (figures.responses !== undefined) this.responses = figures.responses
    if (figures.serverErrors !== undefined) this.serverErrors = figures.serverErrors
    if (figures.open !== undefined) this.open = { ...figures.open }
    for (const resolve of this.pongWaiters.splice(0)) resolve()
  }

  /**
   * Its counts as of now: a ping, and its pong (bounded by `timeout` ms).
   * Resolves with whatever is known by then; at once from a worker that
   * does not speak protocol 2.
   */
  async refresh(timeout = 1_000): Promise<void> {
    if (this.state !== 'ready' || this.successor.version < 2) return
    const answered = new Promise<void>((resolve) => this.pongWaiters.push(resolve))
    this.heartbeat()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([answered, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))])
    clearTimeout(timer)
  }

  /** --keep-old: a newer generation serves; stop accepting, hand idle connections over, stay (protocol 2). */
  pause(): void {
    this.phase = 'kept'
    if (this.state === 'ready' && this.successor.version >= 2) this.send({ type: 'pause' })
  }

  /**
   * Balancing: hand `count` idle connections on socket `key` to the other
   * workers. Only to a worker whose pongs count its connections: a release
   * that does not would not know the message.
   */
  shed(key: string, count: number): void {
    if (this.state === 'ready' && this.open !== undefined && count > 0) this.send({ type: 'shed', key, count })
  }

  /** The router moved a connection on `key` to (+1) or from (-1) it: its count until the next pong says. */
  moved(key: string, delta: number): void {
    if (this.open) this.open[key] = Math.max(0, (this.open[key] ?? 0) + delta)
  }

  /** A rollback: serve again. */
  resume(): void {
    this.phase = undefined
    if (this.state === 'ready' && this.successor.version >= 2) this.send({ type: 'resume' })
  }

  /** Tells the worker to drain and exit; kills it if it is still alive after `timeout` ms. */
  drain(timeout: number): void {
    if (this.state === 'exited' || this.state === 'draining') return
    this.drainStartedAt = Date.now()
    this.successor.drain(timeout)
  }

  kill(): void {
    this.successor.kill()
  }

  signal(signal: NodeJS.Signals): void {
    if (this.state !== 'exited') this.successor.process.kill(signal)
  }
}

/**
 * Answers the worker's socket requests: one JSON line in, one line out with
 * the socket attached (SCM_RIGHTS). The worker blocks until it gets the
 * answer, so requests come one at a time.
 */
function serveSocketRequests(requests: Socket, options: WorkerSpawn, worker: Worker): void {
  const fd = (requests as unknown as { _handle?: { fd?: number } })._handle?.fd
  let buffer = ''
  requests.setEncoding('utf8')
  requests.on('error', () => {})
  void worker.exited.then(() => requests.destroy())
  requests.on('data', (chunk: string) => {
    buffer += chunk
    let newline
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      if (fd === undefined || fd < 0) return
      let socket: number | undefined
      let answer: Record<string, unknown>
      try {
        const request = JSON.parse(line) as { type?: string; network?: unknown; address?: unknown }
        if (request.type !== 'socket' || typeof request.network !== 'string' || typeof request.address !== 'string') {
          throw new HandoverError('ERR_PROTOCOL', `a worker asked ${JSON.stringify(line.slice(0, 80))}`)
        }
        const provided = options.provideSocket(request.network, request.address)
        socket = provided.socket
        worker.requested.add(provided.key)
        answer = { ok: true, ...(provided.ticketKeys !== undefined && { ticketKeys: provided.ticketKeys }) }
      } catch (err) {
        const e = err as HandoverError
        answer = { ok: false, code: e.code ?? 'ERR_PROTOCOL', message: e.message }
      }
      try {
        options.backend.sendSocket(fd, `${JSON.stringify(answer)}\n`, socket)
      } catch {
        // The worker has gone; its exit is handled elsewhere.
      } finally {
        if (socket !== undefined) options.backend.close(socket)
      }
    }
    if (buffer.length > 64 * 1024) requests.destroy()
  })
}
