import { readFileSync } from 'node:fs'
import type { HandoverError } from '../core/errors.js'
import {
  checkName, choiceText, DEFAULTS, hostPortText, MAX_WORKERS, msText, readyProbePath, sizeText, UPGRADE_SIGNALS, wordsText, type SupervisorOptions,
} from '../core/options.js'
import { parseCommandLine, UsageError, type FlagSpec } from '../service/args.js'
import { typeScriptHint } from './node-args.js'
import { startReaper } from './reaper.js'
import { Supervisor } from './supervisor.js'

interface Flag {
  short?: string
  /** What the value looks like in the usage; undefined: a switch. */
  value?: string
  help: string
  /** Text to the option's value; throws ERR_INVALID_OPTION naming the flag. */
  parse?: (text: string, flag: string) => unknown
  key?: keyof SupervisorOptions
  /** The value may start with a dash (Node flags). */
  dashValue?: boolean
}

/** Milliseconds from `min`; the message the command has always given. */
const ms = (min: number) => (text: string, flag: string): number => {
  try {
    return msText(flag, text, min)
  } catch {
    throw new UsageError(`${flag} takes milliseconds${min > 1 ? ` from ${min}` : ''}, not ${JSON.stringify(text)}`)
  }
}

/** A whole number from 1. */
function countText(flag: string, text: string): number {
  if (!/^[1-9]\d{0,3}$/.test(text)) throw new UsageError(`${flag} takes a number of workers, not ${JSON.stringify(text)}`)
  return Number(text)
}

/** A fraction from 0 to 1, written 0.05 (or 5%). */
function fractionText(flag: string, text: string): number {
  const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(text)
  const value = percent ? Number(percent[1]) / 100 : /^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(text) ? Number(text) : NaN
  if (!(value >= 0 && value <= 1)) throw new UsageError(`${flag} takes a fraction from 0 to 1 (0.05, or 5%), not ${JSON.stringify(text)}`)
  return value
}

/** Every flag of `handover run`, in the order the usage lists them. */
const FLAGS: Record<string, Flag> = {
  workers: { short: 'w', value: '<n|max>', help: 'workers per generation (default 1; max = the CPUs this process may use: its affinity mask, capped by its cgroup CPU quota rounded up)' },
  name: { key: 'name', value: '<name>', help: "the service's name: its control socket is <runtime dir>/<name>.sock (default: the script's name)", parse: (t, f) => checkName(t, f) },
  'control-socket': { key: 'controlSocket', value: '<path>', help: 'the control socket at this path instead (handover upgrade/status --socket)' },
  'pid-file': { key: 'pidFile', value: '<path>', help: "the supervisor's pid, written atomically once, removed at exit" },
  'ready-timeout': { key: 'readyTimeout', value: '<ms>', help: `per new worker (default ${DEFAULTS.readyTimeout})`, parse: ms(1) },
  'drain-timeout': { key: 'drainTimeout', value: '<ms>', help: `an old worker still alive after this is killed (default ${DEFAULTS.drainTimeout})`, parse: ms(1) },
  rolling: { key: 'rolling', help: 'replace workers one at a time instead of all at once' },
  'upgrade-signal': {
    key: 'upgradeSignal', value: '<sig>', help: 'SIGHUP (default) or SIGUSR2: the signal that upgrades',
    parse: (t, f) => {
      if (!(UPGRADE_SIGNALS as readonly string[]).includes(t)) throw new UsageError(`${f} takes ${UPGRADE_SIGNALS.join(' or ')}, not ${JSON.stringify(t)}`)
      return t
    },
  },
  'ready-probe': { key: 'readyProbe', value: '<path>', help: "each new worker must answer GET <path> with a 2xx (over a private connection to its own server) before it counts as ready", parse: (t, f) => readyProbePath(f, t) },
  probation: { key: 'probation', value: '<ms>', help: 'the new workers serve beside the old ones this long before the cut-over; one that dies in it fails the upgrade (default 0)', parse: ms(0) },
  canary: { key: 'canary', value: '<n>', help: 'start n new workers first, through the probation, then the rest', parse: (t, f) => countText(f, t) },
  'max-error-rate': { key: 'maxErrorRate', value: '<fraction>', help: "in the probation, fail the upgrade if the new workers' share of 5xx exceeds this and the old ones' (e.g. 0.05)", parse: (t, f) => fractionText(f, t) },
  'keep-old': { key: 'keepOld', value: '<ms>', help: 'keep a replaced generation this long, paused, for handover rollback (default 0: it drains at once)', parse: ms(0) },
  'no-hand-off': { help: "close a draining worker's idle keep-alive connections instead of handing them to the serving workers" },
  'no-balance': { help: "leave each worker the keep-alive connections it accepted, however uneven (default: move idle ones from a worker over 1.1x its fair share to the least-loaded)" },
  'node-args': { key: 'nodeArgs', value: '"<flags>"', help: 'Node flags for every worker, split as a shell would (nothing is run), e.g. "--import tsx"', parse: (t, f) => wordsText(f, t), dashValue: true },
  'max-rss': { key: 'maxRss', value: '<size>', help: 'replace a worker whose memory (RSS) is over this, e.g. 200M; its replacement is ready before it drains', parse: (t, f) => sizeText(f, t) },
  watchdog: { key: 'watchdog', value: '<ms>', help: `kill and replace a worker whose event loop has not answered for this long (at least ${DEFAULTS.minWatchdog})`, parse: ms(DEFAULTS.minWatchdog) },
  metrics: { key: 'metrics', value: '<host:port>', help: 'serve Prometheus metrics at http://<host:port>/metrics (:port for every interface)', parse: (t, f) => hostPortText(f, t) },
  probes: { key: 'probes', value: '<host:port>', help: 'serve /livez and /readyz for Kubernetes', parse: (t, f) => hostPortText(f, t) },
  'shutdown-delay': { key: 'shutdownDelay', value: '<ms>', help: 'after SIGTERM, fail /readyz and keep serving this long before draining (default 0)', parse: ms(0) },
  'log-prefix': { key: 'logPrefix', help: 'prefix worker output with [g<generation> w<slot> <pid>] (default: when stdout is a TTY)' },
  'no-log-prefix': { help: 'never prefix worker output' },
  'log-format': { key: 'logFormat', value: 'text|json', help: "the supervisor's own events as text or JSON lines (default text)", parse: (t, f) => choiceText(f, t, ['text', 'json'] as const) },
  help: { short: 'h', help: 'this text' },
}

