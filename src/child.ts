import type { ChildProcess } from 'node:child_process'
import type { OutgoingSocket, PlatformBackend } from './backend/types.js'
import { HandoverError } from './errors.js'
import { ControlChannel, PROTOCOL_VERSION, type Message } from './protocol.js'

export interface StartChildOptions {
  backend: PlatformBackend
  command: string
  args: string[]
  cwd: string
  env: NodeJS.ProcessEnv
  sockets: OutgoingSocket[]
  timeout: number
  /** Aborting kills the child; the reason (a HandoverError) is the rejection. */
  signal: AbortSignal
}

/** A next generation that said it is ready. */
export interface ReadyChild {
  pid: number
  process: ChildProcess
  /** Held open, unreferenced, until this process exits: the child sees EOF then. */
  channel: ControlChannel
}

/**
 * Starts the next generation and waits until it calls ready(), exits, times
 * out, or the signal aborts. On every failure the child has been killed and
 * reaped before the promise rejects, so no orphan outlives the error.
 */
export async function startChild(options: StartChildOptions): Promise<ReadyChild> {
  const { backend, signal } = options
  if (signal.aborted) throw signal.reason
  let spawned
  try {
    spawned = backend.spawn(options)
  } catch (err) {
    throw new HandoverError('ERR_SPAWN_FAILED', `could not start ${options.command}: ${(err as Error).message}`, { cause: err })
  }
  const { child, transfer } = spawned
  const channel = new ControlChannel(spawned.control)
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })

  let onAbort = (): void => {}
  let timer: NodeJS.Timeout | undefined
  const outcome = new Promise<number>((resolve, reject) => {
    child.once('error', (err) => {
      reject(new HandoverError('ERR_SPAWN_FAILED', `could not start ${options.command}: ${err.message}`, { cause: err }))
    })
    child.once('exit', (exitCode, exitSignal) => {
      const how = exitSignal ? `signal ${exitSignal}` : `code ${exitCode}`
      reject(new HandoverError('ERR_CHILD_EXITED', `the new process ${child.pid} exited with ${how} before it was ready`, {
        exitCode, signal: exitSignal, pid: child.pid,
      }))
    })
    channel.on('message', (message: Message) => {
      if (message.type === 'ready') resolve(child.pid as number)
      else reject(new HandoverError('ERR_PROTOCOL', `the new process sent an unexpected ${message.type} message`))
    })
    channel.on('error', reject)
    timer = setTimeout(() => {
      reject(new HandoverError('ERR_UPGRADE_TIMEOUT', `the new process ${child.pid} was not ready within ${options.timeout} ms`, {
        pid: child.pid,
      }))
    }, options.timeout)
    onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
  })

  if (child.pid !== undefined) {
    void channel.send({ type: 'hello', version: PROTOCOL_VERSION, parentPid: process.pid, sockets: transfer })
  }

  try {
    const pid = await outcome
    // stop() in the same tick as "ready": the stop wins, the child goes.
    if (signal.aborted) throw signal.reason
    child.removeAllListeners('exit')
    child.removeAllListeners('error')
    channel.removeAllListeners('message')
    channel.removeAllListeners('error')
    // A later protocol error or close must not crash the old process.
    channel.on('error', () => {})
    channel.unref()
    child.unref()
    return { pid, process: child, channel }
  } catch (err) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    channel.destroy()
    if (child.pid !== undefined) await exited
    throw err
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
  }
}
