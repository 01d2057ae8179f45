// What core/ needs from the operating system, as an interface: the
// implementations live in backend/ (one per OS), and the products (the
// Upgrader, the preload, the supervisor) load the one this platform needs
// and hand it to core. So core/ imports nothing above it.
import type { ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'
import type { BindSpec, Network } from './address.js'
import type { TransferEntry } from './protocol.js'

/** An OS socket: a file descriptor on POSIX, a SOCKET value on Windows. */
export type OsSocket = number

/** What getsockname, SO_TYPE and SO_ACCEPTCONN say about a socket. */
export interface SocketInfo {
  family: 'inet4' | 'inet6' | 'unix' | 'other'
  type: 'stream' | 'dgram' | 'seqpacket' | 'other'
  listening: boolean
  address?: string
  port?: number
  v6only?: boolean
  path?: string
  abstract?: boolean
}

/** What `net.Server#listen()` and `dgram.Socket#bind()` accept. */
export interface ListenTarget {
  fd?: number
  handle?: unknown
}

export interface OutgoingSocket {
  key: string
  network: Network
  address: string
  socket: OsSocket
  activated?: boolean
}

export interface SpawnRequest {
  command: string
  args: string[]
  cwd: string
  env: NodeJS.ProcessEnv
  sockets: OutgoingSocket[]
  /**
   * `handover run`'s workers: a second channel for socket requests (fd 4,
   * named by HANDOVER_SUPERVISOR), and a process group of their own, so a
   * terminal's Ctrl-C or a group SIGHUP reaches the supervisor alone.
   */
  worker?: boolean
}

/**
 * A byte stream between two processes that handover started one of: the
 * channel between generations, and a worker's link to the supervisor. Lines
 * of JSON are framed on top of it (core/channel.ts).
 */
export interface Transport {
  /**
   * True if it can carry OS sockets with its data (POSIX: SCM_RIGHTS over a
   * unix socket). Only then may write() be given one.
   */
  readonly carriesSockets: boolean
  /**
   * Writes `data`, with `socket` on its first byte if given (the kernel
   * passes a copy: the caller still owns its own). Resolves once handed to
   * the kernel, or at once if the peer has gone.
   */
  write(data: string, socket?: OsSocket): Promise<void>
  /**
   * Every chunk read, in order, with the sockets that came with it. A socket
   * always arrives no later than the last byte of the data it was sent with.
   */
  onData(listener: (chunk: string, sockets: OsSocket[]) => void): void
  /** Once, when the other side has gone (EOF or an error) or destroy() was called. */
  onClose(listener: () => void): void
  /** Keeps the event loop alive while this is open (the default). */
  ref(): void
  unref(): void
  destroy(): void
  readonly closed: boolean
}

export interface SpawnedChild {
  child: ChildProcess
  /** The parent's end of the channel to the child; missing if Node ran out of fds setting it up. */
  channel?: Transport
  /** Workers only: the supervisor's end of the socket-request channel. */
  requests?: Socket
  /** What the hello message tells the child about each socket. */
  transfer: TransferEntry[]
}

/**
 * Everything that differs between operating systems. The rest of handover
 * only talks to sockets through this.
 */
export interface PlatformBackend {
  /** Creates, binds and (for streams) listens; the socket is not inheritable. */
  bind(spec: BindSpec, backlog: number): OsSocket
  inspect(socket: OsSocket): SocketInfo
  close(socket: OsSocket): void
  /** A copy of the socket that is not inheritable, for the caller to own and close. */
  duplicate(socket: OsSocket): OsSocket
  /** A new handle on the same socket, for one server to own and close. */
  adoptable(socket: OsSocket): ListenTarget
  /** Starts the next generation with the sockets and a control channel. */
  spawn(request: SpawnRequest): SpawnedChild
  /** Child side: takes ownership of a socket the parent described. */
  receive(entry: TransferEntry): OsSocket
  /** Child side: opens the channel to the parent that the environment names. */
  openChannel(fd: number): Transport
  /**
   * A connected pair of stream sockets, both close-on-exec: a private
   * connection from this process to its own server (the ready probe). POSIX
   * only (absent on Windows).
   */
  socketPair?(): [OsSocket, OsSocket]
  /**
   * After a hand-off, before exit() resolves: stops this process's servers
   * accepting on the sockets passed on, if the platform needs it done with
   * care (Windows; see win-accepts.ts).
   */
  retireListeners?(): Promise<void>
  /**
   * `handover run`, supervisor side: one line on the socket-request channel
   * (a unix stream socket's fd), with `socket` attached if given. POSIX
   * only (SCM_RIGHTS); the supervisor refuses to start on Windows.
   */
  sendSocket(channel: number, line: string, socket?: OsSocket): void
  /**
   * `handover run`, worker side: sends `line`, then blocks up to `timeoutMs`
   * for one answer line and the socket sent with it, if any.
   */
  requestSocket(channel: number, line: string, timeoutMs: number): { line: string; socket?: OsSocket }
}
