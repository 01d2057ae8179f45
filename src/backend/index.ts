import type { PlatformBackend } from './types.js'

export type * from './types.js'

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
