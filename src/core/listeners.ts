import { lstatSync, unlinkSync } from 'node:fs'
import { constants } from 'node:os'
import { nameKey, type ActivatedSockets } from './activation.js'
import { formatInet, parseAddress, type BindSpec, type Network } from './address.js'
import { HandoverError, systemError } from './errors.js'
import type { ListenTarget, OsSocket, OutgoingSocket, PlatformBackend, SocketInfo } from './platform.js'
import type { TransferEntry } from './protocol.js'
import { mismatch } from './socket-fit.js'

const BACKLOG = 511

/**
 * A listening socket, ready for one server: `server.listen(listener)` for
 * net/http/https servers, `socket.bind(listener)` for dgram. Each Listener
 * carries its own handle, which the server that adopts it owns and closes;
 * handover keeps its own handle to pass on at the next upgrade.
 */
export class Listener implements ListenTarget {
  /** The network asked for: tcp, tcp4, tcp6, unix, udp, udp4 or udp6. */
  readonly network: Network
  /** The bound address, port resolved: `[::]:8080`, `127.0.0.1:5353`, `/run/app.sock`, `@name`. */
  readonly address: string
  /** The port, for inet sockets. */
  readonly port?: number
  /** The unix socket path (or abstract name, without `@`), for unix sockets. */
  readonly path?: string
  /** For dgram: the socket type to pass to `dgram.createSocket()`. */
  readonly socketType?: 'udp4' | 'udp6'
  /** True if the socket came from the previous generation. */
  readonly inherited: boolean
  /**
   * POSIX: a close-on-exec duplicate of the socket's fd; in a worker of
   * `handover run`, the fd the supervisor passed itself (see SocketTable.listen).
   */
  readonly fd?: number
  /** Windows: a libuv TCP handle wrapping the socket. */
  readonly handle?: unknown

  constructor(init: { network: Network; address: string; port?: number; path?: string; socketType?: 'udp4' | 'udp6'; inherited: boolean; target: ListenTarget }) {
    this.network = init.network
    this.address = init.address
    this.port = init.port
    this.path = init.path
    this.socketType = init.socketType
    this.inherited = init.inherited
    if (init.target.fd !== undefined) this.fd = init.target.fd
    if (init.target.handle !== undefined) this.handle = init.target.handle
  }
}

/** Where the sockets of a SocketTable come from, besides a bind of its own. */
export interface SocketSources {
  /** What the parent passed, as its hello described it. */
  inherited?: TransferEntry[]
  /** The service manager's activated sockets. */
  activated?: ActivatedSockets
  /**
   * Binds a fixed address on this process's behalf, instead of a bind of its
   * own: a worker's parent, the supervisor, holds every listening socket.
   */
  bind?: (spec: BindSpec) => OsSocket
}

interface Held {
  spec: BindSpec
  socket: OsSocket
  info: SocketInfo
  inherited: boolean
  /** From socket activation or the supervisor, here or in an earlier generation: its file is theirs, never removed here. */
  activated?: boolean
  /** Unix paths: the file this generation may remove on final shutdown. */
  file?: { dev: number; ino: number }
  /** Handed to the server that listens on it, which owns and closes it from then on. */
  lent?: boolean
}

/** The sockets this process holds, by key (tableflip's fds). */
export class SocketTable {
  private readonly held = new Map<string, Held>()
  private readonly inherited = new Map<string, TransferEntry>()
  /** The fds of the Listeners handed out, by key: which socket a server listening on one serves. */
  private readonly listenerFds = new Map<string, Set<number>>()
  private readonly activated?: ActivatedSockets
  private readonly bindElsewhere?: (spec: BindSpec) => OsSocket

  constructor(
    private readonly backend: PlatformBackend,
    private readonly cwd: string,
    sources: SocketSources = {},
  ) {
    for (const entry of sources.inherited ?? []) this.inherited.set(entry.key, entry)
    this.activated = sources.activated
    this.bindElsewhere = sources.bind
  }

