import type { SocketTable } from '../core/listeners.js'
import type { Parent } from '../core/parent.js'
import { park } from '../http/park.js'
import { countResponses } from '../http/response-counts.js'
import { offerConnections, serversOn } from './connection-handoff.js'

/**
 * What a worker of `handover run` does for the supervisor beyond the
 * generation model: counts its servers' responses for the supervisor's
 * error-rate guard (the pongs carry them; handover/register adds its request
 * count), and, for `--keep-old`, parks its servers when a newer generation
 * serves (they stop accepting and hand their idle connections over, but stay
 * for a rollback) and unparks them at a rollback.
 */
export class SupervisedWorker {
  private unparks: Array<() => void> = []
  private stopOffering?: () => void

  constructor(private readonly table: SocketTable, private readonly parent: Parent) {
    const counts = countResponses()
    parent.reportInPong(() => ({ ...counts }))
    parent.onPause(() => this.park(), () => this.unpark())
  }

  /** The supervisor says drain: parked servers are left to drain(), which closes them. */
  leave(): void {
    this.unpark()
  }

  private park(): void {
    if (this.unparks.length > 0) return
    if (this.parent.connections) this.stopOffering = offerConnections(this.table, this.parent.connections)
    this.unparks = serversOn(this.table).map((server) => park(server))
  }

  private unpark(): void {
    for (const unpark of this.unparks.splice(0)) unpark()
    this.stopOffering?.()
    this.stopOffering = undefined
  }
}
