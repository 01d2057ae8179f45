import type { Server } from 'node:net'
import type { ConnectionPort } from '../core/connection-port.js'
import type { SocketTable } from '../core/listeners.js'
import { connectionsOf, isTlsServer, speaksHttp1 } from '../http/connections.js'
import type * as Handoff from '../http/handoff.js'
import { registerHandOffTargets } from '../http/handoff-targets.js'
import { listeningFd, serverListeningOn } from '../http/listening.js'

/**
 * The Upgrader's part in moving connections (issue 18): which servers of
 * this process can take a connection handed over, on which socket keys;
 * adopting the ones that arrive; and, once this process stops serving,
 * telling drain() where its idle connections go.
 */

/** A plain HTTP/1 server: the only kind a connection can be handed to (TLS state, HTTP/2 sessions and net protocols live in the process). */
function isPlainHttp(server: Server): boolean {
  const http = process.getBuiltinModule('node:http')
  return server instanceof http.Server && !isTlsServer(server)
}

/** The server serving `key` here, if it is one that can adopt (and so whose connections can move). */
export function adopterFor(table: SocketTable, key: string): Server | undefined {
  for (const fd of table.listenerFdsOf(key)) {
    const server = serverListeningOn(fd)
    if (server && isPlainHttp(server)) return server
  }
  return undefined
}

/** Every server of this process that listens on a socket from handover. */
export function serversOn(table: SocketTable): Server[] {
  const found = new Set<Server>()
  for (const key of table.keys()) {
    for (const fd of table.listenerFdsOf(key)) {
      const server = serverListeningOn(fd)
      if (server) found.add(server)
    }
  }
  return [...found]
}

/** The keys on which this process takes connections handed over: said in its ready. */
export function adoptableKeys(table: SocketTable): string[] {
  return table.keys().filter((key) => adopterFor(table, key) !== undefined)
}

/**
 * The connections that could be handed over, by socket key: those of the
 * plain HTTP/1 servers still speaking HTTP/1 (not a WebSocket). A server on
 * several keys is counted under its first: a balanced worker sheds by
 * server. For the supervisor's balancing, once a second at most.
 */
export function movableCounts(table: SocketTable): Record<string, number> {
  const counts: Record<string, number> = {}
  const seen = new Set<Server>()
  for (const key of table.keys()) {
    const server = adopterFor(table, key)
    if (!server || seen.has(server)) continue
    seen.add(server)
    let n = 0
    for (const socket of connectionsOf(server).accepted) if (!socket.destroyed && speaksHttp1(socket)) n++
    counts[key] = n
  }
  return counts
}

/**
 * Adopts the connections that arrive on `port` into the server serving
 * their socket, as if it had accepted them; declines one it has no server
 * for (the sender then serves it on).
 */
export function takeConnections(table: SocketTable, port: ConnectionPort): void {
  port.onConnection((key, fd) => {
    const adopt = (handoff: typeof Handoff): boolean => {
      const server = adopterFor(table, key)
      if (!server) return false
      // Undefined: the server turned it away as it would an accept (maxConnections), and closed it.
      handoff.adoptConnection(server as import('node:http').Server, fd)
      return true
    }
    // Nothing reads the connection until it is adopted: its bytes wait in the kernel meanwhile.
    return loaded ? adopt(loaded) : loadHandoff().then(adopt)
  })
}

let loaded: typeof Handoff | undefined

/**
 * http/handoff.js, loaded on first use, or after ready() (preloadHandoff):
 * off a new generation's critical path, since connections arrive only
 * after its hand-off.
 */
export function loadHandoff(): Promise<typeof Handoff> {
  return import('../http/handoff.js').then((module) => (loaded = module))
}

/**
 * From now on drain() hands the idle connections of this process's servers
 * to `port`'s other side: every key, or only those in `keys` (what the next
 * generation said it adopts). Returns a function that stops it.
 */
export function offerConnections(table: SocketTable, port: ConnectionPort, keys?: readonly string[]): () => void {
  const accepted = keys && new Set(keys)
  return registerHandOffTargets((server) => {
    const fd = listeningFd(server)
    const key = fd === undefined ? undefined : table.keyOfListenerFd(fd)
    if (key === undefined || (accepted && !accepted.has(key))) return undefined
    return {
      send: (socket) => port.send(key, socket),
      get inFlight() {
        return port.inFlight
      },
    }
  })
}
