import type { Socket as DgramSocket } from 'node:dgram'
import type { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import type { Server } from 'node:net'
import type { BroadcastChannel as Channel } from 'node:worker_threads'
import { withDeadline } from '../core/deadline.js'
import { HandoverError } from '../core/errors.js'
import { announceDrain } from '../http/drain-hooks.js'
import { drain } from '../http/drain.js'
import { installHooks, type Original } from './hooks.js'
import { readBindArgs, readListenArgs, unixAddress, type ListenRequest } from './listen-args.js'
import { dgramState, isServing } from './socket-state.js'
import { readMessage, THREAD_CHANNEL, type FromThread, type ToThread } from './thread-messages.js'

/** How long a listen() in a thread waits for the main thread's answer before it goes to Node as it is. */
const VERDICT_TIMEOUT = 5_000

type Verdict = Extract<ToThread, { type: 'verdict' }>

/**
 * handover/register in a worker_thread (Node runs --import and --require in
 * every thread). A thread's socket cannot be handed over: the Upgrader, the
 * signals and the next generation belong to the main thread, and a new
 * generation's thread binding the same address gets EADDRINUSE while this
 * process still holds it. So every listen() here goes to Node as it is, but
 * one on a fixed address first asks the main thread, which says so on
 * stderr and refuses SIGHUP upgrades while it listens (threads.ts). The
 * thread's servers are drained with the main thread's at the end.
 */
export function startInThread(): Promise<void> {
  const { threadId } = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads')
  const side = new ThreadSide(threadId)
  installHooks({
    listen: (server, original, args) => side.listen(server, original, args),
    bind: (socket, original, args) => side.bind(socket, original, args),
  })
  return Promise.resolve()
}

class ThreadSide {
  private channel?: Channel
  private seq = 0
  private readonly waiting = new Map<number, (verdict: Verdict) => void>()
  private readonly servers = new Set<Server>()
  private readonly packetSockets = new Set<DgramSocket>()

  constructor(private readonly thread: number) {}

  listen(server: Server, original: Original, args: unknown[]): Server {
    // Already listening: Node throws ERR_SERVER_ALREADY_LISTEN itself.
    if (server.listening) return original.apply(server, args) as Server
    this.servers.add(server)
    const request = readListenArgs(args)
    // Port 0, { fd }, reusePort...: a new socket in every generation, so nothing to refuse.
    if (!request) {
      this.open()
      return original.apply(server, args) as Server
    }
    this.ask(server, describe(request), () => original.apply(server, args))
    return server
  }

  bind(socket: DgramSocket, original: Original, args: unknown[]): DgramSocket {
    const request = readBindArgs(args)
    const state = dgramState(socket)
    this.packetSockets.add(socket)
    if (!request || state.reuseAddr || state.reusePort || isServing(socket)) {
      this.open()
      return original.apply(socket, args) as DgramSocket
    }
    this.ask(socket, `udp ${request.address === '' ? '' : `${request.address} `}port ${request.port}`, () => original.apply(socket, args))
    return socket
  }

  /** Asks the main thread whether `owner` may listen on `what`; then listens, or emits the refusal as the app's 'error'. */
  private ask(owner: Server | DgramSocket, what: string, listen: () => void): void {
    const channel = this.open()
    const id = ++this.seq
    // Keeps the thread alive while it waits: the server itself does not, yet.
    channel.ref()
    const timer = setTimeout(() => settle({ type: 'verdict', thread: this.thread, id, ok: true }, true), VERDICT_TIMEOUT)
    const settle = (verdict: Verdict, timedOut = false): void => {
      clearTimeout(timer)
      this.waiting.delete(id)
      if (this.waiting.size === 0) channel.unref()
      if (timedOut) {
        say(`worker thread ${this.thread}: the main thread did not answer (is handover/register loaded there?); ${what} is left to Node and will not be handed over`)
      }
      if (!verdict.ok) {
        const err = new HandoverError(verdict.code ?? 'ERR_UNSUPPORTED', verdict.message ?? `${what} refused`)
        process.nextTick(() => owner.emit('error', err))
        return
      }
      watchOutcome(owner, () => this.post({ type: 'closed', thread: this.thread, id }))
      owner.once('listening', () => this.post({ type: 'listening', thread: this.thread, id }))
      owner.once('close', () => this.post({ type: 'closed', thread: this.thread, id }))
      listen()
    }
    this.waiting.set(id, settle)
    this.post({ type: 'listen', thread: this.thread, id, what })
  }

  private open(): Channel {
    if (!this.channel) {
      this.channel = new BroadcastChannel(THREAD_CHANNEL)
      this.channel.unref()
      this.channel.onmessage = (event: unknown) => this.onMessage((event as { data: unknown }).data)
      this.post({ type: 'hello', thread: this.thread })
    }
    return this.channel
  }

  private post(message: FromThread): void {
    this.channel?.postMessage(message)
  }

  private onMessage(data: unknown): void {
    const m = readMessage<ToThread>(data, ['verdict', 'drain'])
    if (m?.type === 'verdict' && m.thread === this.thread) this.waiting.get(m.id)?.(m)
    else if (m?.type === 'drain') void this.drainAll(m.timeout)
  }

  /** The main thread is draining: so do this thread's servers and onDrain() hooks; then its dgram sockets close. */
  private async drainAll(timeout: number): Promise<void> {
    const drains = [...this.servers].filter((s) => s.listening).map((s) => drain(s, { timeout }))
    const hooks = withDeadline(announceDrain(), { timeout }, 'the onDrain() hooks').catch(() => {})
    await Promise.all([hooks, ...drains])
    for (const socket of this.packetSockets) {
      try {
        socket.close()
      } catch {
        // Already closed.
      }
    }
    this.post({ type: 'drained', thread: this.thread })
  }
}

/** How a listen is named in handover's lines: `port 8080`, `127.0.0.1 port 8080`, `/run/app.sock`. */
function describe(request: ListenRequest): string {
  if (request.kind === 'unix') return unixAddress(request.path)
  return request.host === '' ? `port ${request.port}` : `${request.host} port ${request.port}`
}

/**
 * Calls `failed` if `owner` emits 'error' before 'listening' (its listen or
 * bind failed), without adding an 'error' listener: one would make an
 * error the app does not handle a handled one.
 */
function watchOutcome(owner: EventEmitter, failed: () => void): void {
  const own = Object.getOwnPropertyDescriptor(owner, 'emit')
  const emit = owner.emit
  owner.emit = function (this: EventEmitter, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error' || event === 'listening') {
      if (own) Object.defineProperty(owner, 'emit', own)
      else delete (owner as { emit?: unknown }).emit
      if (event === 'error') failed()
    }
    return emit.call(this, event, ...args)
  } as EventEmitter['emit']
}

function say(line: string): void {
  process.stderr.write(`handover: ${line}\n`)
}
