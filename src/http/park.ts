import type { Server } from 'node:net'
import { DEFAULTS } from '../core/options.js'
import { pauseAccepting, resumeAccepting } from './accept-pause.js'
import { connectionsOf, isTlsServer, speaksHttp1 } from './connections.js'
import { HandOver } from './hand-over.js'
import { handOffTargetFor } from './handoff-targets.js'

/**
 * Stops a server accepting without closing it, and hands its idle
 * keep-alive HTTP/1 connections over as drain() does, so that the process
 * serves nothing new but stays, listening socket and all, ready to serve
 * again at once: `handover run --keep-old` keeps a replaced generation so,
 * for a rollback. Requests in flight finish here; a connection that cannot
 * be handed over is served on. Returns the function that undoes it.
 */
export function park(server: Server, idleGrace: number = DEFAULTS.idleGrace): () => void {
  pauseAccepting(server)
  const target = isTlsServer(server) ? undefined : handOffTargetFor(server)
  let poll: NodeJS.Timeout | undefined
  let handOver: HandOver | undefined
  if (target) {
    const connections = connectionsOf(server)
    const sweep = (): void => {
      const now = Date.now()
      for (const socket of connections.accepted) {
        if (speaksHttp1(socket) && !handOver?.isSending(socket)) handOver?.offer(socket, now)
      }
    }
    handOver = new HandOver(target, idleGrace, sweep, () => {})
    handOver.attach(server)
    poll = setInterval(sweep, 100)
    poll.unref()
  }
  let parked = true
  return () => {
    if (!parked) return
    parked = false
    clearInterval(poll)
    handOver?.stop(server)
    resumeAccepting(server)
  }
}
