import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { HandoverError } from '../core/errors.js'
// Only the default of loadAddon's type parameter: the tests' loadAddon().bindInet(...).
import type { PosixAddon } from './posix-addon.js'

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
