import { resolve } from 'node:path'
import { HandoverError } from './errors.js'
import {
  booleanOption, checkName, checkObject, checkSignal, checkStrings, fileMode, functionOption, hostPortOption, integerOption, invalidOption, MAX_TIMEOUT,
  msOption, msText, nonEmptyString, sizeOption, type HostPort, fractionOption, readyProbePath,
} from './option-values.js'

/**
 * Every option of the three products (the Upgrader, drain(), handover/register
 * and `handover run`), their defaults and the HANDOVER_* names, in one
 * place: each wait has one name and one default wherever it is set.
 * It is longer than a file here usually is for that reason: splitting it by
 * product would scatter the defaults again. The value checks themselves
 * (what a millisecond, a size or a path may be) are in option-values.ts.
 */

// The value checks, for code that reads option values itself (the CLI, the control socket).
export { checkName, choiceText, hostPortText, MAX_TIMEOUT, msText, NAME_MAX, nameProblem, parseMs, readyProbePath, sizeText, wordsText, type HostPort } from './option-values.js'

/** Every default. */
export const DEFAULTS = {
  /** ms a new generation (or a new worker) has to become ready. */
  readyTimeout: 60_000,
  /** ms a new generation waits for its parent's hello. */
  parentTimeout: 10_000,
  /** ms a draining process lets its connections finish before it destroys them. */
  drainTimeout: 30_000,
  /** ms an idle or freshly accepted HTTP connection may still send its next request during a drain. */
  idleGrace: 500,
  /** ms after the drain that a preloaded process still alive is made to exit. */
  exitGrace: 5_000,
  /** ms within which a preloaded process asks its long-lived connections to leave, spread out (drain()'s leaveWindow). */
  leaveWindow: 10_000,
  /** ms both generations serve after the new one is ready, before the hand-off. */
  probation: 0,
  /** Workers per generation under `handover run`. */
  workers: 1,
  /** The control socket's file mode: only the server's user may upgrade. */
  controlSocketMode: 0o600,
  /** ms a worker's listen() waits for the supervisor to pass a socket it asked for. */
  socketRequestTimeout: 10_000,
  /** A worker's own drain gives up (destroying what is left) this long before the supervisor would kill it. */
  workerDrainMargin: 1_000,
  /** `handover upgrade` waits the ready timeout plus this for the answer: what the server may need to kill and reap a new process that missed it. */
  answerGrace: 5_000,
  /** ms `handover status` waits for its answer. */
  statusWait: 5_000,
  /** ms `handover stop` waits for the process to exit: under systemd's default TimeoutStopSec= of 90 s. */
  stopWait: 80_000,
  /** The signal that asks for an upgrade (handover/register, handover run). */
  upgradeSignal: 'SIGHUP' as UpgradeSignal,
  /** ms `handover run` keeps serving after SIGTERM, /readyz failing, before the drain. */
  shutdownDelay: 0,
  /** The supervisor's own events: `handover: …` text lines. */
  logFormat: 'text' as LogFormat,
  /** /livez fails when the supervisor's event loop was stalled this long (ms). */
  livenessThreshold: 2_000,
  /** ms between the supervisor's samples of its workers (RSS, CPU, requests; --max-rss, metrics, status). */
  sampleInterval: 1_000,
  /** The shortest --watchdog (ms): a worker's loop may be busy a moment without being hung. */
  minWatchdog: 100,
  /** ms between the supervisor's looks at how its workers' connections are spread (balancer.ts). */
  balanceInterval: 1_000,
  /** ms a worker told to shed connections tries to (each must come idle between two requests): under balanceInterval, so that the next look sees the result. */
  shedWindow: 800,
} as const

/**
 * The signals an upgrade may be asked for with. SIGHUP is the default;
 * SIGUSR2 is what grace, einhorn and unicorn users expect. SIGUSR1 is
 * left out: Node starts its inspector on it.
 */
export const UPGRADE_SIGNALS = ['SIGHUP', 'SIGUSR2'] as const
export type UpgradeSignal = (typeof UPGRADE_SIGNALS)[number]

/** The most workers one generation may have. */
export const MAX_WORKERS = 1024

/**
 * Every environment variable handover reads or sets. The first group is
 * settings (handover/register reads them; they stay in the environment on
 * purpose, since the next generation must read the same values). The
 * second is protocol: set for one process by the one that starts it, read
 * and removed from process.env at import (core/inherited-env.ts).
 */
