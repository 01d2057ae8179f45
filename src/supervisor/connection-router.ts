import { closeSync } from 'node:fs'
import type { OsSocket } from '../core/platform.js'
import { leastLoaded } from './balance-plan.js'
import type { Worker } from './worker.js'

/**
 * Passes the idle keep-alive connections a worker hands over (issue 18: a
 * draining worker's, or one a balanced worker sheds) to a worker of the
 * serving generation that adopts connections on their socket: the one with
 * the fewest open connections there, as the workers' pongs say (corrected
 * here for each one moved since), or each in turn if any of them does not
 * say (an older release). The supervisor never reads them: it holds the fd
 * only until the new worker has answered, then closes its copy and tells
 * the old worker, which lets its own go (adopted) or serves it on.
 */
export class ConnectionRouter {
  private turn = 0

  constructor(private readonly serving: () => Worker[]) {}

  /** From now on, connections `worker` hands over are routed. */
  attach(worker: Worker): void {
    worker.connections?.onConnection((key, fd) => this.route(worker, key, fd))
  }

  private async route(from: Worker, key: string, fd: OsSocket): Promise<boolean> {
    try {
      const takers = this.serving().filter((w) => w !== from && w.state === 'ready' && w.connections && w.adopts.includes(key))
      if (takers.length === 0) return false
      const taker = leastLoaded(takers, (w) => w.open?.[key]) ?? takers[this.turn++ % takers.length]
      // Counted at once, not on the answer: the next connections, sent
      // meanwhile, must see it, or they would all go to the same worker.
      taker.moved(key, +1)
      const adopted = await (taker.connections?.send(key, fd) ?? false)
      if (adopted) from.moved(key, -1)
      else taker.moved(key, -1)
      return adopted
    } finally {
      try {
        closeSync(fd)
      } catch {
        // Already closed.
      }
    }
  }
}
