import type { ReadyChild } from './child.js'
import { HandoverError } from './errors.js'

/**
 * The probation after a child's ready: both processes accept on the shared
 * sockets for `ms`, and the old one hands over only if the child is still
 * running then. Resolves when the time is up. Rejects with ERR_CHILD_EXITED
 * if the child dies first, or with the signal's reason when it aborts; either
 * way the child has been killed and reaped and its channel closed, so no
 * orphan outlives the error.
 */
export async function serveProbation(child: ReadyChild, ms: number, signal: AbortSignal): Promise<void> {
  const proc = child.process
  const ended = (): boolean => proc.exitCode !== null || proc.signalCode !== null
  const exited = new Promise<void>((resolve) => (ended() ? resolve() : proc.once('exit', () => resolve())))
  let timer: NodeJS.Timeout | undefined
  let onAbort = (): void => {}
  let onExit = (): void => {}
  try {
    await new Promise<void>((resolve, reject) => {
      onExit = () => {
        const how = proc.signalCode ? `signal ${proc.signalCode}` : `code ${proc.exitCode}`
        reject(new HandoverError('ERR_CHILD_EXITED', `the new process ${child.pid} exited with ${how} during the ${ms} ms probation after it was ready`, {
          exitCode: proc.exitCode, signal: proc.signalCode, pid: child.pid,
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
    child.channel.destroy()
    await exited
    throw err
  } finally {
    clearTimeout(timer)
    proc.removeListener('exit', onExit)
    signal.removeEventListener('abort', onAbort)
  }
}