export const ENV = {
  pidFile: 'HANDOVER_PID_FILE',
  readyTimeout: 'HANDOVER_READY_TIMEOUT',
  /** The older name of HANDOVER_READY_TIMEOUT, still read. */
  upgradeTimeout: 'HANDOVER_UPGRADE_TIMEOUT',
  drainTimeout: 'HANDOVER_DRAIN_TIMEOUT',
  exitGrace: 'HANDOVER_EXIT_GRACE',
  /** ms, or `off`: the leave window of handover/register's drains (drain()'s leaveWindow). */
  leaveWindow: 'HANDOVER_LEAVE_WINDOW',
  /** `0`: handover/register's drains close idle connections instead of handing them over (drain()'s handOff). */
  handOff: 'HANDOVER_HAND_OFF',
  /** A path each new generation's HTTP servers must answer with a 2xx before it is ready (the readyProbe option). */
  readyProbe: 'HANDOVER_READY_PROBE',
  /** ms both generations serve after the new one is ready, before the hand-off (the probation option). */
  probation: 'HANDOVER_PROBATION',
  /** SIGHUP (default) or SIGUSR2: the signal that upgrades; read by a new generation from import on, to ignore it while it starts. */
  upgradeSignal: 'HANDOVER_UPGRADE_SIGNAL',
  /** `0` starts new generations without Node's compile cache. */
  compileCache: 'HANDOVER_COMPILE_CACHE',
  /** handover/register's control socket: a path, or `0` (also `off`) for none. Default: <runtime dir>/<HANDOVER_NAME>.sock. */
  controlSocket: 'HANDOVER_CONTROL_SOCKET',
  /** handover/register's service name: its control socket is <runtime dir>/<name>.sock. Default: the script's base name. */
  name: 'HANDOVER_NAME',

  /** The channel to the parent (the previous generation or the supervisor): its fd. Read by every release since the first. */
  channel: 'HANDOVER_CONTROL',
  /** A worker of `handover run`: the fd of its socket-request channel to the supervisor. */
  supervisor: 'HANDOVER_SUPERVISOR',
  /** Set beside NODE_COMPILE_CACHE when handover put it there (core/compile-cache.ts). */
  compileCacheMarker: 'HANDOVER_NODE_COMPILE_CACHE',
} as const

// --- The Upgrader ---

export interface UpgraderOptions {
  /** Milliseconds the next generation has to call ready(). Default 60 000. */
  readyTimeout?: number
  /** The older name of readyTimeout. */
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
  /** Told what handover does on its own (a queued upgrade...); see UpgraderEvent. */
  onEvent?: (event: UpgraderEvent) => void
  /**
   * A path (`/healthz`) that each HTTP server of this process on a socket
   * from handover must answer with a 2xx before ready() completes: GET over
   * a private socketpair to this process's own server, retried until the
   * parent's readyTimeout (or this process's, without a parent). POSIX only.
   */
  readyProbe?: string
}

/** What the Upgrader tells the onEvent option. */
export type UpgraderEvent =
  /** upgrade({ queue: true }) joined the follow-up of the upgrade under way; `waiting` requests have. */
  | { type: 'upgrade-queued'; waiting: number }
  /** A queued request reached this process after it handed over: its successor `pid` runs it. */
  | { type: 'upgrade-passed-on'; pid: number }
  /** The previous generation passed on a deploy requested while this one started: this one runs it. */
  | { type: 'upgrade-requested-by-parent' }

export interface UpgradeOptions {
  /** Aborting it kills the new process; upgrade() rejects with ERR_ABORTED. */
  signal?: AbortSignal
  /**
   * In a new generation whose parent has not handed over yet (its
   * probation): milliseconds to wait for the hand-off before starting the
   * next one. Default 0: reject at once with ERR_PARENT_NOT_EXITED, as when
   * the wait runs out. A parent that has handed over and only drains does
   * not hold an upgrade up.
   */
  waitForParent?: number
  /**
   * If an upgrade is under way, join one follow-up generation started once
   * it settles, instead of failing with ERR_UPGRADE_IN_PROGRESS; also after
   * this process handed over (its successor starts it). Resolves with the
   * follow-up's pid. Default false.
   */
  queue?: boolean
}

export interface WaitOptions {
  signal?: AbortSignal
  /** Milliseconds; rejects with ERR_TIMEOUT when they run out. */
  timeout?: number
}

