import { isIPv4 } from 'node:net'
import { resolve } from 'node:path'
import { HandoverError } from './errors.js'

export type StreamNetwork = 'tcp' | 'tcp4' | 'tcp6' | 'unix'
export type PacketNetwork = 'udp' | 'udp4' | 'udp6'
export type Network = StreamNetwork | PacketNetwork

export const STREAM_NETWORKS: readonly StreamNetwork[] = ['tcp', 'tcp4', 'tcp6', 'unix']
export const PACKET_NETWORKS: readonly PacketNetwork[] = ['udp', 'udp4', 'udp6']

interface SpecBase {
  /** Identifies the socket across generations: equal keys, same socket. */
  key: string
  network: Network
  /** The address as the caller wrote it, for messages. */
  requested: string
}

export interface InetSpec extends SpecBase {
  kind: 'inet'
  transport: 'stream' | 'dgram'
  family: 4 | 6
  ip: string
  port: number
  v6only: boolean
  /** A dual-stack wildcard that may fall back to 0.0.0.0 on hosts without IPv6. */
  dualStack: boolean
}

export interface UnixSpec extends SpecBase {
  kind: 'unix'
  path: string
  abstract: boolean
}

export type BindSpec = InetSpec | UnixSpec

function invalid(network: string, address: string, why: string): HandoverError {
  return new HandoverError('ERR_INVALID_ADDRESS', `invalid ${network} address ${JSON.stringify(address)}: ${why}`)
}

/** Splits Go-style `host:port`, `:port` and `[v6]:port`. */
export function splitHostPort(network: string, address: string): { host: string; port: number } {
  let host: string
  let portText: string
  if (address.startsWith('[')) {
    const end = address.indexOf(']')
    if (end === -1) throw invalid(network, address, "missing ']'")
    if (address[end + 1] !== ':') throw invalid(network, address, 'missing port after ]')
    host = address.slice(1, end)
    portText = address.slice(end + 2)
    if (canonicalIPv6(host) === undefined && !host.includes('%')) throw invalid(network, address, 'brackets must hold an IPv6 address')
  } else {
    // `http://localhost:8080` would otherwise be read as host `http://localhost`
    // and reported as an unbracketed IPv6 address, which misleads.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) throw invalid(network, address, 'a URL is not an address: write host:port, e.g. localhost:8080')
    const colon = address.lastIndexOf(':')
    if (colon === -1) throw invalid(network, address, 'missing port (write host:port or :port)')
    host = address.slice(0, colon)
    portText = address.slice(colon + 1)
    if (host.includes(':')) throw invalid(network, address, 'an IPv6 address needs brackets, as in [::1]:8080')
  }
  if (!/^\d{1,5}$/.test(portText)) throw invalid(network, address, 'the port must be a number from 0 to 65535')
  const port = Number(portText)
  if (port > 65535) throw invalid(network, address, 'the port must be a number from 0 to 65535')
  return { host, port }
}

/**
 * The canonical text of an IPv6 address, or undefined if it is not one.
 * The URL parser, not net.isIPv6(): the first isIPv6() call compiles a large
 * regular expression, about 4 ms, on every new generation's critical path.
 */
function canonicalIPv6(ip: string): string | undefined {
  if (!ip.includes(':')) return undefined
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
  } catch {
    return undefined
  }
}

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i

/**
 * Parses and normalises `network` + `address` into what to bind and the key
 * that finds the same socket in the next generation. With `tcp`/`udp`, every
 * wildcard form (`:p`, `0.0.0.0:p`, `[::]:p`) names one dual-stack socket, as
 * in Go and in Node's `server.listen(port)`; `tcp4`/`tcp6` keep to one family.
 * Hostnames other than `localhost` are refused rather than resolved, so a
 * listen never blocks on DNS and its key never depends on a lookup.
 */
