import type { Socket as DgramSocket } from 'node:dgram'
import type { Server } from 'node:net'

/** A listening server, or a bound dgram socket that is not closed (address() throws for the others). */
export function isServing(owner: Server | DgramSocket): boolean {
  if ('listening' in owner) return owner.listening
  try {
    owner.address()
    return true
  } catch {
    return false
  }
}

/** dgram keeps the createSocket() options in a symbol-keyed state object; absent, they are the defaults. */
export function dgramState(socket: DgramSocket): { reuseAddr: boolean; reusePort: boolean; ipv6Only: boolean } {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state')
  const state = (key ? (socket as unknown as Record<symbol, Record<string, unknown>>)[key] : undefined) ?? {}
  return { reuseAddr: state.reuseAddr === true, reusePort: state.reusePort === true, ipv6Only: state.ipv6Only === true }
}
