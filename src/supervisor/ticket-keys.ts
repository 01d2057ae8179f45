import { randomBytes } from 'node:crypto'
import { STREAM_NETWORKS, type Network } from '../core/address.js'

/**
 * The TLS session-ticket keys of `handover run`: one random 48-byte set per
 * listening stream socket, made the first time a worker gets that socket
 * and kept in this process's memory for the life of the service. Every
 * worker of every generation gets the same set for a socket (in its hello,
 * or with the socket it asked for), so a client's session resumes on any
 * worker, after any upgrade. They never go to disk, to the environment or
 * to a log; they die with the supervisor. Node's API takes one key set per
 * server and decrypts no ticket of another (http/ticket-keys.ts), so they
 * are not rotated while the service runs.
 */
export class TicketKeyStore {
  private readonly keys = new Map<string, string>()

  /** The keys for the socket `key`, made now if it has none; none for datagram sockets. */
  for(key: string, network: Network): string | undefined {
    if (!(STREAM_NETWORKS as readonly string[]).includes(network)) return undefined
    let keys = this.keys.get(key)
    if (keys === undefined) this.keys.set(key, (keys = randomBytes(48).toString('base64')))
    return keys
  }

  /** The keys for every stream socket among `sockets`, for a worker's hello. */
  forSockets(sockets: ReadonlyArray<{ key: string; network: Network }>): Record<string, string> {
    const out = new Map<string, string>()
    for (const { key, network } of sockets) {
      const keys = this.for(key, network)
      if (keys !== undefined) out.set(key, keys)
    }
    return Object.fromEntries(out)
  }
}
