import { spawn } from 'node:child_process'
import { fstatSync } from 'node:fs'
import { Socket } from 'node:net'
import { constants } from 'node:os'
import { getSystemErrorName } from 'node:util'
import type { BindSpec, InetSpec } from '../core/address.js'
import { HandoverError, systemError } from '../core/errors.js'
import { ENV } from '../core/options.js'
import type { TransferEntry } from '../core/protocol.js'
import { loadAddon } from './addon.js'
import { StreamTransport } from './stream-transport.js'
import { AcceptTracker, type TcpWrap } from './win-accepts.js'
import type { ListenTarget, OsSocket, PlatformBackend, SocketInfo, SpawnRequest, SpawnedChild, Transport } from '../core/platform.js'

/** native/win/sockets.cc. Errors carry the Winsock error number as `errno`. */
interface WinAddon {
  bindTcp(family: 4 | 6, ip: string, port: number, v6only: boolean, backlog: number): number
  /** The WSAPROTOCOL_INFOW that lets process `pid`, and only it, import the socket. */
  duplicateFor(socket: number, pid: number): Buffer
  /** Imports protocol info meant for this process; refuses anything but a listening inet stream socket. */
  importSocket(info: Buffer): number
  duplicate(socket: number): number
  close(socket: number): void
  inspect(socket: number): SocketInfo
}

/** As on POSIX, the channel to the parent is the child's fd 3: a named pipe here. */
const CHANNEL_FD = 3
const S_IFMT = 0o170000
const S_IFIFO = 0o010000

/**
 * Windows: listening TCP sockets travel as WSADuplicateSocketW protocol info
 * in the hello message, duplicated for the child's pid once it is known.
 */
export class WinBackend implements PlatformBackend {
  private readonly addon = loadAddon() as WinAddon
  private readonly accepts = new AcceptTracker()
  /** The sockets the latest spawn passed on. */
  private passedOn = new Set<OsSocket>()

  bind(spec: BindSpec, backlog: number): OsSocket {
    refuseUnsupported(spec)
    return winsock(() => this.addon.bindTcp(spec.family, spec.ip, spec.port, spec.v6only, backlog))
  }

  inspect(socket: OsSocket): SocketInfo {
    return winsock(() => this.addon.inspect(socket))
  }

  close(socket: OsSocket): void {
    try {
      this.addon.close(socket)
    } catch {
      // Already closed: nothing is left to release.
    }
  }

  duplicate(socket: OsSocket): OsSocket {
    return winsock(() => this.addon.duplicate(socket))
  }

  adoptable(socket: OsSocket): ListenTarget {
    const copy = this.duplicate(socket)
    let handle: TcpWrap
    try {
      handle = tcpHandleFor(copy)
    } catch (err) {
      this.close(copy)
      throw err
    }
    this.accepts.track(handle, socket)
    return { handle }
  }

  /** See win-accepts.ts: stops the servers accepting on what the successor serves, losing nothing accepted. */
  retireListeners(): Promise<void> {
    return this.accepts.retire(this.passedOn)
  }

  spawn(request: SpawnRequest): SpawnedChild {
    const child = spawn(request.command, request.args, {
      cwd: request.cwd,
      env: { ...request.env, [ENV.channel]: String(CHANNEL_FD) },
      // Overlapped, so the child's libuv reads the pipe through its
      // completion port rather than a blocking thread.
      stdio: ['inherit', 'inherit', 'inherit', 'overlapped'],
      // Otherwise libuv puts the child in its kill-on-close job object, and
      // the new generation dies with the old one.
      detached: true,
      windowsHide: true,
    })
    const control = (child.stdio?.[CHANNEL_FD] ?? undefined) as Socket | undefined
    this.passedOn = new Set(request.sockets.map((s) => s.socket))
    const transfer: TransferEntry[] = []
    // No pid: the spawn failed, and Successor.spawn() reports Node's 'error'.
    if (child.pid !== undefined) {
      for (const s of request.sockets) {
        let info: Buffer
        try {
          info = winsock(() => this.addon.duplicateFor(s.socket, child.pid as number))
        } catch (err) {
          // Copies already made live in the child's handle table and die with it.
          child.kill('SIGKILL')
          control?.destroy()
          throw systemError(err, `${s.network} ${s.address}`)
        }
        transfer.push({ key: s.key, network: s.network, address: s.address, info: info.toString('base64'), pid: child.pid })
      }
    }
    return { child, channel: control ? new StreamTransport(control) : undefined, transfer }
  }

