import { readFileSync } from 'node:fs'
import type { HandoverError } from '../core/errors.js'
import { DEFAULTS, MAX_WORKERS, msText, UPGRADE_SIGNALS, type SupervisorOptions, type UpgradeSignal } from '../core/options.js'
import { parseCommandLine, UsageError, type FlagSpec } from '../service/args.js'
import { startReaper } from './reaper.js'
import { Supervisor } from './supervisor.js'

export const RUN_USAGE = `usage: handover run [options] <script> [script args...]

  -w, --workers <n|max>    workers per generation (default 1; max = os.availableParallelism())
  --pid-file <path>        the supervisor's pid, written atomically once, removed at exit
  --control-socket <path>  answers upgrade and status (handover upgrade/status --socket)
  --ready-timeout <ms>     per new worker (default 60000)
  --drain-timeout <ms>     an old worker still alive after this is killed (default 30000)
  --rolling                replace workers one at a time instead of all at once
  --upgrade-signal <sig>   SIGHUP (default) or SIGUSR2: the signal that upgrades
  --no-hand-off            close a draining worker's idle keep-alive connections
                           instead of handing them to the serving workers

Signals: SIGHUP (or --upgrade-signal) upgrades, and a request during an upgrade
is queued; SIGTERM and SIGINT stop gracefully (a second one forces).`

const RUN_FLAGS: FlagSpec = {
  workers: { type: 'string', short: 'w' },
  'pid-file': { type: 'string' },
  'control-socket': { type: 'string' },
  'ready-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  rolling: { type: 'boolean' },
  'upgrade-signal': { type: 'string' },
  'no-hand-off': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
}

/** Flags come first; the first other word is the script, and everything after it is the script's. */
export function parseRunArgs(argv: string[]): SupervisorOptions & { help?: boolean } {
  const { values, rest } = parseCommandLine(argv, RUN_FLAGS, true)
  if (values.help) return { script: '', help: true }
  if (rest.length === 0) throw new UsageError('no script to run')
  const text = (name: string): string | undefined => values[name] as string | undefined
  const ms = (name: string): number | undefined => {
    const v = text(name)
    if (v === undefined) return undefined
    try {
      return msText(`--${name}`, v, 1)
    } catch {
      throw new UsageError(`--${name} takes milliseconds, not ${JSON.stringify(v)}`)
    }
  }
  const options: SupervisorOptions = { script: rest[0], args: rest.slice(1) }
  const workers = text('workers')
  if (workers !== undefined) {
    if (workers !== 'max' && !(/^\d+$/.test(workers) && Number(workers) >= 1 && Number(workers) <= MAX_WORKERS)) {
      throw new UsageError(`--workers takes a number from 1 to ${MAX_WORKERS} or max, not ${JSON.stringify(workers)}`)
    }
    options.workers = workers === 'max' ? 'max' : Number(workers)
  }
  if (text('pid-file') !== undefined) options.pidFile = text('pid-file')
  if (text('control-socket') !== undefined) options.controlSocket = text('control-socket')
  if (text('ready-timeout') !== undefined) options.readyTimeout = ms('ready-timeout')
  if (text('drain-timeout') !== undefined) options.drainTimeout = ms('drain-timeout')
  if (values.rolling) options.rolling = true
  if (values['no-hand-off']) options.handOff = false
  const signal = text('upgrade-signal')
  if (signal !== undefined) {
    if (!(UPGRADE_SIGNALS as readonly string[]).includes(signal)) throw new UsageError(`--upgrade-signal takes ${UPGRADE_SIGNALS.join(' or ')}, not ${JSON.stringify(signal)}`)
    options.upgradeSignal = signal as UpgradeSignal
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
  const onStop = (signal: NodeJS.Signals): void => {
    stops++
    if (!supervisor) {
      // Still starting: the start fails, and start() kills what it began.
      if (starting && stops > 1) process.exit(130)
      return
    }
    if (stops === 1) {
      process.stderr.write(`handover: ${signal}: stopping (workers drain; ${signal === 'SIGINT' ? 'Ctrl-C' : 'send it'} again to force)\n`)
      void supervisor.stop()
    } else {
      process.stderr.write(`handover: ${signal} again: killing the workers\n`)
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
    reaper?.stop()
    return 1
  } finally {
    starting = false
  }
  if (stops > 0) void supervisor.stop()
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
