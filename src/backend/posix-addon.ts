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
}