export function parseAddress(network: string, address: string | number, packet: boolean, cwd: string): BindSpec {
  const allowed: readonly string[] = packet ? PACKET_NETWORKS : STREAM_NETWORKS
  if (typeof network !== 'string' || !allowed.includes(network)) {
    throw new HandoverError(
      'ERR_INVALID_NETWORK',
      `unknown network ${JSON.stringify(network)} for ${packet ? 'listenPacket' : 'listen'}: use one of ${allowed.join(', ')}`,
    )
  }
  if (typeof address === 'number') address = portAddress(network, address)
  if (typeof address !== 'string') throw invalid(network, String(address), 'the address must be a string, or a port number')
  if (network === 'unix') return parseUnix(address, cwd)

  const transport = packet ? 'dgram' : 'stream'
  const base = network.replace(/[46]$/, '')
  const only = network.endsWith('4') ? 4 : network.endsWith('6') ? 6 : 0
  const { host: rawHost, port } = splitHostPort(network, address)
  let host = rawHost
  if (host.includes('%')) throw invalid(network, address, 'IPv6 zones are not supported')
  if (host === 'localhost') host = only === 6 ? '::1' : '127.0.0.1'
  const mapped = MAPPED_V4.exec(host)
  if (mapped && only !== 6) host = mapped[1]

  const spec = (family: 4 | 6, ip: string, v6only: boolean, dualStack: boolean, keyNetwork: string): InetSpec => {
    const shown = family === 6 ? `[${ip}]` : ip
    return {
      kind: 'inet', transport, family, ip, port, v6only, dualStack,
      key: `${keyNetwork} ${shown}:${port}`, network: network as Network, requested: address,
    }
  }

  const ipv6 = canonicalIPv6(host)
  const wildcard = host === '' || host === '0.0.0.0' || ipv6 === '::'
  if (wildcard) {
    if (only === 0) return spec(6, '::', false, true, base)
    if (only === 4) {
      if (host !== '' && host !== '0.0.0.0') throw invalid(network, address, `${network} takes an IPv4 address`)
      return spec(4, '0.0.0.0', false, false, `${base}4`)
    }
    if (host === '0.0.0.0') throw invalid(network, address, `${network} takes an IPv6 address`)
    return spec(6, '::', true, false, `${base}6`)
  }
  if (isIPv4(host)) {
    if (only === 6) throw invalid(network, address, `${network} takes an IPv6 address`)
    return spec(4, host, false, false, `${base}4`)
  }
  if (ipv6 !== undefined) {
    if (only === 4) throw invalid(network, address, `${network} takes an IPv4 address`)
    return spec(6, ipv6, true, false, `${base}6`)
  }
  throw invalid(network, address, 'the host must be an IP address, localhost, or empty (hostnames are not resolved)')
}

/**
 * A bare port, as in Node's `server.listen(8080)`: the wildcard of the
 * network, which `:port` already names (dual-stack for tcp/udp, 0.0.0.0 for
 * tcp4, [::] for tcp6), so it gets the same key as the string form.
 */
function portAddress(network: string, port: number): string {
  if (network === 'unix') throw invalid(network, String(port), 'a unix socket takes a path, not a port number')
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid(network, String(port), 'the port must be a number from 0 to 65535')
  return `:${port}`
}

function parseUnix(address: string, cwd: string): UnixSpec {
  if (address === '' || address.includes('\0')) throw invalid('unix', address, 'the path must be a non-empty string without NUL')
  if (address.startsWith('@')) {
    if (process.platform !== 'linux') throw invalid('unix', address, 'abstract socket names (@name) exist only on Linux')
    const name = address.slice(1)
    if (name === '') throw invalid('unix', address, 'the abstract name is empty')
    return { kind: 'unix', path: name, abstract: true, key: `unix ${address}`, network: 'unix', requested: address }
  }
  const path = resolve(cwd, address)
  return { kind: 'unix', path, abstract: false, key: `unix ${path}`, network: 'unix', requested: address }
}

/** The Go-style text of a bound inet address, e.g. `[::]:8080` or `127.0.0.1:80`. */
export function formatInet(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`
}
