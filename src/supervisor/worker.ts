import type { ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'
import type { PlatformBackend, SpawnRequest } from '../backend/types.js'
import { HandoverError } from '../core/errors.js'
import { ControlChannel, helloMessage, type Message } from '../core/protocol.js'

export type WorkerState = 'starting' | 'ready' | 'draining' | 'exited'

/** `sockets`: every socket the supervisor holds now; later ones are asked for. */
export interface WorkerSpawn extends SpawnRequest {
  backend: PlatformBackend
  generation: number
  readyTimeout: number
  /** Binds (or finds) the socket a worker asks for; returns an fd for it that the caller may close. */
  provideSocket(network: string, address: string): number
  onUpgradeRequest(worker: Worker): void
}

export interface WorkerExit {
  code: number | null
  signal: NodeJS.Signals | null
}

/**
 * One worker process of `handover run`: started with the sockets the
 * supervisor holds, a control channel (hello, ready, drain, upgrade
 * requests) and a socket-request channel. It is in a process group of its
 * own, so signals meant for the service reach the supervisor, which decides.
 */
export class Worker {
  readonly pid: number
  readonly generation: number
  readonly startedAt = Date.now()
  state: WorkerState = 'starting'
  readyAt?: number
  /** Settles once the worker said ready; rejects if it exits or times out first (it is then killed). */
  readonly ready: Promise<void>
  readonly exited: Promise<WorkerExit>
  private readonly child: ChildProcess
  private readonly channel: ControlChannel
  private drainTimer?: NodeJS.Timeout

  private constructor(options: WorkerSpawn, child: ChildProcess, control: Socket, requests: Socket) {
    this.child = child
    this.pid = child.pid as number
    this.generation = options.generation
    this.channel = new ControlChannel(control)
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.state = 'exited'
        clearTimeout(this.drainTimer)
        this.channel.destroy()
        requests.destroy()
        resolve({ code, signal })
      })
    })
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill()
        reject(new HandoverError('ERR_UPGRADE_TIMEOUT', `worker ${this.pid} was not ready within ${options.readyTimeout} ms`, { pid: this.pid }))
      }, options.readyTimeout)
      this.channel.on('message', (m: Message) => {
        if (m.type === 'ready' && this.state === 'starting') {
          clearTimeout(timer)
          this.state = 'ready'
          this.readyAt = Date.now()
          resolve()
        } else if (m.type === 'upgrade-request') {
          options.onUpgradeRequest(this)
        }
      })
      this.channel.on('error', () => this.kill())
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer)
        const how = signal ? `signal ${signal}` : `code ${code}`
        reject(new HandoverError('ERR_CHILD_EXITED', `worker ${this.pid} exited with ${how} before it was ready`, { exitCode: code, signal, pid: this.pid }))
      })
    })
    // Observed by whoever waits on it; never an unhandled rejection here.
    this.ready.catch(() => {})
    serveSocketRequests(requests, options)
  }

  static spawn(options: WorkerSpawn): Worker {
    let spawned
    try {
      spawned = options.backend.spawn({ ...options, worker: true })
    } catch (err) {
      throw new HandoverError('ERR_SPAWN_FAILED', `could not start a worker: ${(err as Error).message}`, { cause: err })
    }
    const { child, control, requests, transfer } = spawned
    if (child.pid === undefined || !control || !requests) {
      child.on('error', () => {})
      if (child.pid !== undefined) child.kill('SIGKILL')
      throw new HandoverError('ERR_SPAWN_FAILED', `could not start a worker with ${options.command}`)
    }
    // Spawn failures after this point arrive as 'exit'.
    child.on('error', () => {})
    const worker = new Worker(options, child, control, requests)
    // Every socket is the supervisor's: no worker removes a unix socket file.
    const sockets = transfer.map((entry) => ({ ...entry, activated: true }))
    void worker.channel.send(helloMessage(sockets))
    return worker
  }

  send(message: Message): void {
    void this.channel.send(message)
  }

  /** Tells the worker to drain and exit; kills it if it is still alive after `timeout` ms. */
  drain(timeout: number): void {
    if (this.state === 'exited' || this.state === 'draining') return
    this.state = 'draining'
    this.send({ type: 'drain' })
    this.drainTimer = setTimeout(() => this.kill(), timeout)
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }
}

/**
 * Answers the worker's socket requests: one JSON line in, one line out with
 * the socket attached (SCM_RIGHTS). The worker blocks until it gets the
 * answer, so requests come one at a time.
 */
function serveSocketRequests(requests: Socket, options: WorkerSpawn): void {
  const fd = (requests as unknown as { _handle?: { fd?: number } })._handle?.fd
  let buffer = ''
  requests.setEncoding('utf8')
  requests.on('error', () => {})
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
        socket = options.provideSocket(request.network, request.address)
        answer = { ok: true }
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
