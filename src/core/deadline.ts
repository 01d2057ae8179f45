import { HandoverError } from './errors.js'
import type { WaitOptions } from './options.js'

export interface Deadline {
  /** Milliseconds; none if undefined. */
  timeout?: number
  signal?: AbortSignal
  /** The rejection when the time runs out. */
  timedOut: () => unknown
  /** The rejection when the signal aborts (also when it already has). */
  aborted: () => unknown
}

/**
 * Settles as `promise` does, unless the deadline's time runs out or its
 * signal aborts first. Its timer and abort listener go as soon as it has
 * settled, whichever way.
 */
export function raceDeadline<T>(promise: Promise<T>, deadline: Deadline): Promise<T> {
  const { timeout, signal } = deadline
  if (signal?.aborted) return Promise.reject(deadline.aborted())
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined
    let done = false
    const finish = (settle: () => void): void => {
      // Once: the promise may settle after the timer or the abort has.
      if (done) return
      done = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      settle()
    }
    const onAbort = (): void => finish(() => reject(deadline.aborted()))
    if (timeout !== undefined) timer = setTimeout(() => finish(() => reject(deadline.timedOut())), timeout)
    signal?.addEventListener('abort', onAbort, { once: true })
    promise.then((v) => finish(() => resolve(v)), (e) => finish(() => reject(e)))
  })
}

/** The deadline of a wait with the public options (timeout, signal): ERR_TIMEOUT or ERR_ABORTED, naming what was awaited. */
export function waitDeadline(options: WaitOptions, what: string): Deadline {
  const { signal, timeout } = options ?? {}
  return {
    timeout,
    signal,
    timedOut: () => new HandoverError('ERR_TIMEOUT', `timed out after ${timeout} ms waiting for ${what}`),
    aborted: () => new HandoverError('ERR_ABORTED', `stopped waiting for ${what}`, { cause: signal?.reason }),
  }
}

/** Races a promise against the public wait options (timeout, signal). */
export function withDeadline<T>(promise: Promise<T>, options: WaitOptions, what: string): Promise<T> {
  return raceDeadline(promise, waitDeadline(options, what))
}

/**
 * Aborts when stop() or the caller's signal does; the caller's reason
 * becomes ERR_ABORTED. (AbortSignal.any needs Node 20.3.)
 */
export function eitherSignal(stop: AbortSignal, caller: AbortSignal): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController()
  const fromCaller = (): void => controller.abort(new HandoverError('ERR_ABORTED', 'the upgrade was aborted', { cause: caller.reason }))
  const fromStop = (): void => controller.abort(stop.reason)
  const release = (): void => {
    caller.removeEventListener('abort', fromCaller)
    stop.removeEventListener('abort', fromStop)
  }
  if (caller.aborted) fromCaller()
  else if (stop.aborted) fromStop()
  else {
    caller.addEventListener('abort', fromCaller, { once: true })
    stop.addEventListener('abort', fromStop, { once: true })
  }
  return { signal: controller.signal, release }
}
