import { resolve } from 'node:path'
import { HandoverError } from './errors.js'

/** The longest timer Node honours: it clamps longer ones to 1 ms. Every timeout option's upper bound. */
export const MAX_TIMEOUT = 2_147_483_647

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
  /**
   * Start the next generations with Node's compile cache (Node 22+), in a
   * private per-user directory; see compile-cache.ts. Default true.
   */
  compileCache?: boolean
}

export interface UpgradeOptions {
  /** Aborting it kills the new process; upgrade() rejects with ERR_ABORTED. */
  signal?: AbortSignal
  /**
   * In a new generation whose parent is still draining: milliseconds to wait
   * for the parent to exit before starting the next one. Default 0: reject
   * at once with ERR_PARENT_NOT_EXITED, as when the wait runs out.
   */
  waitForParent?: number
}

export interface WaitOptions {
  signal?: AbortSignal
  /** Milliseconds; rejects with ERR_TIMEOUT when they run out. */
  timeout?: number
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
  compileCache: boolean
}

/** Checks every option (ERR_INVALID_OPTION) and fills in the defaults. */
export function resolveOptions(o: UpgraderOptions): Resolved {
  checkObject('options', o)
  const string = (name: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined
    if (typeof v !== 'string' || v === '') throw invalidOption(name, v, 'a non-empty string')
    return v
  }
  const args = checkStrings('args', o.args)
  if (o.env !== undefined) checkObject('env', o.env)
  const cwd = string('cwd', o.cwd) ?? process.cwd()
  return {
    upgradeTimeout: msOption('upgradeTimeout', o.upgradeTimeout, 60_000, 1),
    parentTimeout: msOption('parentTimeout', o.parentTimeout, 10_000, 1),
    controlSocket: controlSocketPath(o.controlSocket),
    controlSocketMode: fileMode('controlSocketMode', o.controlSocketMode, 0o600),
    probation: msOption('probation', o.probation, 0, 0),
    pidFile: o.pidFile === undefined ? undefined : resolve(cwd, string('pidFile', o.pidFile) as string),
    command: string('command', o.command) ?? process.execPath,
    args: args ?? [...process.execArgv, ...process.argv.slice(1)],
    cwd,
    env: o.env,
    compileCache: boolean('compileCache', o.compileCache, true),
  }
}

/** upgrade()'s options; returns how long to wait for the parent (ms). */
export function resolveUpgradeOptions(options: UpgradeOptions | undefined): number {
  if (options === undefined) return 0
  checkObject('options', options)
  checkSignal(options.signal)
  return msOption('waitForParent', options.waitForParent, 0, 0)
}

/** waitForParent()'s options. */
export function checkWaitOptions(options: WaitOptions | undefined): void {
  if (options === undefined) return
  checkObject('options', options)
  checkSignal(options.signal)
  msOption('timeout', options.timeout, 0, 0)
}

export function invalidOption(name: string, value: unknown, expected: string): HandoverError {
  return new HandoverError('ERR_INVALID_OPTION', `option ${name} must be ${expected}, not ${JSON.stringify(value) ?? String(value)}`)
}

export function checkObject(name: string, v: unknown): void {
  if (typeof v !== 'object' || v === null) throw invalidOption(name, v, 'an object')
}

/** A number of ms from `min` to MAX_TIMEOUT; `dflt` if undefined. */
export function msOption(name: string, v: unknown, dflt: number, min: 0 | 1): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !(v >= min && v <= MAX_TIMEOUT)) throw invalidOption(name, v, `a number of ms from ${min} to ${MAX_TIMEOUT}`)
  return v
}

/**
 * A number of ms written as text (an environment variable, a command-line
 * argument): digits only, from `min` to `max`. Undefined if it is not one,
 * for the caller to say so in its own terms.
 */
export function parseMs(text: string, min: number, max = MAX_TIMEOUT): number | undefined {
  const value = Number(text)
  return /^\d+$/.test(text) && value >= min && value <= max ? value : undefined
}

export function checkSignal(v: unknown): void {
  if (v !== undefined && !(v instanceof AbortSignal)) throw invalidOption('signal', v, 'an AbortSignal')
}

export function checkStrings(name: string, v: unknown): string[] | undefined {
  if (v !== undefined && !(Array.isArray(v) && v.every((a) => typeof a === 'string'))) throw invalidOption(name, v, 'an array of strings')
  return v as string[] | undefined
}

export function fileMode(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0o777) throw invalidOption(name, v, 'a file mode from 0 to 0o777')
  return v as number
}

function boolean(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt
  if (typeof v !== 'boolean') throw invalidOption(name, v, 'true or false')
  return v
}

function controlSocketPath(v: unknown): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v === '' || v.includes('\0')) throw invalidOption('controlSocket', v, 'a unix socket path')
  // Nothing checks who connects to an abstract socket: anyone could upgrade.
  if (v.startsWith('@')) throw invalidOption('controlSocket', v, 'a path, not an abstract @name, which has no permissions')
  return v
}
