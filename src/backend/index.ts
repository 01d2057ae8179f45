import { HandoverError } from '../core/errors.js'
import type { PlatformBackend } from '../core/platform.js'
import { posixAddon } from './addon.js'

let backend: Promise<PlatformBackend> | undefined

/**
 * Loaded on first use, and only the one this platform needs: every module
 * a new generation imports adds to the upgrade's latency.
 */
export function platformBackend(): Promise<PlatformBackend> {
  backend ??=
    process.platform === 'win32'
      ? import('./win.js').then(({ WinBackend }) => new WinBackend())
      : import('./posix.js').then(({ PosixBackend }) => new PosixBackend())
  return backend
}

/**
 * One sd_notify datagram to a unix datagram socket (a path, or an abstract
 * name without its NUL), which Node's dgram cannot send. Not a
 * PlatformBackend method: notify() is synchronous and may be called before
 * any Upgrader has loaded the backend, and only import() loads that.
 */
export function sendNotify(path: string, abstract: boolean, message: string): void {
  if (process.platform === 'win32') throw new HandoverError('ERR_UNSUPPORTED', 'sd_notify is not supported on Windows')
  posixAddon().sdNotify(path, abstract, message)
}
