import { closeSync } from 'node:fs'
import type { OsSocket } from '../core/platform.js'
import type { Worker } from './worker.js'

/**
 * Passes the idle keep-alive connections a draining worker hands over
 * (issue 18) to a worker of the serving generation that adopts connections
 * on their socket, each in turn. The supervisor never reads them: it holds
 * the fd only until the new worker has answered, then closes its copy and
 * tells the old worker, which lets its own go (adopted) or serves it on.
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
      const taker = takers[this.turn++ % takers.length]
      return await (taker.connections?.send(key, fd) ?? false)
    } finally {
      try {
        closeSync(fd)
      } catch {
        // Already closed.
      }
    }
  }
}
