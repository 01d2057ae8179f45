import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { HandoverError } from '../core/errors.js'

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

export const SOCK_STREAM = 1
export const SOCK_DGRAM = 2

export interface PosixAddon {
  bindInet(kind: number, family: 4 | 6, ip: string, port: number, v6only: boolean, backlog: number): number
  bindUnix(path: string, abstract: boolean, backlog: number): number
  duplicate(fd: number): number
  inspect(fd: number): SocketInfo
  setNonBlocking(fd: number): void
  /** One datagram to a unix datagram socket: a path, or an abstract name (without its NUL). */
  sdNotify(path: string, abstract: boolean, message: string): void
  /** One line on a unix stream socket, with `fd` attached (SCM_RIGHTS) unless it is -1. */
  passFd(channel: number, line: string, fd: number): void
  /** Sends `line`, then blocks up to `timeoutMs` for one answer line and the fd sent with it (-1 if none). */
  askForFd(channel: number, line: string, timeoutMs: number): { line: string; fd: number }
  /** waitpid(pid, WNOHANG): true if that pid was a zombie child and is now reaped. */
  reapPid(pid: number): boolean
}

let addon: unknown

/** The platforms the published package carries a prebuilt addon for (see prepack in package.json). */
const PREBUILT_PLATFORMS = ['linux-x64', 'win32-x64']

/** Loads the addon on first use, so importing handover never fails on its own. */
export function loadAddon<T = PosixAddon>(): T {
  if (addon === undefined) {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    try {
      const require = createRequire(import.meta.url)
      const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown
      addon = nodeGypBuild(root)
    } catch (err) {
      // The advice must work from the user's project, where handover is a
      // dependency: its own npm scripts (build:native) do not exist there.
      const why = String((err as Error)?.message ?? err).split('\n')[0]
      throw new HandoverError(
        'ERR_NATIVE_ADDON',
        `handover's native addon could not be loaded from ${root} (${why}). ` +
          `Reinstall handover with a C++ toolchain present (npm rebuild handover), ` +
          `or use a platform with a prebuilt addon: ${PREBUILT_PLATFORMS.join(', ')} (this is ${process.platform}-${process.arch})`,
        { cause: err },
      )
    }
  }
  return addon as T
}
