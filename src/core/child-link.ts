import type { ChildProcess } from 'node:child_process'
import type { PlatformBackend, SpawnRequest } from '../backend/types.js'
import { HandoverError } from './errors.js'
import { ControlChannel, helloMessage, protocolVersions, type Message } from './protocol.js'

export interface StartChildOptions extends SpawnRequest {
  backend: PlatformBackend
  timeout: number
  /** Aborting kills the child; the reason (a HandoverError) is the rejection. */
  signal: AbortSignal
  /** Told the child's pid as soon as it is known. */
  onSpawn?: (pid: number) => void
}

/** The link an old generation keeps to the next one it started, once that one said it is ready (see ParentLink for the other end). */
export class ChildLink {
  private constructor(
    readonly pid: number,
    readonly process: ChildProcess,
    /** Held open, unreferenced, until this process exits: the child sees EOF then. */
    readonly channel: ControlChannel,
  ) {}

  /**
   * Starts the next generation and waits until it calls ready(), exits, times
   * out, or the signal aborts. On every failure the child has been killed and
   * reaped before the promise rejects, so no orphan outlives the error.
   */
  static async start(options: StartChildOptions): Promise<ChildLink> {
    const { backend, signal } = options
    const { min, max } = protocolVersions
    if (signal.aborted) throw signal.reason
    let spawned
    try {
      spawned = backend.spawn(options)
    } catch (err) {
      throw new HandoverError('ERR_SPAWN_FAILED', `could not start ${options.command}: ${(err as Error).message}`, { cause: err })
    }
    const { child, transfer } = spawned
    if (child.pid !== undefined) options.onSpawn?.(child.pid)
    // Node emits spawn failures (ENOENT, EMFILE...) as 'error' on the next
    // tick; unheard, that event would crash this process.
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve))
    if (!spawned.control) {
      // Out of fds: Node gave up before it set up the child's stdio.
      const err = await Promise.race([spawnError, new Promise<Error>((r) => setImmediate(() => r(new Error('no control channel'))))])
      if (child.pid !== undefined) child.kill('SIGKILL')
      throw new HandoverError('ERR_SPAWN_FAILED', `could not start ${options.command}: ${err.message}`, { cause: err })
    }
    const channel = new ControlChannel(spawned.control)
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve()
      else child.once('exit', () => resolve())
    })
    // Kill at once, not after an await: stop() followed by process.exit()
    // must not leave a child behind that goes on to serve.
    const killChild = (): void => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }

    let onAbort = (): void => {}
    let timer: NodeJS.Timeout | undefined
    const outcome = new Promise<number>((resolve, reject) => {
      const fail = (err: unknown): void => {
        killChild()
        reject(err)
      }
      void spawnError.then((err) => {
        fail(new HandoverError('ERR_SPAWN_FAILED', `could not start ${options.command}: ${err.message}`, { cause: err }))
      })
      child.once('exit', (exitCode, exitSignal) => {
        const how = exitSignal ? `signal ${exitSignal}` : `code ${exitCode}`
        reject(new HandoverError('ERR_CHILD_EXITED', `the new process ${child.pid} exited with ${how} before it was ready`, {
          exitCode, signal: exitSignal, pid: child.pid,
        }))
      })
      channel.on('message', (message: Message) => {
        if (message.type === 'ready') {
          // A protocol 1 child says no version: it speaks 1.
          const version = message.version ?? 1
          if (version >= min && version <= max) resolve(child.pid as number)
          else fail(new HandoverError('ERR_PROTOCOL', `the new process chose protocol version ${version}, which this one never offered`))
        } else if (message.type === 'refused') {
          // Its create() is about to reject: kill it now rather than wait for the app to exit.
          fail(new HandoverError('ERR_INCOMPATIBLE', `the new process ${child.pid} refused the hand-off: ${message.code}: ${message.message.slice(0, 500)}`, {
            pid: child.pid,
          }))
        } else {
          fail(new HandoverError('ERR_PROTOCOL', `the new process sent an unexpected ${message.type} message`))
        }
      })
      channel.on('error', fail)
      timer = setTimeout(() => {
        fail(new HandoverError('ERR_UPGRADE_TIMEOUT', `the new process ${child.pid} was not ready within ${options.timeout} ms`, {
          pid: child.pid,
        }))
      }, options.timeout)
      onAbort = () => fail(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
    })

    if (child.pid !== undefined) {
      // `version` is the lowest: a protocol 1 child demands exactly 1 there.
      void channel.send(helloMessage(transfer))
    }

    try {
      const pid = await outcome
      // stop() in the same tick as "ready": the stop wins, the child goes.
      if (signal.aborted) throw signal.reason
      // Detach everything that could still kill the child: it is the successor now.
      child.removeAllListeners('exit')
      child.removeAllListeners('error')
      child.on('error', () => {})
      channel.removeAllListeners('message')
      channel.removeAllListeners('error')
      // A later protocol error or close must not crash the old process.
      channel.on('error', () => {})
      channel.unref()
      child.unref()
      return new ChildLink(pid, child, channel)
    } catch (err) {
      killChild()
      channel.destroy()
      if (child.pid !== undefined) await exited
      throw err
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
  }

  /**
   * The probation after the child's ready: both processes accept on the
   * shared sockets for `ms`, and the old one hands over only if the child is
   * still running then. Resolves when the time is up. Rejects with
   * ERR_CHILD_EXITED if the child dies first, or with the signal's reason
   * when it aborts; either way the child has been killed and reaped and its
   * channel closed, so no orphan outlives the error.
   */
  async serveProbation(ms: number, signal: AbortSignal): Promise<void> {
    const proc = this.process
    const ended = (): boolean => proc.exitCode !== null || proc.signalCode !== null
    const exited = new Promise<void>((resolve) => (ended() ? resolve() : proc.once('exit', () => resolve())))
    let timer: NodeJS.Timeout | undefined
    let onAbort = (): void => {}
    let onExit = (): void => {}
    try {
      await new Promise<void>((resolve, reject) => {
        onExit = () => {
          const how = proc.signalCode ? `signal ${proc.signalCode}` : `code ${proc.exitCode}`
          reject(new HandoverError('ERR_CHILD_EXITED', `the new process ${this.pid} exited with ${how} during the ${ms} ms probation after it was ready`, {
            exitCode: proc.exitCode, signal: proc.signalCode, pid: this.pid,
          }))
        }
        if (ended()) return onExit()
        proc.once('exit', onExit)
        // SIGKILL at once, as before ready: stop() followed by process.exit() must leave no child serving.
        onAbort = () => {
          if (!ended()) proc.kill('SIGKILL')
          reject(signal.reason)
        }
        if (signal.aborted) return onAbort()
        signal.addEventListener('abort', onAbort, { once: true })
        timer = setTimeout(resolve, ms)
      })
    } catch (err) {
      if (!ended()) proc.kill('SIGKILL')
      this.channel.destroy()
      await exited
      throw err
    } finally {
      clearTimeout(timer)
      proc.removeListener('exit', onExit)
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** Tells the child the hand-off is done: it is the service manager's main process now, and its READY=1 counts. */
  handedOver(): void {
    void this.channel.send({ type: 'handed-over' })
  }
}
