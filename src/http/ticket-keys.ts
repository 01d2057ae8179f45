import type { Server } from 'node:net'
import type { SocketTable } from '../core/listeners.js'
import { listeningFd, onListening, serverListeningOn } from './listening.js'

/**
 * TLS sessions that resume across generations (issue 18). A TLS server
 * encrypts the session tickets it gives clients with its ticket keys, which
 * Node makes at random for each server: a new generation could decrypt no
 * ticket of the old one, and every client paid a full handshake at once
 * after each upgrade. So the old generation passes the keys of the TLS
 * server serving each socket to the new one, in the hello (over the
 * channel between the two processes, never on disk or in the environment),
 * and the new generation's TLS server on that socket starts with them.
 *
 * Node's API holds exactly one 48-byte key set per server
 * (`getTicketKeys()`/`setTicketKeys()`) and decrypts only tickets made with
 * that set, so a previous key cannot be kept for decrypting while a new one
 * encrypts: the keys stay the same across generations instead, and live as
 * long as the service. node:tls is never imported here: every generation
 * loads this module, most serve no TLS.
 */

interface TicketKeyServer extends Server {
  getTicketKeys(): Buffer
  setTicketKeys(keys: Buffer): void
  /** Node keeps the ticketKeys option here: keys the app manages itself. */
  ticketKeys?: unknown
}

/** A tls.Server (https.Server, Http2SecureServer) whose keys handover may carry: not one given keys of the app's own. */
function managedTlsServer(server: Server): TicketKeyServer | undefined {
  const s = server as TicketKeyServer
  if (typeof s.getTicketKeys !== 'function' || typeof s.setTicketKeys !== 'function') return undefined
  // An app that passes ticketKeys rotates or shares them its own way; handover neither overrides nor passes them on.
  return s.ticketKeys === undefined ? s : undefined
}

/** The socket key of the handover socket `server` listens on, if it listens on one. */
function keyOf(table: SocketTable, server: Server): string | undefined {
  const fd = listeningFd(server)
  return fd === undefined ? undefined : table.keyOfListenerFd(fd)
}

/**
 * From now on, a TLS server that starts listening on a socket of `table`
 * starts with the keys `given` has for that socket's key, if any. Applied
 * on the listen tracing channel's asyncEnd, before the server's first
 * accept (http/listening.ts): no client gets a ticket made with other keys.
 * Returns a function that stops it.
 */
export function startWithTicketKeys(table: SocketTable, given: ReadonlyMap<string, string>): () => void {
  return onListening((server) => {
    const tls = managedTlsServer(server)
    if (!tls || given.size === 0) return
    const key = keyOf(table, tls)
    const keys = key === undefined ? undefined : given.get(key)
    if (keys !== undefined) tls.setTicketKeys(Buffer.from(keys, 'base64'))
  })
}

/**
 * The keys to pass on for each of `keys`, base64: those of the TLS server
 * serving that socket now, or else those this process was given for it
 * (its TLS server has not started listening, or does not any more), so
 * that one generation without it does not lose them. Undefined if none.
 */
export function ticketKeysToPass(table: SocketTable, keys: Iterable<string>, given: ReadonlyMap<string, string> = new Map()): Record<string, string> | undefined {
  const out = new Map<string, string>()
  for (const key of keys) {
    let found: string | undefined
    for (const fd of table.listenerFdsOf(key)) {
      const server = serverListeningOn(fd)
      if (!server) continue
      const tls = managedTlsServer(server)
      if (tls) found = tls.getTicketKeys().toString('base64')
      // A server with keys of the app's own: nothing of handover's to pass on for this socket.
      else if (typeof (server as TicketKeyServer).getTicketKeys === 'function') found = ''
      if (found !== undefined) break
    }
    found ??= given.get(key)
    if (found) out.set(key, found)
  }
  // fromEntries defines each key as data: a socket key such as "__proto__" cannot reach the prototype.
  return out.size > 0 ? Object.fromEntries(out) : undefined
}
