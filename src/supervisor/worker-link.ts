import type { BindSpec } from '../core/address.js'
import type { OsSocket, PlatformBackend } from '../backend/types.js'
import { HandoverError } from '../core/errors.js'

/** How long a worker's listen() waits for the supervisor to bind and pass a socket. */
const REQUEST_TIMEOUT = 10_000

/**
 * A worker's side of `handover run`'s socket-request channel. The
 * supervisor holds every listening socket; an address it passed at spawn is
 * in the hello, and one it does not hold yet is asked for here: the
 * supervisor binds it once and sends the same socket to every worker that
 * asks, so one accept queue per address outlives every generation.
 *
 * The request blocks (bounded): listen() is synchronous in Node, and the
 * answer comes from another process, which is not waiting on this one.
 */
export class SupervisorLink {
  constructor(
    private readonly backend: PlatformBackend,
    private readonly channelFd: number,
  ) {}

  requestSocket(spec: BindSpec): OsSocket {
    const request = { type: 'socket', network: spec.network, address: spec.requested }
    let answer: { line: string; socket?: OsSocket }
    try {
      answer = this.backend.requestSocket(this.channelFd, `${JSON.stringify(request)}\n`, REQUEST_TIMEOUT)
    } catch (err) {
      const e = err as { errno?: number; syscall?: string; message?: string }
      throw new HandoverError('ERR_SUPERVISOR', `the supervisor did not answer the request for ${spec.network} ${spec.requested}: ${e.syscall ?? ''} ${e.message ?? String(err)}`, { cause: err })
    }
    let reply: { ok?: boolean; code?: string; message?: string }
    try {
      reply = JSON.parse(answer.line) as typeof reply
    } catch {
      reply = { ok: false, code: 'ERR_PROTOCOL', message: `the supervisor answered ${JSON.stringify(answer.line.slice(0, 80))}` }
    }
    if (reply.ok === true && answer.socket !== undefined) return answer.socket
    if (answer.socket !== undefined) this.backend.close(answer.socket)
    throw new HandoverError(reply.code ?? 'ERR_PROTOCOL', reply.message ?? 'the supervisor sent no socket')
  }
}
