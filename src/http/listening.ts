import { subscribe } from 'node:diagnostics_channel'
import type { Server } from 'node:net'

/**
 * The servers of this process that listen, found by the fd they listen on:
 * a socket handover handed out (a Listener's fd) leads to the server the
 * app made to serve it, which connections handed over from another process
 * are adopted into. Seen through the public net.server.listen tracing
 * channel, whose asyncEnd is published once listen() has set the handle up
 * (on the tick after the call, before any I/O: no connection was accepted
 * yet), so that a listener can act before the first accept.
 */
const servers = new Set<Server>()
const hooks = new Set<(server: Server) => void>()

subscribe('tracing:net.server.listen:asyncEnd', (message) => {
  const server = (message as { server?: Server }).server
  if (!server?.listening || servers.has(server)) return
  servers.add(server)
  server.once('close', () => servers.delete(server))
  for (const hook of hooks) hook(server)
})

/** The fd a server's listening handle holds; undefined without one (or on Windows, where a handle has none). */
export function listeningFd(server: Server): number | undefined {
  const fd = (server as Server & { _handle?: { fd?: number } | null })._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/** The server listening on `fd`, if one does. */
export function serverListeningOn(fd: number): Server | undefined {
  for (const server of servers) {
    if (server.listening && listeningFd(server) === fd) return server
  }
  return undefined
}

/** Calls `hook` for every server that starts listening from now on; returns a function that stops it. */
export function onListening(hook: (server: Server) => void): () => void {
  hooks.add(hook)
  return () => void hooks.delete(hook)
}