  receive(entry: TransferEntry): OsSocket {
    if (typeof entry.info !== 'string' || entry.info === '') {
      throw new HandoverError('ERR_BAD_INHERITANCE', `the parent sent no socket info for ${entry.key}`)
    }
    // Imported anyway, the info would name a handle of that other process:
    // here, whatever handle happens to have the same value.
    if (entry.pid !== process.pid) {
      throw new HandoverError('ERR_BAD_INHERITANCE', `the socket info for ${entry.key} was made for process ${entry.pid}, not ${process.pid}`)
    }
    try {
      return winsock(() => this.addon.importSocket(Buffer.from(entry.info as string, 'base64')))
    } catch (err) {
      throw new HandoverError('ERR_BAD_INHERITANCE', `the socket the parent sent for ${entry.key} is not a listening TCP socket of this process`, {
        cause: err,
      })
    }
  }

  openChannel(fd: number): Transport {
    let isPipe = false
    try {
      // Stats#isFIFO() is always false on Windows, where Node lacks S_IFIFO;
      // libuv does report a pipe with the CRT's _S_IFIFO bits.
      isPipe = (fstatSync(fd).mode & S_IFMT) === S_IFIFO
    } catch (err) {
      throw new HandoverError('ERR_BAD_INHERITANCE', `channel fd ${fd} is not open`, { cause: err })
    }
    if (!isPipe) throw new HandoverError('ERR_BAD_INHERITANCE', `channel fd ${fd} is not a pipe`)
    try {
      return new StreamTransport(new Socket({ fd, readable: true, writable: true }))
    } catch (err) {
      throw new HandoverError('ERR_BAD_INHERITANCE', `channel fd ${fd} cannot be opened`, { cause: err })
    }
  }

  sendSocket(): never {
    throw supervisorUnsupported()
  }

  requestSocket(): never {
    throw supervisorUnsupported()
  }
}

/** Only `handover run` passes sockets to running processes, and it does not run on Windows. */
function supervisorUnsupported(): HandoverError {
  return new HandoverError('ERR_UNSUPPORTED', 'passing a socket to a running process (handover run) is not supported on Windows')
}

/** Why unix and udp are refused on Windows; docs/windows.md says the same. */
function refuseUnsupported(spec: BindSpec): asserts spec is InetSpec & { transport: 'stream' } {
  if (spec.kind === 'unix') {
    throw new HandoverError(
      'ERR_UNSUPPORTED',
      `unix sockets are not supported on Windows: Node serves paths there as named pipes, which cannot be handed over (${spec.key})`,
    )
  }
  if (spec.transport === 'dgram') {
    throw new HandoverError(
      'ERR_UNSUPPORTED',
      `udp is not supported on Windows: dgram.Socket#bind() there adopts neither a SOCKET nor a handle (${spec.key})`,
    )
  }
}

/**
 * The single use of `process.binding('tcp_wrap')`. Node has no public way to
 * serve on an existing SOCKET: `server.listen({ fd })` takes the number for a
 * C runtime fd and fails with EINVAL. A TCP wrap opened on the socket is what
 * `server.listen({ handle })` expects, and is what Node's own handle passing
 * builds internally. `process.binding` is deprecated in the documentation
 * only (DEP0111); if a future Node removes it, this is the one place to fix.
 */
function tcpHandleFor(socket: number): TcpWrap {
  let TCP: (new (type: number) => TcpWrap & { open(socket: number): number }) | undefined
  let serverType: number | undefined
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding('tcp_wrap')
    TCP = binding.TCP as typeof TCP
    serverType = (binding.constants as { SERVER?: number } | undefined)?.SERVER
  } catch (err) {
    throw new HandoverError('ERR_UNSUPPORTED', `this Node (${process.version}) has no process.binding('tcp_wrap'), which handover needs on Windows`, {
      cause: err,
    })
  }
  if (typeof TCP !== 'function' || typeof serverType !== 'number') {
    throw new HandoverError('ERR_UNSUPPORTED', `this Node (${process.version}) has no usable TCP wrap, which handover needs on Windows`)
  }
  const handle = new TCP(serverType)
  const rc = handle.open(socket)
  if (rc !== 0) {
    handle.close()
    const code = getSystemErrorName(rc)
    throw new HandoverError(code, `open ${code}: cannot wrap socket ${socket} in a TCP handle`, { syscall: 'open' })
  }
  return handle
}

/**
 * Runs an addon call and names a Winsock failure the way Node names errors:
 * WSAEADDRINUSE (10048) becomes EADDRINUSE, with `errno` still 10048.
 */
function winsock<T>(call: () => T): T {
  try {
    return call()
  } catch (err) {
    const e = err as { errno?: unknown; code?: unknown }
    if (typeof e?.errno === 'number' && e.code === undefined) e.code = winsockName(e.errno)
    throw err
  }
}

function winsockName(errno: number): string | undefined {
  for (const [name, value] of Object.entries(constants.errno)) {
    if (value === errno && name.startsWith('WSAE')) return name.slice(3)
  }
  return undefined
}