export interface ListenOptions {
  /**
   * Claim the activated socket with this name (FileDescriptorName= in the
   * .socket unit, LISTEN_FDNAMES) whatever its address; the address is the
   * fallback when no socket of that name was passed. The name then
   * identifies the socket in later generations too.
   */
  name?: string
}

/** The Upgrader's options with their defaults filled in. */
export interface UpgraderSettings {
  readyTimeout: number
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
  onEvent?: (event: UpgraderEvent) => void
  readyProbe?: string
}

/** Checks every option (ERR_INVALID_OPTION) and fills in the defaults. */
export function resolveUpgraderOptions(o: UpgraderOptions): UpgraderSettings {
  checkObject('options', o)
  const args = checkStrings('args', o.args)
  if (o.env !== undefined) checkObject('env', o.env)
  const cwd = nonEmptyString('cwd', o.cwd) ?? process.cwd()
  const pidFile = nonEmptyString('pidFile', o.pidFile)
  return {
    readyTimeout: readyTimeoutOf(o),
    parentTimeout: msOption('parentTimeout', o.parentTimeout, DEFAULTS.parentTimeout, 1),
    controlSocket: controlSocketPath(o.controlSocket),
    controlSocketMode: fileMode('controlSocketMode', o.controlSocketMode, DEFAULTS.controlSocketMode),
    probation: msOption('probation', o.probation, DEFAULTS.probation, 0),
    pidFile: pidFile === undefined ? undefined : resolve(cwd, pidFile),
    command: nonEmptyString('command', o.command) ?? process.execPath,
    args: args ?? [...process.execArgv, ...process.argv.slice(1)],
    cwd,
    env: o.env,
    compileCache: booleanOption('compileCache', o.compileCache, true),
    onEvent: functionOption('onEvent', o.onEvent),
    readyProbe: readyProbePath('readyProbe', o.readyProbe),
  }
}

/** readyTimeout, or its older name upgradeTimeout; both at once must agree. */
function readyTimeoutOf(o: { readyTimeout?: unknown; upgradeTimeout?: unknown }): number {
  const ready = msOption('readyTimeout', o.readyTimeout, DEFAULTS.readyTimeout, 1)
  if (o.upgradeTimeout === undefined) return ready
  const older = msOption('upgradeTimeout', o.upgradeTimeout, DEFAULTS.readyTimeout, 1)
  if (o.readyTimeout !== undefined && older !== ready) {
    throw invalidOption('upgradeTimeout', o.upgradeTimeout, `left out: it is the older name of readyTimeout, which is ${ready}`)
  }
  return older
}

/** upgrade()'s options; returns how long to wait for the parent (ms). */
export function resolveUpgradeOptions(options: UpgradeOptions | undefined): number {
  if (options === undefined) return 0
  checkObject('options', options)
  checkSignal(options.signal)
  booleanOption('queue', options.queue, false)
  return msOption('waitForParent', options.waitForParent, 0, 0)
}

/** waitForParent()'s options. */
export function checkWaitOptions(options: WaitOptions | undefined): void {
  if (options === undefined) return
  checkObject('options', options)
  checkSignal(options.signal)
  msOption('timeout', options.timeout, 0, 0)
}

/** listen()'s options; returns the name, if any. */
export function listenName(options: ListenOptions | undefined): string | undefined {
  if (options === undefined) return undefined
  checkObject('options', options)
  const { name } = options
  if (name === undefined) return undefined
  // systemd's own rule for FileDescriptorName=.
  if (typeof name !== 'string' || !/^[\x21-\x39\x3b-\x7e]{1,255}$/.test(name)) {
    throw invalidOption('name', name, '1 to 255 printable ASCII characters without ":" or spaces')
  }
  return name
}

/**
 * The control socket's path, for the Upgrader and `handover run` alike: a
 * file path, never an abstract `@name`, which has no permissions, so anyone
 * on the host could upgrade or stop the service through it.
 */
export function controlSocketPath(v: unknown): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v === '' || v.includes('\0')) throw invalidOption('controlSocket', v, 'a unix socket path')
  if (v.startsWith('@')) throw invalidOption('controlSocket', v, 'a path, not an abstract @name, which has no permissions')
  return v
}

// --- drain() ---

