/** The first restart's delay, its ceiling, and how long a worker must serve before the delay starts over. */
export const FIRST_DELAY = 100
export const MAX_DELAY = 10_000
export const HEALTHY_AFTER = 60_000

/**
 * Backoff for one worker slot: 100 ms, doubling to 10 s while workers keep
 * crashing, and back to 100 ms once one has served 60 s. A crash loop then
 * costs a restart every 10 s, not a busy loop, while a rare crash is
 * repaired at once.
 */
export class RestartPolicy {
  /** Restarts so far, for status. */
  count = 0
  private delay = 0

  /** The delay before the next restart of a worker that became ready at `readyAt` (undefined: never ready). */
  next(readyAt: number | undefined): number {
    if (readyAt !== undefined && Date.now() - readyAt >= HEALTHY_AFTER) this.delay = 0
    this.delay = this.delay === 0 ? FIRST_DELAY : Math.min(this.delay * 2, MAX_DELAY)
    this.count++
    return this.delay
  }
}
