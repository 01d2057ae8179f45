import type { HandoverError } from '../core/errors.js'
import { startReaper } from './reaper.js'
import { Supervisor, type SupervisorOptions } from './supervisor.js'

export const RUN_USAGE = `usage: handover run [options] <script> [script args...]

  -w, --workers <n|max>    workers per generation (default 1; max = os.availableParallelism())
  --pid-file <path>        the supervisor's pid, written atomically once, removed at exit
  --control-socket <path>  answers upgrade and status (handover upgrade/status --socket)
  --ready-timeout <ms>     per new worker (default 60000)
  --drain-timeout <ms>     an old worker still alive after this is killed (default 30000)
  --rolling                replace workers one at a time instead of all at once

Signals: SIGHUP upgrades; SIGTERM and SIGINT stop gracefully (a second one forces).`

class UsageError extends Error {}

/** Options come first; the first other word is the script, and everything after it is the script's. */
export function parseRunArgs(argv: string[]): SupervisorOptions {
  const options: SupervisorOptions = { script: '' }
  const value = (i: number, name: string): string => {
    const v = argv[i + 1]
    if (v === undefined) throw new UsageError(`${name} needs a value`)
    return v
  }
  const ms = (text: string, name: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`${name} takes milliseconds, not ${JSON.stringify(text)}`)
    return Number(text)
  }
  let i = 0
  for (; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('-')) break
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const take = (): string => (inline !== undefined ? inline : value(i++, name))
    switch (name) {
      case '-w':
      case '--workers': {
        const v = take()
        if (v !== 'max' && !/^\d+$/.test(v)) throw new UsageError(`--workers takes a number or max, not ${JSON.stringify(v)}`)
        options.workers = v === 'max' ? 'max' : Number(v)
        break
      }
      case '--pid-file': options.pidFile = take(); break
      case '--control-socket': options.controlSocket = take(); break
      case '--ready-timeout': options.readyTimeout = ms(take(), name); break
      case '--drain-timeout': options.drainTimeout = ms(take(), name); break
      case '--rolling': options.rolling = true; break
      case '--': i++; break
      default: throw new UsageError(`unknown option ${JSON.stringify(arg)}`)
    }
    if (name === '--') break
  }
  if (i >= argv.length) throw new UsageError('no script to run')
  options.script = argv[i]
  options.args = argv.slice(i + 1)
  return options
}

/** `handover run`: starts the supervisor and maps signals onto it. Resolves with the exit status. */
export async function runCommand(argv: string[]): Promise<number> {
  if (argv[0] === '-h' || argv[0] === '--help') {
    process.stdout.write(`${RUN_USAGE}\n`)
    return 0
  }
  let options: SupervisorOptions
  try {
    options = parseRunArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`handover: ${err.message}\n${RUN_USAGE}\n`)
    return 2
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
  process.on('SIGHUP', () => void supervisor?.upgrade().catch(() => {}))
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
