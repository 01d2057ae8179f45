import { planShedding } from './balance-plan.js'
import type { Worker } from './worker.js'

/**
 * Balances the connections of the serving workers of `handover run`
 * (issue 18 part 3). All workers accept from the supervisor's one listening
 * socket, and with long-lived keep-alive connections whoever happened to
 * accept first keeps them: one worker may serve 1.4 times its share for as
 * long as those clients stay. So, every `interval` ms: each worker counts
 * its open connections that can move (plain HTTP/1) in a pong, planShedding()
 * names the ones clearly over their fair share, and each of those is told to
 * shed the excess: it hands that many idle keep-alive connections over,
 * between two requests, through the same machinery as a drain (HandOver:
 * nothing is read from a connection once it is found idle, so no request is
 * lost), and the ConnectionRouter gives each to the least-loaded worker.
 *
 * Why this and not the others: an accept mutex or SO_REUSEPORT only decide
 * who accepts a new connection; with keep-alive clients the imbalance is in
 * the connections accepted long ago, which neither can move (and
 * SO_REUSEPORT's per-socket queues lose the queued connections of a worker
 * that exits unless tcp_migrate_req is set, which is Linux-only and off by
 * default). Moving idle connections fixes what is already skewed, costs
 * nothing per request (one ping per worker per interval, and a few fds
 * passed when a worker is over), and reuses a path that is already tested
 * not to lose a request.
 *
 * It does nothing while an upgrade or a replacement is under way (the
 * drain moves connections then), for a worker that does not count its
 * connections (an older release), and for connections that cannot move
 * (TLS, HTTP/2, WebSocket): those are not counted either.
 */
export class Balancer {
  private readonly timer: NodeJS.Timeout
  private busy = false

  constructor(private readonly o: {
    /** The serving workers (one per slot). */
    workers: () => Worker[]
    /** True while the workers must be left alone: an upgrade, a replacement, the stop. */
    busy: () => boolean
    /** ms between looks. */
    interval: number
  }) {
    this.timer = setInterval(() => void this.run(), o.interval)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private async run(): Promise<void> {
    if (this.busy || this.o.busy()) return
    this.busy = true
    try {
      const ready = (): Worker[] => this.o.workers().filter((w) => w.state === 'ready' && w.phase === undefined)
      const workers = ready()
      if (workers.length < 2) return
      // Counts as of now, not as of the monitor's last ping: bounded, a late worker is judged on what it said last.
      await Promise.all(workers.map((w) => w.refresh(this.o.interval / 2)))
      if (this.o.busy()) return
      balance(ready())
    } finally {
      this.busy = false
    }
  }
}

/** Tells each worker over its fair share on some socket to shed the excess there. */
export function balance(workers: readonly Worker[]): void {
  // A worker that does not count (an older release) may hold any number:
  // no fair share can be known, so nothing moves.
  if (workers.length < 2 || workers.some((w) => w.open === undefined)) return
  const keys = new Set(workers.flatMap((w) => Object.keys(w.open ?? {})))
  for (const key of keys) {
    // Only the workers that adopt on this socket can take a connection from it.
    const sharing = workers.filter((w) => w.adopts.includes(key))
    const plan = planShedding(sharing.map((w) => ({ id: w, open: w.open?.[key] ?? 0 })))
    for (const { id: worker, count } of plan) worker.shed(key, count)
  }
}