export interface DrainOptions {
  /**
   * Milliseconds an idle or freshly accepted HTTP connection may still send
   * its next request (answered with `Connection: close`) before it is closed.
   * Default 500.
   */
  idleGrace?: number
  /** Milliseconds until the remaining connections are destroyed. Default 30 000. */
  timeout?: number
  /** Aborting it ends the drain at once, as if the timeout had run out. */
  signal?: AbortSignal
  /**
   * Milliseconds within which long-lived connections (WebSockets, event
   * streams, plain `net` connections) are asked to leave, each at its own
   * moment, so that their clients do not all reconnect at once. At most 3/4
   * of `timeout`: a longer window is clamped. Default: none, they are left
   * open until the timeout (or until the app's onDrain() hooks close them).
   */
  leaveWindow?: number
  /**
   * Hand idle keep-alive HTTP/1 connections to the process that serves next
   * (the next generation, or under `handover run` a worker of the serving
   * generation) instead of closing them, where it can take them: a plain
   * http.Server on a socket from an Upgrader, POSIX, protocol 2 on both
   * sides. Default true; false closes them after idleGrace, as before.
   */
  handOff?: boolean
}

export interface DrainSettings {
  idleGrace: number
  timeout: number
  handOff: boolean
  signal?: AbortSignal
  /** Clamped to maxLeaveWindow(timeout); undefined: long-lived connections stay until the timeout. */
  leaveWindow?: number
}

/** The longest leave window a drain of `timeout` ms allows: 3/4 of it, so that the last to leave has time to. */
export function maxLeaveWindow(timeout: number): number {
  return Math.floor(timeout * 0.75)
}

export function resolveDrainOptions(options: DrainOptions): DrainSettings {
  checkObject('options', options)
  checkSignal(options.signal)
  const timeout = msOption('timeout', options.timeout, DEFAULTS.drainTimeout, 0)
  const window = options.leaveWindow === undefined ? undefined : msOption('leaveWindow', options.leaveWindow, 0, 0)
  return {
    idleGrace: msOption('idleGrace', options.idleGrace, DEFAULTS.idleGrace, 0),
    timeout,
    handOff: booleanOption('handOff', options.handOff, true),
    signal: options.signal,
    leaveWindow: window === undefined ? undefined : Math.min(window, maxLeaveWindow(timeout)),
  }
}

// --- handover/register ---

/** handover/register takes its few settings from the environment, since the app's code does not change. */
export interface PreloadSettings {
  /** HANDOVER_PID_FILE: written on ready(), as the pidFile option does. */
  pidFile?: string
  /** HANDOVER_READY_TIMEOUT (or HANDOVER_UPGRADE_TIMEOUT), ms: how long a new generation has to become ready. */
  readyTimeout: number
  /** HANDOVER_DRAIN_TIMEOUT, ms: after this, connections still open are destroyed. */
  drainTimeout: number
  /** HANDOVER_EXIT_GRACE, ms: how long after the drain a process that is still alive is made to exit. */
  exitGrace: number
  /** HANDOVER_UPGRADE_SIGNAL: the signal that upgrades; any other (SIGHUP included) stays the app's. */
  upgradeSignal: UpgradeSignal
  /**
   * HANDOVER_LEAVE_WINDOW, ms, or `off` (undefined here): long-lived
   * connections are asked to leave within it, each at its own moment.
   * drain() clamps it to 3/4 of the drain timeout.
   */
  leaveWindow?: number
  /** True if HANDOVER_LEAVE_WINDOW was set (a clamp is then worth a word on stderr). */
  leaveWindowSet: boolean
  /** HANDOVER_HAND_OFF (`0` or `1`): drain()'s handOff. Default on. */
  handOff: boolean
  /** HANDOVER_READY_PROBE: the Upgrader's readyProbe. */
  readyProbe?: string
  /** HANDOVER_PROBATION, ms: the Upgrader's probation. Default 0. */
  probation: number
  /**
   * HANDOVER_CONTROL_SOCKET: the control socket's path (resolved), or
   * false (`0`, `off`, `false`) for none. Undefined: <runtime dir>/<name>.sock.
   */
  controlSocket?: string | false
  /** HANDOVER_NAME: the name of the default control socket. Undefined: the script's base name. */
  name?: string
}

