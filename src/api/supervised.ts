import type { SocketTable } from '../core/listeners.js'
import type { Parent } from '../core/parent.js'
import { DEFAULTS } from '../core/options.js'
import { park } from '../http/park.js'
import { countResponses } from '../http/response-counts.js'
import { shed } from '../http/shed.js'
import { adopterFor, movableCounts, offerConnections, serversOn } from './connection-handoff.js'

/**
 * What a worker of `handover run` does for the supervisor beyond the
 * generation model: counts its servers' responses for the supervisor's
 * error-rate guard (the pongs carry them; handover/register adds its request
 * count), and, for `--keep-old`, parks its servers when a newer generation
 * serves (they stop accepting and hand their idle connections over, but stay
 * for a rollback) and unparks them at a rollback. For balancing
 * (supervisor/balancer.ts), its pongs count the connections it could hand
 * over, and it sheds as many as the supervisor says.
 */
export class SupervisedWorker {
  private unparks: Array<() => void> = []
  private stopOffering?: () => void
  /** Sheds under way, by socket key: a newer one for the key replaces it. */
  private readonly sheds = new Map<string, () => void>()
  private leaving = false

  constructor(private readonly table: SocketTable, private readonly parent: Parent) {
    const counts = countResponses()
    parent.reportInPong(() => ({ ...counts }))
    parent.onPause(() => this.park(), () => this.unpark())
    // Only where connections can be passed (protocol 2, SCM_RIGHTS): a worker that cannot shed must not be counted on to.
    if (parent.connections) {
      parent.reportInPong(() => (this.leaving || this.unparks.length > 0 ? {} : { open: movableCounts(table) }))
      parent.onShed((key, count) => this.shed(key, count))
    }
  }

  /** The supervisor says drain: parked servers are left to drain(), which closes them. */
  leave(): void {
    this.leaving = true
    for (const stop of [...this.sheds.values()]) stop()
    this.unpark()
  }

  /** Hands `count` idle connections on `key` to the supervisor, which gives them to the least-loaded workers. */
  private shed(key: string, count: number): void {
    this.sheds.get(key)?.()
    const port = this.parent.connections
    const server = adopterFor(this.table, key)
    if (this.leaving || this.unparks.length > 0 || !port || !server) return
    const target = {
      send: (fd: number) => port.send(key, fd),
      get inFlight() {
        return port.inFlight
      },
    }
    const stop = shed(server, count, target, DEFAULTS.shedWindow, () => {
      if (this.sheds.get(key) === stop) this.sheds.delete(key)
    })
    this.sheds.set(key, stop)
  }

  private park(): void {
    if (this.unparks.length > 0) return
    for (const stop of [...this.sheds.values()]) stop()
    if (this.parent.connections) this.stopOffering = offerConnections(this.table, this.parent.connections)
    this.unparks = serversOn(this.table).map((server) => park(server))
  }

  private unpark(): void {
    for (const unpark of this.unparks.splice(0)) unpark()
    this.stopOffering?.()
    this.stopOffering = undefined
  }
}
