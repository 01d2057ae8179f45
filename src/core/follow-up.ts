import { raceDeadline } from './deadline.js'
import { HandoverError } from './errors.js'

/**
 * Deploy requests that arrive while an upgrade is under way, coalesced into
 * one follow-up generation, started once the current one settles: the code
 * on disk at the last request is what serves in the end, and nobody's
 * request is dropped. Every request joined before the follow-up starts gets
 * its result.
 */
export class FollowUp<T> {
  private pending?: { promise: Promise<T>; resolve: (value: T | Promise<T>) => void; reject: (err: unknown) => void; requests: number }

  /** Requests waiting for the follow-up, which has not started yet. */
  get waiting(): number {
    return this.pending?.requests ?? 0
  }

  /**
   * Joins the follow-up; resolves or rejects with its result. The signal
   * ends this wait only (ERR_ABORTED): the follow-up still runs for the rest.
   */
  join(signal?: AbortSignal): Promise<T> {
    if (!this.pending) {
      let resolve!: (value: T | Promise<T>) => void
      let reject!: (err: unknown) => void
      const promise = new Promise<T>((res, rej) => {
        resolve = res
        reject = rej
      })
      // Observed by the joiners; never an unhandled rejection here.
      promise.catch(() => {})
      this.pending = { promise, resolve, reject, requests: 0 }
    }
    this.pending.requests++
    if (!signal) return this.pending.promise
    return raceDeadline(this.pending.promise, {
      signal,
      timedOut: () => undefined,
      aborted: () => new HandoverError('ERR_ABORTED', 'stopped waiting for the queued upgrade', { cause: signal.reason }),
    })
  }

  /** The current upgrade has settled: if anything joined, `start` runs the follow-up, once, for all of them. */
  settle(start: () => Promise<T>): void {
    const pending = this.pending
    if (!pending) return
    this.pending = undefined
    try {
      pending.resolve(start())
    } catch (err) {
      pending.reject(err)
    }
  }
}
