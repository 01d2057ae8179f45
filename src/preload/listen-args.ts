/**
 * What an app's `server.listen(...)` or `socket.bind(...)` asked for, read
 * the way Node reads it (lib/net.js normalizeArgs and Server#listen,
 * lib/dgram.js Socket#bind), or `undefined` when the call is to go to Node
 * untouched: port 0, `{ fd }`, handles, Windows pipes, options whose meaning
 * a shared socket cannot keep (reusePort, readableAll/writableAll), and
 * anything malformed, so that Node throws its own error for it.
 */
export interface StreamRequest {
  kind: 'inet'
  port: number
  /** As given; empty when none was (Node then binds the dual-stack wildcard). */
  host: string
  ipv6Only: boolean
  backlog?: number
  exclusive: boolean
  signal?: AbortSignal
  callback?: (...args: unknown[]) => void
}

export interface PathRequest {
  kind: 'unix'
  /** As given; an abstract name keeps its leading NUL. */
  path: string
  backlog?: number
  exclusive: boolean
  signal?: AbortSignal
  callback?: (...args: unknown[]) => void
}

export type ListenRequest = StreamRequest | PathRequest

/** Node's own test for "a string that is not a port". */
function isPipeName(value: unknown): value is string {
  return typeof value === 'string' && toNumber(value) === false
}

function toNumber(value: unknown): number | false {
  return (value = Number(value)) >= 0 ? (value as number) : false
}

/** A port Node would accept, except 0 (a random port, never inherited). */
function fixedPort(value: unknown): number | undefined {
  if (typeof value !== 'number' && typeof value !== 'string') return undefined
  if (typeof value === 'string' && value.trim() === '') return undefined
  const port = Number(value)
  return Number.isInteger(port) && port > 0 && port <= 65535 ? port : undefined
}

function isWindowsPipe(path: string): boolean {
  return /^\\\\[?.]\\pipe\\/i.test(path)
}

export function readListenArgs(args: unknown[]): ListenRequest | undefined {
  const rest = [...args]
  const callback = typeof rest[rest.length - 1] === 'function' ? (rest.pop() as StreamRequest['callback']) : undefined
  if (rest.length === 0) return undefined
  const first = rest[0]
  // Node: (handle, backlog) or (path, backlog) or (port, backlog) or (port, host, backlog).
  const positionalBacklog = toNumber(args.length > 1 && args[1]) || toNumber(args.length > 2 && args[2]) || undefined

  if (typeof first === 'object' && first !== null) {
    const o = first as Record<string, unknown>
    if (o._handle != null || o.handle != null || o.fd != null) return undefined
    if (o.reusePort || o.readableAll || o.writableAll) return undefined
    const backlog = toNumber(o.backlog) || positionalBacklog
    const signal = o.signal instanceof AbortSignal ? o.signal : undefined
    if (o.signal !== undefined && !signal) return undefined
    const common = { backlog, exclusive: o.exclusive === true, signal, callback }
    if (o.port !== undefined && o.port !== null) {
      const port = fixedPort(o.port)
      if (port === undefined) return undefined
      if (o.host !== undefined && o.host !== null && typeof o.host !== 'string') return undefined
      return { kind: 'inet', port, host: (o.host as string | undefined) ?? '', ipv6Only: o.ipv6Only === true, ...common }
    }
    if ('port' in o) return undefined
    if (isPipeName(o.path) && o.path !== '' && !isWindowsPipe(o.path)) return { kind: 'unix', path: o.path, ...common }
    return undefined
  }

  if (isPipeName(first)) {
    if (first === '' || isWindowsPipe(first)) return undefined
    return { kind: 'unix', path: first, backlog: positionalBacklog, exclusive: false, callback }
  }
  const port = fixedPort(first)
  if (port === undefined) return undefined
  const host = typeof rest[1] === 'string' ? rest[1] : ''
  return { kind: 'inet', port, host, ipv6Only: false, backlog: positionalBacklog, exclusive: false, callback }
}

export interface PacketRequest {
  port: number
  /** As given; empty means the socket type's wildcard. */
  address: string
  exclusive: boolean
  callback?: (...args: unknown[]) => void
}

/** `socket.bind(port[, address][, cb])` or `socket.bind(options[, cb])`. */
export function readBindArgs(args: unknown[]): PacketRequest | undefined {
  const rest = [...args]
  const callback = typeof rest[rest.length - 1] === 'function' ? (rest.pop() as PacketRequest['callback']) : undefined
  const first = rest[0]
  if (typeof first === 'object' && first !== null) {
    const o = first as Record<string, unknown>
    if (o.fd != null) return undefined
    const port = fixedPort(o.port)
    if (port === undefined || (o.address != null && typeof o.address !== 'string')) return undefined
    return { port, address: (o.address as string | undefined) ?? '', exclusive: o.exclusive === true, callback }
  }
  const port = fixedPort(first)
  if (port === undefined || (rest[1] != null && typeof rest[1] !== 'string')) return undefined
  return { port, address: (rest[1] as string | undefined) ?? '', exclusive: false, callback }
}

/**
 * handover's `network` and `address` for an inet stream socket, given the
 * IP and family Node's own lookup gave (ip '' when no host was given), so that the
 * socket is the one Node would have bound: no host is the dual-stack
 * wildcard (falling back to 0.0.0.0 without IPv6), `::` is dual-stack unless
 * ipv6Only, and every other address binds just its own family.
 */
export function streamAddress(ip: string, family: number, port: number, ipv6Only: boolean): { network: 'tcp' | 'tcp4' | 'tcp6'; address: string } {
  if (ip === '') return ipv6Only ? { network: 'tcp6', address: `[::]:${port}` } : { network: 'tcp', address: `:${port}` }
  if (family === 4) return { network: 'tcp4', address: `${ip}:${port}` }
  if (isWildcard6(ip) && !ipv6Only) return { network: 'tcp', address: `[::]:${port}` }
  return { network: 'tcp6', address: `[${ip}]:${port}` }
}

/** The same for a datagram socket of `type`; Node's wildcard for udp4 is 0.0.0.0, for udp6 `::`. */
export function packetAddress(type: 'udp4' | 'udp6', ip: string, port: number, ipv6Only: boolean): { network: 'udp' | 'udp4' | 'udp6'; address: string } {
  if (type === 'udp4') return { network: 'udp4', address: `${ip === '' ? '0.0.0.0' : ip}:${port}` }
  if ((ip === '' || isWildcard6(ip)) && !ipv6Only) return { network: 'udp', address: `[::]:${port}` }
  return { network: 'udp6', address: `[${ip === '' ? '::' : ip}]:${port}` }
}

/** `::` in any spelling; the family comes from the lookup, so no IP parser is needed here. */
function isWildcard6(ip: string): boolean {
  return /^[0:]+$/.test(ip)
}

/** Node writes an abstract unix name with a leading NUL; handover with `@`. */
export function unixAddress(path: string): string {
  return path.startsWith('\0') ? `@${path.slice(1)}` : path
}