  /** With a `name`, the socket is found by that name first (see ListenOptions), by address after. */
  listen(network: string, address: string | number, packet: boolean, name?: string): Listener {
    const spec = parseAddress(network, address, packet, this.cwd)
    const key = name === undefined ? spec.key : nameKey(name)
    let held = this.held.get(key)
    // A second server on an address whose fd went to the first: a socket of its own from the supervisor.
    if (held?.lent && this.bindElsewhere) return this.listenerFor(this.boundElsewhere(spec, this.bindElsewhere), spec.network)
    if (!held) {
      held = (name !== undefined && this.claimNamed(key, name, spec.network, packet)) ||
        (!isPortZero(spec) && (this.claimInherited(spec) || this.claimActivated(spec))) ||
        this.bindFresh(spec)
      this.held.set(key, held)
    }
    const listener = this.listenerFor(held, spec.network)
    if (listener.fd !== undefined) {
      // A number the OS may give out again once its server closes it: the latest Listener with it wins.
      for (const fds of this.listenerFds.values()) fds.delete(listener.fd)
      let fds = this.listenerFds.get(key)
      if (!fds) this.listenerFds.set(key, (fds = new Set()))
      fds.add(listener.fd)
    }
    return listener
  }

  /** The key a listen() of this network and address would hold its socket under. */
  keyOf(network: string, address: string | number, packet: boolean): string {
    return parseAddress(network, address, packet, this.cwd).key
  }

  /** The keys of every socket held. */
  keys(): string[] {
    return [...this.held.keys()]
  }

  /**
   * The key of the socket a Listener's fd belongs to (a server listening on
   * it serves that socket), also after closeAll(): a draining server still
   * holds its fd.
   */
  keyOfListenerFd(fd: number): string | undefined {
    for (const [key, fds] of this.listenerFds) if (fds.has(fd)) return key
    return undefined
  }

  /** The fds of the Listeners handed out for `key`. */
  listenerFdsOf(key: string): number[] {
    return [...(this.listenerFds.get(key) ?? [])]
  }

  /**
   * Closes the held sockets whose key is not in `keep`, removing their unix
   * socket files as closeAll(true) would: nothing uses them any more, and
   * a client should be refused rather than queue where nobody accepts.
   */
  closeExcept(keep: ReadonlySet<string>): string[] {
    const closed: string[] = []
    for (const [key, h] of this.held) {
      if (keep.has(key)) continue
      this.release(h, true)
      this.held.delete(key)
      closed.push(key)
    }
    return closed
  }

  /** Sockets to pass on: everything held except port 0, which no child could ask for again. */
  outgoing(): OutgoingSocket[] {
    const out: OutgoingSocket[] = []
    for (const [key, h] of this.held) {
      if (isPortZero(h.spec) || h.lent) continue
      out.push({ key, network: h.spec.network, address: describe(h), socket: h.socket, ...(h.activated && { activated: true }) })
    }
    return out
  }

  /** At ready(): inherited and activated sockets nobody asked for are closed. */
  closeUnclaimed(): void {
    this.activated?.closeUnclaimed()
    for (const entry of this.inherited.values()) {
      try {
        this.backend.close(this.backend.receive(entry))
      } catch {
        // A malformed entry owns nothing we could close.
      }
    }
    this.inherited.clear()
  }

  /**
   * Closes handover's own handles. With `removeFiles`, also removes the unix
   * socket files this process bound or adopted, if they are still the same
   * files: only the last generation does that.
   */
  closeAll(removeFiles: boolean): void {
    this.closeUnclaimed()
    for (const h of this.held.values()) this.release(h, removeFiles)
    this.held.clear()
  }

  private release(h: Held, removeFile: boolean): void {
    // A lent fd is the server's: closing it here would close whatever reuses its number after the server closed it.
    if (!h.lent) this.backend.close(h.socket)
    if (removeFile && h.file && h.spec.kind === 'unix') {
      try {
        const st = lstatSync(h.spec.path)
        if (st.isSocket() && st.dev === h.file.dev && st.ino === h.file.ino) unlinkSync(h.spec.path)
      } catch {
        // Already gone, or replaced by something that is not ours.
      }
    }
  }

  private claimInherited(spec: BindSpec): Held | undefined {
    const entry = this.inherited.get(spec.key)
    if (!entry) return undefined
    this.inherited.delete(spec.key)
    const { socket, info } = this.checked(spec, this.backend.receive(entry), 'inherited socket')
    if (entry.activated) return { spec, socket, info, inherited: true, activated: true }
    return { spec, socket, info, inherited: true, file: fileIdentity(spec) }
  }

  /** A socket from elsewhere (the parent, the supervisor) must be what `spec` asks for; if not, it is closed. */
  private checked(spec: BindSpec, socket: OsSocket, what: string): { socket: OsSocket; info: SocketInfo } {
    let info: SocketInfo
    try {
      info = this.backend.inspect(socket)
    } catch (err) {
      this.backend.close(socket)
      throw new HandoverError('ERR_BAD_INHERITANCE', `${what} for ${spec.key} is not an open socket`, { cause: err })
    }
    const problem = mismatch(spec, info)
    if (problem) {
      this.backend.close(socket)
      throw new HandoverError('ERR_BAD_INHERITANCE', `${what} for ${spec.key} ${problem}`)
    }
    return { socket, info }
  }

