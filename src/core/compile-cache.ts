import { lstatSync, mkdirSync } from 'node:fs'
import module from 'node:module'
import { homedir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { ENV } from './options.js'

/**
 * Node's compile cache (22.1+) for the generations handover starts: a new
 * generation that finds its modules' compiled code on disk starts sooner,
 * and every later upgrade starts from a warm cache. Node 20 has none, and
 * ignores NODE_COMPILE_CACHE.
 *
 * Where: $CACHE_DIRECTORY/handover-compile-cache (systemd's CacheDirectory=),
 * else $XDG_CACHE_HOME/handover/compile-cache, else
 * ~/.cache/handover/compile-cache. Not Node's own default (a fixed name in
 * the shared tmp dir): compiled code read from a directory someone else can
 * write is code someone else chose. So the directory must be a real
 * directory (not a symlink), owned by this user, and closed to group and
 * others; handover creates it with mode 0700 if it is missing, and
 * otherwise, or if it cannot be created, starts generations without a cache.
 *
 * Not on Windows (yet): the checks rely on POSIX owners and modes.
 *
 * Off: the compileCache: false option, or HANDOVER_COMPILE_CACHE=0 in the
 * environment. A NODE_COMPILE_CACHE (or NODE_DISABLE_COMPILE_CACHE) the
 * next generation's environment already has is left as it is.
 */
// The marker set beside NODE_COMPILE_CACHE (ENV.compileCacheMarker) lets
// the new generation take both back out of its environment, so that the
// app's own children do not write into handover's cache: inherited-env.ts.
import './inherited-env.js'

// Windows: the safety checks below read POSIX owners and modes, which say nothing there.
const supported = process.platform !== 'win32' && typeof (module as { getCompileCacheDir?: unknown }).getCompileCacheDir === 'function'
let warned = false

/**
 * `env` for a next generation, with NODE_COMPILE_CACHE set when that is on
 * and a safe directory exists or could be made.
 */
export function withCompileCache(env: NodeJS.ProcessEnv, enabled = true): NodeJS.ProcessEnv {
  if (!enabled || !supported || process.env[ENV.compileCache] === '0') return env
  if (env.NODE_COMPILE_CACHE !== undefined || env.NODE_DISABLE_COMPILE_CACHE !== undefined) return env
  const dir = compileCacheDir(env)
  if (dir === undefined) return env
  return { ...env, NODE_COMPILE_CACHE: dir, [ENV.compileCacheMarker]: dir }
}

/** The directory, created if need be, or undefined if there is none or it is not safe (with one warning). */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = candidate(env)
  if (dir === undefined) return undefined
  const why = unsafeReason(dir)
  if (why === undefined) return dir
  if (!warned) {
    warned = true
    process.emitWarning(`not using ${dir} as the compile cache of new generations: ${why}`, {
      type: 'HandoverWarning',
      code: 'HANDOVER_COMPILE_CACHE_UNSAFE',
    })
  }
  return undefined
}

function candidate(env: NodeJS.ProcessEnv): string | undefined {
  // systemd may list several, separated by colons: the first is the unit's own.
  const systemd = env.CACHE_DIRECTORY?.split(':')[0]
  if (systemd && isAbsolute(systemd)) return join(systemd, 'handover-compile-cache')
  const xdg = env.XDG_CACHE_HOME
  if (xdg && isAbsolute(xdg)) return join(xdg, 'handover', 'compile-cache')
  let home: string
  try {
    home = env.HOME || homedir()
  } catch {
    return undefined
  }
  return home && isAbsolute(home) ? join(home, '.cache', 'handover', 'compile-cache') : undefined
}

/** Why `dir` will not do, or undefined if it will (made with mode 0700 if it did not exist). */
function unsafeReason(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    return `it cannot be created (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`
  }
  const st = lstatSync(dir)
  if (st.isSymbolicLink()) return 'it is a symbolic link'
  if (!st.isDirectory()) return 'it is not a directory'
  const uid = process.getuid?.()
  if (uid !== undefined && st.uid !== uid) return `it belongs to uid ${st.uid}, not to this process's uid ${uid}`
  if ((st.mode & 0o077) !== 0) return `its mode is 0${(st.mode & 0o777).toString(8)}: group or others have access (0700 is safe)`
  return undefined
}

/**
 * Writes what this process compiled so far to the cache, if it has one:
 * Node would otherwise write it only at exit, after the next generation
 * has already started without it. Node 22.10+.
 */
export function flushCompileCache(): void {
  const m = module as { getCompileCacheDir?: () => string | undefined; flushCompileCache?: () => void }
  if (m.getCompileCacheDir?.() === undefined || typeof m.flushCompileCache !== 'function') return
  try {
    m.flushCompileCache()
  } catch {
    // A cache is an optimisation: never a reason to fail.
  }
}