export function readPreloadSettings(env: NodeJS.ProcessEnv = process.env): PreloadSettings {
  const ms = (name: string, fallback: number, min: 0 | 1): number => {
    const text = env[name]
    return text === undefined || text === '' ? fallback : msText(name, text, min)
  }
  const pidFile = env[ENV.pidFile]
  return {
    pidFile: pidFile ? resolve(pidFile) : undefined,
    readyTimeout: ms(ENV.readyTimeout, ms(ENV.upgradeTimeout, DEFAULTS.readyTimeout, 1), 1),
    drainTimeout: ms(ENV.drainTimeout, DEFAULTS.drainTimeout, 0),
    exitGrace: ms(ENV.exitGrace, DEFAULTS.exitGrace, 0),
    upgradeSignal: upgradeSignalOption(ENV.upgradeSignal, env[ENV.upgradeSignal] || undefined),
    // 'off' keeps every long-lived connection until the drain timeout, as before the window existed.
    leaveWindow: env[ENV.leaveWindow] === 'off' ? undefined : ms(ENV.leaveWindow, DEFAULTS.leaveWindow, 0),
    leaveWindowSet: env[ENV.leaveWindow] !== undefined && env[ENV.leaveWindow] !== '',
    handOff: switchText(ENV.handOff, env[ENV.handOff], true),
    readyProbe: readyProbePath(ENV.readyProbe, env[ENV.readyProbe] || undefined),
    probation: ms(ENV.probation, DEFAULTS.probation, 0),
    controlSocket: preloadControlSocket(env[ENV.controlSocket] || undefined),
    name: env[ENV.name] ? checkName(env[ENV.name] as string, ENV.name) : undefined,
  }
}

/** HANDOVER_CONTROL_SOCKET: `0`/`off`/`false` for none, else a path (relative to the working directory). */
function preloadControlSocket(text: string | undefined): string | false | undefined {
  if (text === undefined) return undefined
  if (['0', 'off', 'false'].includes(text)) return false
  try {
    return resolve(controlSocketPath(text) as string)
  } catch {
    throw invalidOption(ENV.controlSocket, text, 'a unix socket path, or 0 for none')
  }
}

/** `1`/`0` (also `on`/`off`, `true`/`false`) as a switch; the default if unset. */
function switchText(name: string, text: string | undefined, dflt: boolean): boolean {
  if (text === undefined || text === '') return dflt
  if (['1', 'on', 'true'].includes(text)) return true
  if (['0', 'off', 'false'].includes(text)) return false
  throw invalidOption(name, text, '1 or 0')
}

/** One of UPGRADE_SIGNALS; the default if undefined. */
export function upgradeSignalOption(name: string, v: unknown): UpgradeSignal {
  if (v === undefined) return DEFAULTS.upgradeSignal
  if (!(UPGRADE_SIGNALS as readonly unknown[]).includes(v)) throw invalidOption(name, v, `one of ${UPGRADE_SIGNALS.join(', ')}`)
  return v as UpgradeSignal
}

// --- handover run ---

export type LogFormat = 'text' | 'json'
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
/** Why a worker was replaced outside an upgrade. */
export type ReplaceReason = 'crash' | 'max-rss' | 'watchdog'

/** One event of the supervisor's own: an upgrade, a restart, a drain, a failure. */
export interface SupervisorEvent {
  level: LogLevel
  /** Stable and machine-readable: `generation-ready`, `worker-exited`... */
  event: string
  /** For people; the text format prints only this. */
  message: string
  fields?: Record<string, unknown>
}