  /** A socket the parent passed under this name, else an activated socket of this name. */
  private claimNamed(key: string, name: string, network: Network, packet: boolean): Held | undefined {
    const entry = this.inherited.get(key)
    // The parent's description of the socket, so the usual checks apply.
    if (entry) return this.claimInherited({ ...parseAddress(entry.network, entry.address, packet, this.cwd), key })
    const claimed = this.activated?.claimByName(name, network, packet)
    return claimed && { ...claimed, inherited: true, activated: true }
  }

  /** No file identity: the service manager created the file and removes it. */
  private claimActivated(spec: BindSpec): Held | undefined {
    const claimed = this.activated?.claim(spec)
    return claimed && { spec, ...claimed, inherited: true, activated: true }
  }

  private bindFresh(spec: BindSpec): Held {
    // Port 0 is never shared: every process gets a port of its own.
    if (this.bindElsewhere && !isPortZero(spec)) return this.boundElsewhere(spec, this.bindElsewhere)
    let socket: OsSocket
    try {
      socket = this.backend.bind(spec, BACKLOG)
    } catch (err) {
      const code = (err as { errno?: number }).errno
      if (spec.kind === 'inet' && spec.dualStack && isNoIPv6(code)) {
        return this.bindFresh({ ...spec, family: 4, ip: '0.0.0.0', v6only: false, dualStack: false })
      }
      throw systemError(err, `${spec.network} ${spec.requested}`)
    }
    try {
      return { spec, socket, info: this.backend.inspect(socket), inherited: false, file: fileIdentity(spec) }
    } catch (err) {
      this.backend.close(socket)
      throw systemError(err, `${spec.network} ${spec.requested}`)
    }
  }

  /** A socket the parent bound for this address, checked like an inherited one; its file is the parent's. */
  private boundElsewhere(spec: BindSpec, bind: (spec: BindSpec) => OsSocket): Held {
    const { socket, info } = this.checked(spec, bind(spec), "the parent's socket")
    return { spec, socket, info, inherited: true, activated: true }
  }

  /**
   * A worker of `handover run` (its sockets come from the supervisor) never
   * passes its sockets on: the supervisor holds every one and starts every
   * generation. So the fd it received (close-on-exec, like every fd Node
   * and the addon give a process) goes to the server as it is, instead of a
   * duplicate beside it: one fd per listener, where two would halve the
   * connections a worker can take under its fd limit. Port 0 is bound by
   * the worker itself and keeps the duplicate.
   */
  private lends(h: Held): boolean {
    return this.bindElsewhere !== undefined && !isPortZero(h.spec) && !h.lent
  }

  private listenerFor(h: Held, network: Network): Listener {
    let target: ListenTarget
    try {
      if (this.lends(h)) {
        target = { fd: h.socket }
        h.lent = true
      } else {
        target = this.backend.adoptable(h.socket)
      }
    } catch (err) {
      throw systemError(err, `${h.spec.network} ${h.spec.requested}`)
    }
    const inet = h.spec.kind === 'inet'
    return new Listener({
      network,
      address: describe(h),
      port: inet ? h.info.port : undefined,
      path: h.spec.kind === 'unix' ? h.spec.path : undefined,
      socketType: h.spec.kind === 'inet' && h.spec.transport === 'dgram' ? (h.info.family === 'inet6' ? 'udp6' : 'udp4') : undefined,
      inherited: h.inherited,
      target,
    })
  }
}

function isPortZero(spec: BindSpec): boolean {
  return spec.kind === 'inet' && spec.port === 0
}

function describe(h: Held): string {
  if (h.spec.kind === 'unix') return h.spec.abstract ? `@${h.spec.path}` : h.spec.path
  return formatInet(h.info.address ?? h.spec.ip, h.info.port ?? h.spec.port)
}

/** A host without (usable) IPv6 refuses the dual-stack wildcard this way. */
function isNoIPv6(errno: number | undefined): boolean {
  return errno === constants.errno.EAFNOSUPPORT || errno === constants.errno.EADDRNOTAVAIL
}

function fileIdentity(spec: BindSpec): { dev: number; ino: number } | undefined {
  if (spec.kind !== 'unix' || spec.abstract) return undefined
  try {
    const st = lstatSync(spec.path)
    return st.isSocket() ? { dev: st.dev, ino: st.ino } : undefined
  } catch {
    return undefined
  }
}