const RUN_FLAGS: FlagSpec = Object.fromEntries(Object.entries(FLAGS).map(([name, f]) => [name, {
  type: f.value === undefined ? 'boolean' : 'string', ...(f.short && { short: f.short }), ...(f.dashValue && { dashValue: true }),
}]))

function usageLines(): string {
  return Object.entries(FLAGS).map(([name, f]) => {
    const head = `${f.short ? `-${f.short}, ` : ''}--${name}${f.value ? ` ${f.value}` : ''}`
    return `  ${head.padEnd(26)} ${f.help}`
  }).join('\n')
}

export const RUN_USAGE = `usage: handover run [options] <script> [script args...]

${usageLines()}

Signals: SIGHUP (or --upgrade-signal) upgrades, and a request during an upgrade
is queued; SIGTERM and SIGINT stop gracefully (a second one forces).`

/** Flags come first; the first other word is the script, and everything after it is the script's. */
export function parseRunArgs(argv: string[]): SupervisorOptions & { help?: boolean } {
  const { values, rest } = parseCommandLine(argv, RUN_FLAGS, true)
  if (values.help) return { script: '', help: true }
  if (rest.length === 0) throw new UsageError('no script to run')
  const options: SupervisorOptions = { script: rest[0], args: rest.slice(1) }
  const workers = values.workers as string | undefined
  if (workers !== undefined) {
    if (workers !== 'max' && !(/^\d+$/.test(workers) && Number(workers) >= 1 && Number(workers) <= MAX_WORKERS)) {
      throw new UsageError(`--workers takes a number from 1 to ${MAX_WORKERS} or max, not ${JSON.stringify(workers)}`)
    }
    options.workers = workers === 'max' ? 'max' : Number(workers)
  }
  if (values['log-prefix'] === true && values['no-log-prefix'] === true) throw new UsageError('give --log-prefix or --no-log-prefix, not both')
  if (values['no-log-prefix'] === true) options.logPrefix = false
  if (values['no-hand-off'] === true) options.handOff = false
  if (values['no-balance'] === true) options.balance = false
  for (const [name, flag] of Object.entries(FLAGS)) {
    const v = values[name]
    if (flag.key === undefined || v === undefined || v === false) continue
    let value: unknown = v
    if (flag.parse) {
      try {
        value = flag.parse(String(v), `--${name}`)
      } catch (err) {
        // ERR_INVALID_OPTION names the flag and says what it takes; on the command line that is a usage error.
        throw err instanceof UsageError ? err : new UsageError((err as Error).message)
      }
    }
    ;(options as unknown as Record<string, unknown>)[flag.key] = value
  }
  return options
}

