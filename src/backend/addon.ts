import { createRequire } from 'node:module'
import { basename, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HandoverError } from '../core/errors.js'
import { expectedAddonPath, runsOnGlibc } from './addon-path.js'
import type { PosixAddon } from './posix-addon.js'

let addon: unknown

/** What the published package carries prebuilt addons for (scripts/prepack.mjs), as node-gyp-build names them. */
const PREBUILT = 'linux-x64 and linux-arm64 with glibc, and win32-x64'

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
      throw new HandoverError('ERR_NATIVE_ADDON', advice(root, String((err as Error)?.message ?? err).split('\n')[0]), { cause: err })
    }
  }
  return addon
}

/** The addon as POSIX builds it (posix-addon.ts says what it exports); only code that runs on POSIX alone may call this. */
export function posixAddon(): PosixAddon {
  return loadAddon() as PosixAddon
}

/**
 * What to do, in commands that work where handover is a dependency (its own
 * npm scripts do not exist there). npm 11 lists a dependency's install script
 * until the project approves it, and skips it when the project denies it, or
 * under --ignore-scripts; npm's documented default to come skips it until
 * approved. handover's script (node-gyp-build) builds the addon from source
 * where no prebuild fits, so that is the step that did not happen.
 */
function advice(root: string, why: string): string {
  const platform = `${process.platform}-${process.arch}${process.platform === 'linux' ? (runsOnGlibc() ? ', glibc' : ', not glibc') : ''}`
  const parent = dirname(root)
  // root is <project>/node_modules/handover/ when handover is a dependency.
  const project = basename(parent) === 'node_modules' ? dirname(parent) : undefined
  if (project === undefined) {
    return `handover's native addon could not be loaded from ${root} (${why}). In a checkout of handover, build it: npm run build:native`
  }
  const rebuild = `From ${project}, run:\n  npm install-scripts approve handover\n  npm rebuild handover --ignore-scripts=false\n`
  if (!/No native build was found/.test(why)) {
    return `handover's native addon in ${root} could not be loaded (${why}). To build it again from source (a C++ compiler, make and Python 3), ${rebuild}`
  }
  return (
    `handover's native addon is not built for this platform (${platform}): no prebuild fits it (the package has them for ${PREBUILT}), ` +
    'and the build from source that its install script (node-gyp-build) makes did not run: npm skips it under --ignore-scripts, ' +
    `when the project's allowScripts denies it, and (as npm 11 documents) until the project approves it. ${rebuild}` +
    'The first line needs an npm that has install-scripts (npm 11.19 has it); an older npm runs install scripts unless told not to, and needs only the second. ' +
    'Building needs a C++ compiler, make and Python 3 (on Alpine: apk add build-base python3). ' +
    "If package.json's allowScripts denies handover, remove that entry first: approve leaves a denial in place. " +
    `(${why})`
  )
}
