import type { ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'
import type { BindSpec, Network } from '../core/address.js'
import type { SocketInfo } from './addon.js'

/** An OS socket: a file descriptor on POSIX, a SOCKET value on Windows. */
export type OsSocket = number

/** What `net.Server#listen()` and `dgram.Socket#bind()` accept. */
export interface ListenTarget {
  fd?: number
  handle?: unknown
}

/** One socket as the control channel describes it to the next generation. */
export interface TransferEntry {
  key: string
  network: Network
  address: string
  /** POSIX: the fd number the socket has in the child. */
  fd?: number
  /** Windows: the base64 WSAPROTOCOL_INFOW duplicated for the child. */
  info?: string
  /** Windows: the pid `info` was duplicated for; no other process may import it. */
  pid?: number
  /** From socket activation: the service manager owns the unix socket file, so no generation removes it. */
  activated?: boolean
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

export interface SpawnedChild {
  child: ChildProcess
  /** The parent's end of the control channel; missing if Node ran out of fds setting it up. */
  control?: Socket
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
  /** A new handle on the same socket, for one server to own and close. */
  adoptable(socket: OsSocket): ListenTarget
  /** Starts the next generation with the sockets and a control channel. */
  spawn(request: SpawnRequest): SpawnedChild
  /** Child side: takes ownership of a socket the parent described. */
  receive(entry: TransferEntry): OsSocket
  /** Child side: opens the control channel named by the environment. */
  openControl(fd: number): Socket
  /**
   * After a hand-off, before exit() resolves: stops this process's servers
   * accepting on the sockets passed on, if the platform needs it done with
   * care (Windows; see win-accepts.ts).
   */
  retireListeners?(): Promise<void>
}
