import type { SocketInfo } from '../core/platform.js'

/** socket(2) types, as bindInet() takes them. */
export const SOCK_STREAM = 1
export const SOCK_DGRAM = 2

/** native/posix. Errors carry the OS errno as `errno`, and the failing call as `syscall`. */
export interface PosixAddon {
  bindInet(kind: number, family: 4 | 6, ip: string, port: number, v6only: boolean, backlog: number): number
  bindUnix(path: string, abstract: boolean, backlog: number): number
  duplicate(fd: number): number
  inspect(fd: number): SocketInfo
  setNonBlocking(fd: number): void
  /** One datagram to a unix datagram socket: a path, or an abstract name (without its NUL). */
  sdNotify(path: string, abstract: boolean, message: string): void
  /** One line on a unix stream socket, with `fd` attached (SCM_RIGHTS) unless it is -1. */
  sendSocket(channel: number, line: string, fd: number): void
  /** Sends `line`, then blocks up to `timeoutMs` for one answer line and the fd sent with it (-1 if none). */
  requestSocket(channel: number, line: string, timeoutMs: number): { line: string; fd: number }
  /** waitpid(pid, WNOHANG): true if that pid was a zombie child and is now reaped. */
  reapPid(pid: number): boolean
  /** A connected unix stream pair, both ends close-on-exec and non-blocking. */
  socketPair(): [number, number]
  /** native/posix/channel.cc; src/backend/posix-channel.ts is its only user. */
  Channel: new (
    fd: number,
    onRead: (chunk: Buffer, fds: number[]) => void,
    onWritten: (count: number) => void,
    onClose: (errno: number) => void,
  ) => NativeChannel
}

/** A unix stream socket on Node's loop that carries fds (SCM_RIGHTS). */
export interface NativeChannel {
  /** 0: handed to the kernel (or dropped: the channel is closed); 1: queued, counted later by onWritten. */
  write(data: Buffer, fd: number): 0 | 1
  ref(): void
  unref(): void
  close(): void
  readonly closed: boolean
  /** The errno that ended the channel; 0 for EOF, close(), or while open. */
  readonly errno: number
}
