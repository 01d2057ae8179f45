import type { BroadcastChannel as Channel, Worker } from 'node:worker_threads'
import { withDeadline } from '../core/deadline.js'
import { HandoverError } from '../core/errors.js'
import type { ReadinessGate } from './readiness.js'
import { readMessage, THREAD_CHANNEL, type FromThread, type ToThread } from './thread-messages.js'

/** What the main thread's preload tells ThreadServers about itself. */
export interface ThreadHost {
  readonly gate: ReadinessGate
  /** Settles once the preload has read what this process inherited. */
  opened(): Promise<void>
  /** False when the preload has stepped aside (the app's own Upgrader, a cluster worker): threads are then none of its business. */
  active(): boolean
  /** True under `handover run`, where the supervisor upgrades and no process can refuse. */
  supervised(): boolean
  /** Resolves once no upgrade is under way, with true if this process is on its way out (handed over, or stopped). */
  afterUpgrade(): Promise<boolean>
  /** A server of this process serves: the Upgrader and the signals must be there, as for a listen left to Node. */
  serving(): void
}

/**
 * The main thread's side of worker_threads that listen (in-thread.ts: the
 * thread's side). handover does not hand over a worker thread's socket: the
 * new generation's thread would get EADDRINUSE while this process holds the
 * address, and the port would die with this process. So while a thread
 * listens on a fixed address, SIGHUP upgrades are refused (blocker()), which
 * keeps that port served; it is said on stderr when the thread listens.
 * Under `handover run`, the supervisor upgrades and this process cannot
 * refuse, so there such a listen is refused at once, with ERR_UNSUPPORTED as
 * the server's 'error'. Either way the threads' servers are drained with
 * this process's own (drain()).
 */
export class ThreadServers {
  private channel?: Channel
  /** Listens on fixed addresses, by `${thread} ${id}`: allowed, and not closed yet. */
  private readonly listens = new Map<string, { thread: number; what: string; done: (ok: boolean) => void }>()
  /** Threads that have a server of any kind: drain() waits for each. */
  private readonly serving = new Set<number>()
  private readonly drained = new Map<number, () => void>()

  constructor(private readonly host: ThreadHost) {}

  /** Follows the threads this process starts; the channel opens with the first. */
  watch(): void {
    process.on('worker', (worker: Worker) => {
      this.open()
      const thread = worker.threadId
      worker.once('exit', () => this.forget(thread))
    })
  }

  /** Why an upgrade must not run now, or undefined. */
  blocker(): HandoverError | undefined {
    const live = [...this.listens.values()]
    if (live.length === 0) return undefined
    const which = live.map((l) => `worker thread ${l.thread} on ${l.what}`).join(', ')
    return new HandoverError(
      'ERR_UNSUPPORTED',
      `a server listens in a worker thread (${which}), and handover cannot hand a thread's socket over: the new generation's ` +
        'thread would get EADDRINUSE, and the port would die with this process. Listen in the main thread, or close that server first ' +
        '(docs/preload.md#worker-threads)',
    )
  }

  /** Tells every thread with a server to drain it, and waits for them (at most `timeout` and a second). */
  async drain(timeout: number): Promise<void> {
    if (!this.channel || this.serving.size === 0) return
    const waits = [...this.serving].map((thread) => new Promise<void>((resolve) => this.drained.set(thread, resolve)))
    this.post({ type: 'drain', timeout })
    await withDeadline(Promise.all(waits), { timeout: timeout + 1_000 }, 'the worker threads to drain').catch(() => {})
  }

  private open(): void {
    if (this.channel) return
    this.channel = new BroadcastChannel(THREAD_CHANNEL)
    // The workers keep the process alive, not this.
    this.channel.unref()
    this.channel.onmessage = (event: unknown) => this.onMessage((event as { data: unknown }).data)
  }

  private post(message: ToThread): void {
    this.channel?.postMessage(message)
  }

  private onMessage(data: unknown): void {
    const m = readMessage<FromThread>(data, ['hello', 'listen', 'listening', 'closed', 'drained'])
    if (!m || !Number.isInteger(m.thread)) return
    if (m.type === 'hello') this.serving.add(m.thread)
    else if (m.type === 'listen') void this.judge(m)
    else if (m.type === 'listening') this.listens.get(`${m.thread} ${m.id}`)?.done(true)
    else if (m.type === 'closed') this.close(`${m.thread} ${m.id}`)
    else this.drained.get(m.thread)?.()
  }

  private async judge({ thread, id, what }: { thread: number; id: number; what: string }): Promise<void> {
    this.serving.add(thread)
    const reply = (ok: boolean, code?: string, message?: string): void => this.post({ type: 'verdict', thread, id, ok, code, message })
    await this.host.opened()
    if (!this.host.active()) return reply(true)
    if (this.host.supervised()) {
      return reply(false, 'ERR_UNSUPPORTED',
        `worker thread ${thread} cannot listen on ${what} under handover run: a worker thread's socket cannot be passed on to the ` +
        "next generation, nor shared with the other workers; listen in the main thread (docs/preload.md#worker-threads)")
    }
    // An upgrade under way was judged without this listen: wait for its outcome.
    if (await this.host.afterUpgrade()) {
      return reply(false, 'ERR_ALREADY_UPGRADED', `worker thread ${thread} cannot listen on ${what}: this process has handed over or is stopping`)
    }
    this.listens.set(`${thread} ${id}`, { thread, what, done: this.host.gate.listenStarted() })
    this.host.serving()
    process.stderr.write(
      `handover: worker thread ${thread} listens on ${what}, which handover does not hand over: SIGHUP upgrades are refused ` +
        'while it listens (docs/preload.md#worker-threads)\n',
    )
    reply(true)
  }

  private close(key: string): void {
    this.listens.get(key)?.done(false)
    this.listens.delete(key)
  }

  /** A thread that exited serves nothing, and drains nothing. */
  private forget(thread: number): void {
    for (const [key, listen] of this.listens) if (listen.thread === thread) this.close(key)
    this.serving.delete(thread)
    this.drained.get(thread)?.()
  }
}