export interface SupervisorOptions {
  /** The app's entry point, run in every worker with handover/register preloaded. */
  script: string
  args?: string[]
  /** Workers per generation: a number, or 'max' for the CPUs this process may use (affinity and cgroup quota). Default 1. */
  workers?: number | 'max'
  /** The supervisor's pid, written atomically once and removed at exit. */
  pidFile?: string
  /** A unix socket that answers `upgrade` and `status` (the `handover` command). Default: <runtime dir>/<name>.sock. */
  controlSocket?: string
  controlSocketMode?: number
  /** The service's name: its control socket is <runtime dir>/<name>.sock. Default: the script's base name. */
  name?: string
  /** Milliseconds each new worker has to become ready. Default 60 000. */
  readyTimeout?: number
  /** Milliseconds an old worker may drain before it is killed. Default 30 000. */
  drainTimeout?: number
  /** Replace workers one at a time, each new one ready before its old one drains. */
  rolling?: boolean
  /** The signal that upgrades (SIGHUP or SIGUSR2); the workers use it too. Default SIGHUP. */
  upgradeSignal?: UpgradeSignal
  /** Hand a draining worker's idle keep-alive connections to the serving workers (drain()'s handOff). Default true. */
  handOff?: boolean
  /** Move idle keep-alive connections from a worker over its fair share to the least-loaded ones (balancer.ts). Default true; always off with handOff: false. */
  balance?: boolean
  /** A path every new worker's HTTP servers must answer with a 2xx before it counts as ready (HANDOVER_READY_PROBE in the workers). */
  readyProbe?: string
  /**
   * Milliseconds the new workers serve beside the old generation after they
   * are ready, before the cut-over. One that dies in it, or (with
   * maxErrorRate) a generation whose 5xx rate is too high, fails the
   * upgrade; the old generation never stopped. Default 0.
   */
  probation?: number
  /** Start this many new workers first, serve them through the probation, then start the rest. Default: all at once. */
  canary?: number
  /**
   * A fraction (0.05: 5%): in the probation, the new workers' share of 5xx
   * answers must not exceed both this and the old generation's own share
   * over the same time, or the upgrade fails (ERR_NOT_HEALTHY).
   */
  maxErrorRate?: number
  /**
   * Milliseconds a replaced generation is kept after a cut-over, paused
   * (neither accepting nor exiting), so that rollback() can make it serve
   * again at once. Default 0: it drains at once.
   */
  keepOld?: number
  /** Node flags for the workers, before the preload. Default: this process's execArgv. */
  execArgv?: string[]
  /** More Node flags for every worker, after execArgv (`--node-args "--import tsx"`). */
  nodeArgs?: string[]
  /** A worker whose RSS is over this many bytes is replaced (its replacement ready first). */
  maxRss?: number
  /** Milliseconds a worker's event loop may go without answering the supervisor before it is killed and replaced. */
  watchdog?: number
  /** Serve Prometheus text at /metrics here. */
  metrics?: HostPort
  /** Serve /livez and /readyz here. */
  probes?: HostPort
  /** Milliseconds between SIGTERM (/readyz failing) and the drain. Default 0. */
  shutdownDelay?: number
  /** Prefix worker output with generation, slot and pid. Default: on when stdout is a TTY. */
  logPrefix?: boolean
  /** The supervisor's own events as text or JSON lines on stderr. Default text. */
  logFormat?: LogFormat
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Told each of the supervisor's own events, instead of stderr. */
  onEvent?: (event: SupervisorEvent) => void
  /** The older hook: each event's message as one line, instead of stderr. */
  log?: (line: string) => void
}

export interface SupervisorSettings {
  script: string
  args: string[]
  workers: number
  pidFile?: string
  controlSocket?: string
  controlSocketMode: number
  name?: string
  readyTimeout: number
  drainTimeout: number
  rolling: boolean
  upgradeSignal: UpgradeSignal
  handOff: boolean
  balance: boolean
  readyProbe?: string
  probation: number
  canary?: number
  maxErrorRate?: number
  keepOld: number
  execArgv: string[]
  nodeArgs: string[]
  maxRss?: number
  watchdog?: number
  metrics?: HostPort
  probes?: HostPort
  shutdownDelay: number
  logPrefix: boolean
  logFormat: LogFormat
  cwd: string
  env?: NodeJS.ProcessEnv
  onEvent?: (event: SupervisorEvent) => void
  log?: (line: string) => void
}

