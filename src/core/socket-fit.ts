import { formatInet, type BindSpec, type Network } from './address.js'
import type { SocketInfo } from './platform.js'

/**
 * Whether a socket handover did not bind itself (from the parent, the
 * supervisor, or the service manager) is the one a listen() asks for. The
 * one place that knows what each network needs of a socket.
 */

/** Why the socket cannot serve `network` at all (its family, type, or not listening), or undefined if it can. */
export function unfitFor(network: Network, packet: boolean, info: SocketInfo): string | undefined {
  const families = network === 'unix' ? ['unix'] : network.endsWith('4') ? ['inet4'] : network.endsWith('6') ? ['inet6'] : ['inet4', 'inet6']
  if (!families.includes(info.family)) return `is ${info.family}, which ${network} cannot use`
  const type = packet ? 'dgram' : 'stream'
  if (info.type !== type) return `is a ${info.type} socket, not ${type}`
  if (!packet && !info.listening) return 'is not listening'
  return undefined
}

/**
 * Why the socket is not the one `spec` names, or undefined. A socket passed
 * under the spec's key (by the parent or the supervisor) must fit the
 * network and have its port; one found by its address alone (socket
 * activation) must be bound to exactly that address: `exact`.
 */
export function mismatch(spec: BindSpec, info: SocketInfo, exact = false): string | undefined {
  const unfit = unfitFor(spec.network, spec.kind === 'inet' && spec.transport === 'dgram', info)
  if (unfit) return unfit
  if (spec.kind === 'unix') {
    if (exact && (info.path !== spec.path || Boolean(info.abstract) !== spec.abstract)) return `is bound to ${describe(info)}, not ${spec.requested}`
    return undefined
  }
  if (info.port !== spec.port) return `is bound to port ${info.port}, not ${spec.port}`
  if (exact && !sameInetAddress(spec, info)) return `is bound to ${describe(info)}, not ${spec.requested}`
  return undefined
}

function sameInetAddress(spec: BindSpec & { kind: 'inet' }, info: SocketInfo): boolean {
  if (spec.dualStack) {
    // systemd binds ListenStream=8080 as [::]:8080, or 0.0.0.0:8080 on a
    // host without IPv6, the same fallback handover's own bind takes.
    return (info.family === 'inet6' && info.address === '::' && !info.v6only) || (info.family === 'inet4' && info.address === '0.0.0.0')
  }
  if (spec.family === 4) return info.family === 'inet4' && info.address === spec.ip
  return info.family === 'inet6' && info.address === spec.ip && (spec.ip !== '::' || Boolean(info.v6only))
}

function describe(info: SocketInfo): string {
  if (info.family === 'unix') return info.abstract ? `@${info.path ?? ''}` : info.path ?? ''
  return formatInet(info.address ?? '', info.port ?? 0)
}

/** A BindSpec for a socket as it is, for a claim that did not go by address. */
export function specOf(key: string, network: Network, info: SocketInfo): BindSpec {
  if (info.family === 'unix') {
    const path = info.path ?? ''
    return { kind: 'unix', path, abstract: Boolean(info.abstract), key, network, requested: info.abstract ? `@${path}` : path }
  }
  const ip = info.address ?? ''
  const port = info.port ?? 0
  return {
    kind: 'inet', transport: info.type === 'dgram' ? 'dgram' : 'stream', family: info.family === 'inet6' ? 6 : 4,
    ip, port, v6only: Boolean(info.v6only), dualStack: false, key, network, requested: formatInet(ip, port),
  }
}
