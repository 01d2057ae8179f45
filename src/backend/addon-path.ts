import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** What node-gyp-build reads to pick another binary than the usual one. */
const OVERRIDES = ['PREBUILDS_ONLY', 'HANDOVER_PREBUILD', 'LIBC', 'ARM_VERSION', 'npm_config_arch', 'npm_config_platform']

/**
 * The addon binary node-gyp-build would pick, found without it: loading
 * node-gyp-build is a new generation's first CommonJS load, on the upgrade's
 * critical path. Only the layouts this package ships are recognised: a source
 * build in build/Release, the glibc prebuild on Linux, the Windows prebuild.
 * Anything else (an override in the environment, a Debug build, musl or a
 * libc this cannot tell, another platform) answers undefined, and
 * node-gyp-build decides as before.
 */
export function expectedAddonPath(root: string): string | undefined {
  if (OVERRIDES.some((name) => process.env[name] !== undefined)) return undefined
  if (process.versions.electron !== undefined || process.versions.nw !== undefined) return undefined
  const source = join(root, 'build', 'Release', 'handover.node')
  if (existsSync(source)) return source
  // Some other build (Debug, a renamed binary): node-gyp-build prefers it to a prebuild.
  if (existsSync(join(root, 'build'))) return undefined
  const prebuild = prebuildName()
  if (prebuild === undefined) return undefined
  const path = join(root, 'prebuilds', `${process.platform}-${process.arch}`, prebuild)
  return existsSync(path) ? path : undefined
}

function prebuildName(): string | undefined {
  if (process.platform === 'win32' && process.arch === 'x64') return 'handover.node'
  if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) {
    return runsOnGlibc() ? 'handover.glibc.node' : undefined
  }
  return undefined
}

/**
 * Whether this process is linked against glibc, from the libraries it has
 * mapped: never hand a glibc binary to a musl process. node-gyp-build only
 * looks for /etc/alpine-release; when that exists, it decides.
 */
export function runsOnGlibc(): boolean {
  if (existsSync('/etc/alpine-release')) return false
  let maps: string
  try {
    maps = readFileSync('/proc/self/maps', 'latin1')
  } catch {
    return false
  }
  return !/musl/.test(maps) && /\/libc(?:\.so\.6|-2\.\d+\.so)$/m.test(maps)
}
