import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Server, Socket } from 'node:net'
import { connectionsOf, speaksHttp1 } from './connections.js'
import { HandOver } from './hand-over.js'
import type { HandOffTarget } from './handoff-targets.js'

/**
 * Hands up to `count` of a plain HTTP/1 server's keep-alive connections to
 * `target`, for balancing across the workers of `handover run`
 * (supervisor/balancer.ts), while the server goes on serving the rest:
 * connections idle now at once, busy ones the moment their response has
 * gone out (a back-to-back client has sent nothing since: it is waiting for
 * that response). HandOver does the moving, as in a drain: a connection is
 * detached only once nothing is read from it and unparsed, and one the
 * target declines is taken back and served on here. Unlike a drain, a
 * connection that does not come idle is simply left (no `Connection: close`),
 * and it stops after `window` ms or once `count` have gone. Returns the
 * function that stops it early (a newer shed, a drain).
 */
export function shed(server: Server, count: number, target: HandOffTarget, window: number, onDone: () => void = () => {}): () => void {
  const connections = connectionsOf(server)
  /** The ones it sent: in flight, or gone. */
  const sent = new Set<Socket>()
  let stopped = false
  const room = (): number => count - handOver.handedOver - [...sent].filter((s) => handOver.isSending(s)).length
  const tryOne = (socket: Socket): void => {
    if (stopped || room() <= 0 || sent.has(socket) || !speaksHttp1(socket) || handOver.isSending(socket)) return
    handOver.offer(socket, Date.now())
    if (handOver.isSending(socket)) sent.add(socket)
  }
  const sweep = (): void => {
    if (stopped) return
    if (handOver.handedOver >= count) return stop()
    for (const socket of connections.accepted) {
      if (room() <= 0) break
      tryOne(socket)
    }
  }
  // idleGrace is the drain's give-up for a connection never idle; here a
  // busy one is just tried again at its next response, so it never gives up.
  const handOver = new HandOver(target, Number.POSITIVE_INFINITY, sweep, () => stop())
  // Prepended like HandOver.attach(): the connection moves at 'finish', before the app's listener could see a next request.
  const afterResponse = (req: IncomingMessage, res: ServerResponse): void => {
    if (stopped || room() <= 0) return
    const socket = req.socket
    res.once('finish', () => {
      tryOne(socket)
      if (handOver.handedOver >= count) stop()
    })
  }
  const listens = server.listenerCount('request') > 0
  if (listens) server.prependListener('request', afterResponse)
  const timer = setTimeout(() => stop(), window)
  timer.unref()
  function stop(): void {
    if (stopped) return
    stopped = true
    clearTimeout(timer)
    if (listens) server.removeListener('request', afterResponse)
    // Sends in flight still get their answer: HandOver takes back one declined.
    handOver.stop(server)
    onDone()
  }
  return stop
}
