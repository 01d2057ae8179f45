import type { Server } from 'node:net'

/**
 * Stops and restarts a listening server's accepts without closing its
 * socket: connections wait in the kernel's queue meanwhile, for this process
 * or another one sharing the socket. Node has no public call for it. A
 * listening handle is a libuv stream whose readability means "a connection
 * is waiting"; uv_read_stop() stops polling it (no accept), and
 * uv_read_start() polls again (libuv's server callback accepts as before).
 * uv_read_stop() does nothing to a handle that is not marked reading, and a
 * listening handle is not, so pausing starts reading first.
 *
 * Works on POSIX for a server that listens on an fd handover handed out
 * (listen({ fd }) opens it readable); checked on Node 20, 22, 24 and 26.
 * Returns false, changing nothing, where it cannot (Windows handles, a
 * server that does not listen).
 */
interface ListeningHandle {
  readStart?: () => number
  readStop?: () => number
}

function handleOf(server: Server): ListeningHandle | undefined {
  if (process.platform === 'win32' || !server.listening) return undefined
  const handle = (server as Server & { _handle?: ListeningHandle | null })._handle
  return typeof handle?.readStart === 'function' && typeof handle.readStop === 'function' ? handle : undefined
}

/** Stops accepting; true if it did. */
export function pauseAccepting(server: Server): boolean {
  const handle = handleOf(server)
  if (!handle) return false
  if (handle.readStart?.() !== 0) return false
  return handle.readStop?.() === 0
}

/** Accepts again what pauseAccepting() stopped; true if it did. */
export function resumeAccepting(server: Server): boolean {
  const handle = handleOf(server)
  return handle?.readStart?.() === 0
}
