import { resolve } from 'node:path'
import { invalidOption, MAX_TIMEOUT } from './errors.js'

export interface UpgraderOptions {
  /** Milliseconds the next generation has to call ready(). Default 60 000. */
  upgradeTimeout?: number
  /** Written atomically with this process's pid on ready(). */
  pidFile?: string
  /** How the next generation is started; each defaults to this process's own. */
  command?: string
  args?: string[]
  cwd?: string
  /** Default: process.env as it is when upgrade() is called. */
  env?: NodeJS.ProcessEnv
  /** Milliseconds create() waits for the parent's hello in a new generation. Default 10 000. */
  parentTimeout?: number
  /** A unix socket path that answers `upgrade` and `status` (see the CLI); passed on like any listener. */
  controlSocket?: string
  /** Permissions of the control socket file. Default 0o600: only the server's user may upgrade. */
  controlSocketMode?: number
  /**
   * Milliseconds both generations serve after the new one's ready(); the
   * hand-off happens only if the new one is still running then. Default 0.
   */
  probation?: number
}

/** The options with their defaults filled in. */
export interface Resolved {
  upgradeTimeout: number
  pidFile?: string
  command: string
  args: string[]
  cwd: string
  env?: NodeJS.ProcessEnv
  parentTimeout: number
  controlSocket?: string
  controlSocketMode: number
  probation: number
}

/** Checks every option (ERR_INVALID_OPTION) and fills in the defaults. */
export function resolveOptions(o: UpgraderOptions): Resolved {
  if (typeof o !== 'object' || o === null) throw invalidOption('options', o, 'an object')
  const positive = (name: string, v: unknown, dflt: number, zeroAllowed = false): number => {
    if (v === undefined) return dflt
    if (typeof v !== 'number' || !((zeroAllowed ? v >= 0 : v > 0) && v <= MAX_TIMEOUT)) {
      throw invalidOption(name, v, `a number of ms from ${zeroAllowed ? 0 : 1} to ${MAX_TIMEOUT}`)
    }
    return v
  }
  const string = (name: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined
    if (typeof v !== 'string' || v === '') throw invalidOption(name, v, 'a non-empty string')
    return v
  }
  if (o.args !== undefined && !(Array.isArray(o.args) && o.args.every((a) => typeof a === 'string'))) {
    throw invalidOption('args', o.args, 'an array of strings')
  }
  if (o.env !== undefined && (typeof o.env !== 'object' || o.env === null)) throw invalidOption('env', o.env, 'an object')
  const cwd = string('cwd', o.cwd) ?? process.cwd()
  return {
    upgradeTimeout: positive('upgradeTimeout', o.upgradeTimeout, 60_000),
    parentTimeout: positive('parentTimeout', o.parentTimeout, 10_000),
    controlSocket: controlSocketPath(o.controlSocket),
    controlSocketMode: fileMode('controlSocketMode', o.controlSocketMode, 0o600),
    probation: positive('probation', o.probation, 0, true),
    pidFile: o.pidFile === undefined ? undefined : resolve(cwd, string('pidFile', o.pidFile) as string),
    command: string('command', o.command) ?? process.execPath,
    args: o.args ?? [...process.execArgv, ...process.argv.slice(1)],
    cwd,
    env: o.env,
  }
}

function controlSocketPath(v: unknown): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v === '' || v.includes('\0')) throw invalidOption('controlSocket', v, 'a unix socket path')
  // Nothing checks who connects to an abstract socket: anyone could upgrade.
  if (v.startsWith('@')) throw invalidOption('controlSocket', v, 'a path, not an abstract @name, which has no permissions')
  return v
}

function fileMode(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0o777) throw invalidOption(name, v, 'a file mode from 0 to 0o777')
  return v as number
}