/** Checks every option (ERR_INVALID_OPTION) and fills in the defaults; `cpus` counts the workers of 'max'. */
export function resolveSupervisorOptions(o: SupervisorOptions, cpus: () => number): SupervisorSettings {
  checkObject('options', o)
  if (typeof o.script !== 'string' || o.script === '') throw invalidOption('script', o.script, 'the path of the app to run')
  const workers = o.workers === 'max' ? Math.min(MAX_WORKERS, Math.max(1, cpus())) : integerOption('workers', o.workers, DEFAULTS.workers, 1, MAX_WORKERS)
  if (o.env !== undefined) checkObject('env', o.env)
  const cwd = nonEmptyString('cwd', o.cwd) ?? process.cwd()
  const pidFile = nonEmptyString('pidFile', o.pidFile)
  if (o.name !== undefined) checkName(String(o.name), 'name')
  if (o.logFormat !== undefined && o.logFormat !== 'text' && o.logFormat !== 'json') throw invalidOption('logFormat', o.logFormat, "'text' or 'json'")
  checkSafeDeployOptions(o)
  return {
    script: resolve(cwd, o.script),
    args: checkStrings('args', o.args) ?? [],
    workers,
    pidFile: pidFile === undefined ? undefined : resolve(cwd, pidFile),
    controlSocket: controlSocketPath(o.controlSocket),
    controlSocketMode: fileMode('controlSocketMode', o.controlSocketMode, DEFAULTS.controlSocketMode),
    name: o.name,
    readyTimeout: msOption('readyTimeout', o.readyTimeout, DEFAULTS.readyTimeout, 1),
    drainTimeout: msOption('drainTimeout', o.drainTimeout, DEFAULTS.drainTimeout, 1),
    rolling: booleanOption('rolling', o.rolling, false),
    upgradeSignal: upgradeSignalOption('upgradeSignal', o.upgradeSignal),
    handOff: booleanOption('handOff', o.handOff, true),
    // Balancing moves connections through the hand-off: off with it.
    balance: booleanOption('balance', o.balance, true) && booleanOption('handOff', o.handOff, true),
    readyProbe: readyProbePath('readyProbe', o.readyProbe),
    probation: msOption('probation', o.probation, DEFAULTS.probation, 0),
    canary: o.canary === undefined ? undefined : integerOption('canary', o.canary, 0, 1, workers),
    maxErrorRate: fractionOption('maxErrorRate', o.maxErrorRate),
    keepOld: msOption('keepOld', o.keepOld, 0, 0),
    execArgv: checkStrings('execArgv', o.execArgv) ?? process.execArgv,
    nodeArgs: checkStrings('nodeArgs', o.nodeArgs) ?? [],
    maxRss: sizeOption('maxRss', o.maxRss),
    watchdog: o.watchdog === undefined ? undefined : integerOption('watchdog', o.watchdog, 0, DEFAULTS.minWatchdog, MAX_TIMEOUT),
    metrics: hostPortOption('metrics', o.metrics),
    probes: hostPortOption('probes', o.probes),
    shutdownDelay: msOption('shutdownDelay', o.shutdownDelay, DEFAULTS.shutdownDelay, 0),
    logPrefix: booleanOption('logPrefix', o.logPrefix, process.stdout.isTTY === true),
    logFormat: o.logFormat ?? DEFAULTS.logFormat,
    cwd,
    env: o.env,
    onEvent: functionOption('onEvent', o.onEvent),
    log: functionOption('log', o.log),
  }
}

/**
 * The combinations that cannot mean anything: a canary or an error-rate
 * guard is judged during a probation, and --rolling never has a whole new
 * generation beside the old one to judge, keep or roll back to.
 */
function checkSafeDeployOptions(o: SupervisorOptions): void {
  const probation = typeof o.probation === 'number' && o.probation > 0
  for (const name of ['canary', 'maxErrorRate'] as const) {
    if (o[name] !== undefined && !probation) throw new HandoverError('ERR_INVALID_OPTION', `option ${name} needs a probation (probation > 0): it is judged during one`)
  }
  if (o.rolling === true) {
    for (const name of ['probation', 'canary', 'maxErrorRate', 'keepOld'] as const) {
      const value = o[name]
      if (value !== undefined && value !== 0) throw new HandoverError('ERR_INVALID_OPTION', `option ${name} cannot be used with rolling: a rolling upgrade never has a whole new generation beside the old one`)
    }
  }
}

/**
 * A worker's environment: the supervisor's own settings removed, the
 * worker's drain set to give up a little before the supervisor kills it,
 * and the supervisor's upgrade signal (a worker asks the supervisor to
 * upgrade when it gets it).
 */
export function workerEnv(env: NodeJS.ProcessEnv, settings: { drainTimeout: number; upgradeSignal: UpgradeSignal; handOff?: boolean; readyProbe?: string }): NodeJS.ProcessEnv {
  const out = { ...env }
  if (settings.readyProbe !== undefined) out[ENV.readyProbe] = settings.readyProbe
  delete out[ENV.pidFile]
  out[ENV.drainTimeout] ??= String(Math.max(0, settings.drainTimeout - DEFAULTS.workerDrainMargin))
  out[ENV.upgradeSignal] = settings.upgradeSignal
  if (settings.handOff === false) out[ENV.handOff] = '0'
  return out
}
