import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { HandoverError } from '../core/errors.js'
import { expectedAddonPath } from './addon-path.js'
import type { PosixAddon } from './posix-addon.js'

let addon: unknown

/** The platforms the published package carries a prebuilt addon for (see prepack in package.json). */
const PREBUILT_PLATFORMS = ['linux-arm64', 'linux-x64', 'win32-x64']

/** dlopen of the binary node-gyp-build would pick, if that is certain; undefined if not, or if it fails. */
function loadExpected(root: string): unknown {
  const path = expectedAddonPath(root)
  if (path === undefined) return undefined
  const module = { exports: {} as unknown }
  try {
    process.dlopen(module, path)
  } catch {
    // node-gyp-build tries again, and its error is the one reported.
    return undefined
  }
  return module.exports
}

/**
 * Loads the addon on first use, so importing handover never fails on its
 * own. Its shape depends on the platform: posix-addon.ts and win.ts say
 * what each build exports.
 */
export function loadAddon(): unknown {
  if (addon === undefined) {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    try {
      addon = loadExpected(root) ?? (createRequire(import.meta.url)('node-gyp-build') as (dir: string) => unknown)(root)
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
  return addon
}

/** The addon as POSIX builds it (posix-addon.ts says what it exports); only code that runs on POSIX alone may call this. */
export function posixAddon(): PosixAddon {
  return loadAddon() as PosixAddon
}
