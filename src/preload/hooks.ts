import dgram from 'node:dgram'
import net from 'node:net'

export type Original = (...args: unknown[]) => unknown

export interface Interceptors {
  listen(server: net.Server, original: Original, args: unknown[]): net.Server
  bind(socket: dgram.Socket, original: Original, args: unknown[]): dgram.Socket
}

const installed = Symbol.for('handover.preload.hooks')

/**
 * Wraps `net.Server.prototype.listen` (which http, https, http2 and tls
 * servers inherit, and through which express, koa, fastify and
 * @hono/node-server listen) and `dgram.Socket.prototype.bind`. Once per
 * process, even if two copies of handover are loaded.
 */
export function installHooks(interceptors: Interceptors): void {
  const proto = net.Server.prototype as unknown as Record<symbol, boolean>
  if (proto[installed]) return
  proto[installed] = true
  const listen = net.Server.prototype.listen as unknown as Original
  const bind = dgram.Socket.prototype.bind as unknown as Original
  // Plain functions, not arrows: `this` is the server or socket.
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    return interceptors.listen(this, listen, args)
  } as typeof net.Server.prototype.listen
  dgram.Socket.prototype.bind = function (this: dgram.Socket, ...args: unknown[]) {
    return interceptors.bind(this, bind, args)
  } as typeof dgram.Socket.prototype.bind
}