/** `handover run`: starts the supervisor and maps signals onto it. Resolves with the exit status. */
export async function runCommand(argv: string[]): Promise<number> {
  let options: SupervisorOptions & { help?: boolean }
  try {
    options = parseRunArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`handover: ${err.message}\n${RUN_USAGE}\n`)
    return 2
  }
  if (options.help) {
    process.stdout.write(`${RUN_USAGE}\n`)
    return 0
  }
  // As PID 1 (a container without --init) the kernel gives no default to
  // SIGTERM/SIGINT, and orphans are ours to reap.
  const reaper = process.pid === 1 ? startReaper() : undefined
  let supervisor: Supervisor | undefined
  let stops = 0
  let starting = true
  // A second signal cuts --shutdown-delay short and kills the workers.
  const force = new AbortController()
  const onStop = (signal: NodeJS.Signals): void => {
    stops++
    if (!supervisor) {
      // Still starting: the start fails, and start() kills what it began.
      if (starting && stops > 1) process.exit(130)
      return
    }
    if (stops === 1) {
      const delay = supervisor.shutdownDelay > 0 ? ` in ${supervisor.shutdownDelay} ms, /readyz failing meanwhile` : ''
      process.stderr.write(`handover: ${signal}: stopping${delay} (workers drain; ${signal === 'SIGINT' ? 'Ctrl-C' : 'send it'} again to force)\n`)
      void supervisor.shutdown(force.signal)
    } else {
      process.stderr.write(`handover: ${signal} again: killing the workers\n`)
      force.abort()
      void supervisor.stop({ force: true })
    }
  }
  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)
  // A deploy during another one is queued, never dropped: the supervisor says so in one line.
  const upgradeSignal = options.upgradeSignal ?? DEFAULTS.upgradeSignal
  process.on(upgradeSignal, () => void supervisor?.upgrade({ queue: true }).catch(() => {}))
  // With another upgrade signal, SIGHUP is the app's: each serving worker gets it.
  if (upgradeSignal !== 'SIGHUP') process.on('SIGHUP', () => supervisor?.signalWorkers('SIGHUP'))
  warnUnderNpm()
  try {
    supervisor = await Supervisor.start(options)
  } catch (err) {
    const e = err as HandoverError
    process.stderr.write(`handover: could not start: ${e.code ?? 'Error'}: ${e.message}\n`)
    const hint = typeScriptHint(e, options.script, [...process.execArgv, ...(options.nodeArgs ?? [])])
    if (hint) process.stderr.write(`handover: ${hint}\n`)
    reaper?.stop()
    return 1
  } finally {
    starting = false
  }
  if (stops > 0) void supervisor.shutdown(force.signal)
  await supervisor.done
  reaper?.stop()
  process.stderr.write('handover: stopped\n')
  return 0
}

/**
 * npm and npx run a command as their child and do not pass on the signals
 * a supervisor needs: under `npx handover run` at PID 1, `docker kill -s
 * HUP` upgrades nothing and `docker stop` kills without a drain. Said once,
 * at start, when the parent is npm or npx, or a shell that npm started.
 * (Not from npm_* variables: a test runner under `npm test` has those.)
 */
function warnUnderNpm(): void {
  let pid = process.ppid
  for (let depth = 0; depth < 2 && pid > 1; depth++) {
    const command = commandLine(pid)
    if (command === undefined) return
    if (/(^|\/)(npm|npx)(\s|$)|npm-cli\.js|npx-cli\.js/.test(command)) {
      process.stderr.write('handover: warning: started by npm or npx, which do not pass SIGHUP or SIGTERM on as handover needs them; ' +
        'run `node_modules/.bin/handover run ...` or `node node_modules/handover/dist/bin.js run ...` directly (docs/deployment.md#docker)\n')
      return
    }
    // `npm run` starts its script through a shell: look one step further up.
    if (!/^(\/\S*\/)?(sh|bash|dash)\s+-c\b/.test(command)) return
    pid = parentOf(pid) ?? 0
  }
}

/** A process's command line, where /proc tells it. */
function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return undefined
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return undefined
  }
}
