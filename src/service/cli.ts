// The `handover` command's client side (bin.ts sends `handover run` to
// the supervisor): asks a running server, through its control socket (the
// controlSocket option), to upgrade, and exits non-zero if the upgrade
// failed. That makes it a reload command that reports its result, e.g.
// systemd's ExecReload=.
import { readFileSync } from 'node:fs'
import { DEFAULTS, MAX_TIMEOUT, parseMs } from '../core/options.js'
import { parseCommandLine, UsageError } from './args.js'
import { request } from './control-client.js'
import { findLiveSocket, nameProblem } from './runtime-dir.js'
import { formatStatusTable } from './status-table.js'
import type { HandoverError } from '../core/errors.js'

const USAGE = `usage: handover run [options] <script> [script args...]   (handover run --help)
       handover upgrade [NAME | --socket PATH] [--timeout MS]
       handover status [NAME | --socket PATH] [--timeout MS] [--json]
       handover rollback [NAME | --socket PATH]
       handover stop --pid PID [--timeout MS]

  upgrade    start the next generation; succeed once it serves
  rollback   handover run --keep-old: the previous generation, kept paused,
             serves again at once, and the current one drains
  status     what serves on the socket: a table of its workers (pid,
             generation, state, uptime, restarts, RSS, CPU%, requests where
             known); --json prints the server's whole JSON answer instead
  stop       send SIGTERM to PID and wait until it has exited: systemd's
             ExecStop=, since systemd does not wait for a main process that
             a hand-off made (an empty PID, from an unset $MAINPID, is ok;
             a PID that names no process fails with ESRCH)

  NAME                a handover run --name: its control socket in
                      $XDG_RUNTIME_DIR/handover, /run/handover (root) or
                      $TMPDIR/handover-UID; without NAME or --socket, the one
                      socket there (several: name one)
  -s, --socket PATH   the server's controlSocket (not its pid file)
  -v, --version       print handover's version
  -t, --timeout MS    upgrade: kill the new process if it is not ready in time
                      (the server's upgradeTimeout applies as well); the
                      command waits MS + 5000 for the answer (default 65000,
                      for the default upgradeTimeout of 60000)
                      status: how long to wait for the answer (default 5000)
                      stop: give up waiting after MS (default 80000), exit 1
  -p, --pid PID       stop: the process to stop, e.g. --pid=\${MAINPID}

upgrade and rollback print the server's JSON answer, as status --json does. Exit status:
0 ok, 1 failed (the error code is on stderr, and in the answer with --json),
2 usage error, 3 no answer in time.`

/** What the server may need after the deadline to kill and reap the new process, in ms. */
const ANSWER_GRACE = DEFAULTS.answerGrace
/**
 * Without --timeout: an upgrade is bounded by the server's ready timeout
 * (60 s unless configured), a status answer is immediate. A server that
 * accepts and never answers (stopped, wedged) must not hang a reload.
 */
const DEFAULT_UPGRADE_WAIT = DEFAULTS.readyTimeout + ANSWER_GRACE
const DEFAULT_STATUS_WAIT = DEFAULTS.statusWait
/** The exit status for "no answer in time", apart from a failure the server reported. */
const EXIT_NO_ANSWER = 3

function usage(problem: string): never {
  throw new UsageError(problem)
}

/** The package's own version: dist/service/cli.js sits two levels below package.json. */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
}

/**
 * --pid-file is refused with a pointer to --socket rather than supported:
 * a pid only says that some process has that number (pids are reused), not
 * that it is the generation serving, and it can carry no upgrade result.
 * The control socket answers from the generation that serves, and passes
 * with the listeners, so it is the one target that is always right.
 */
function refusePidFile(path: string): never {
  usage(`--pid-file is not supported: a pid file names a pid, not the server; start the server with the controlSocket option and pass that path as --socket (here you gave --pid-file ${path})`)
}

/** stop's default wait, under systemd's default TimeoutStopSec= of 90 s. */
const STOP_TIMEOUT = DEFAULTS.stopWait
const STOP_POLL = 50

/** True while `pid` exists and is not a zombie (a zombie has exited; only its parent's wait is missing). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
  try {
    // /proc/PID/stat: "pid (comm) S ..."; comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true // No procfs: kill(pid, 0) is all there is.
  }
}

/**
 * `handover stop --pid PID`: SIGTERM, then wait until PID has gone. systemd
 * waits for a main process only if it is its own child, and after a hand-off
 * the main process is the old generation's child: without a stop command
 * that waits, SIGKILL follows SIGTERM at once.
 */
async function stop(pidText: string | undefined, timeoutText: string | undefined, extra: string[]): Promise<number> {
  if (extra.length > 0) usage(`unexpected argument ${JSON.stringify(extra[0])}`)
  if (pidText === undefined) usage('--pid PID is required')
  const timeout = timeoutText === undefined ? STOP_TIMEOUT : parseMs(timeoutText, 1)
  if (timeout === undefined) usage(`--timeout takes milliseconds, not ${JSON.stringify(timeoutText)}`)
  const answer = (fields: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(fields)}\n`)
  if (pidText === '') {
    // systemd leaves $MAINPID empty once it knows the main process has exited.
    answer({ ok: true, pid: null, message: 'no pid: nothing to stop' })
    return 0
  }
  const pid = Number(pidText)
  if (!/^\d+$/.test(pidText) || pid < 2 || pid > 4_194_304 || pid === process.pid) usage(`--pid takes a process id, not ${JSON.stringify(pidText)}`)
  const started = Date.now()
  try {
    process.kill(pid, 'SIGTERM')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERR_UNKNOWN'
    // ESRCH: a pid that names no process is a wrong pid (a stale pid file, a
    // typo), not a stopped service: saying ok would hide it. An empty --pid=
    // (above) is how systemd says the main process has already gone.
    const message = code === 'ESRCH' ? `no process has pid ${pid}: nothing was stopped`
      : code === 'EPERM' ? `not allowed to signal pid ${pid}: run as its user`
      : (err as Error).message
    answer({ ok: false, pid, code, message })
    process.stderr.write(`handover: stop failed: ${code}: ${message}\n`)
    return 1
  }
  try {
    while (running(pid)) {
      if (Date.now() - started >= timeout) {
        answer({ ok: false, pid, code: 'ERR_TIMEOUT', message: `pid ${pid} still running ${timeout} ms after SIGTERM` })
        process.stderr.write(`handover: stop failed: ERR_TIMEOUT: pid ${pid} still running ${timeout} ms after SIGTERM\n`)
        return 1
      }
      await new Promise((resolve) => setTimeout(resolve, STOP_POLL))
    }
  } catch (err) {
    // running() rethrows what kill(pid, 0) says apart from ESRCH (which means it has gone).
    const code = (err as NodeJS.ErrnoException).code ?? 'ERR_UNKNOWN'
    answer({ ok: false, pid, code, message: (err as Error).message })
    process.stderr.write(`handover: stop failed: ${code}: ${(err as Error).message}\n`)
    return 1
  }
  answer({ ok: true, pid, waitedMs: Date.now() - started })
  return 0
}

const FLAGS = {
  socket: { type: 'string', short: 's' },
  timeout: { type: 'string', short: 't' },
  pid: { type: 'string', short: 'p' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  'pid-file': { type: 'string' },
  json: { type: 'boolean' },
} as const

/** `handover upgrade|status|stop ...`: resolves with the exit status; a usage error prints the usage and gives 2. */
export async function clientCommand(argv: string[]): Promise<number> {
  try {
    return await client(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`handover: ${err.message}\n${USAGE}\n`)
    return 2
  }
}

async function client(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseCommandLine(argv, FLAGS)
  const values = v as { socket?: string; timeout?: string; pid?: string; help?: boolean; version?: boolean; 'pid-file'?: string; json?: boolean }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`)
    return 0
  }
  if (values['pid-file'] !== undefined) refusePidFile(values['pid-file'])
  const [command, ...extra] = positionals
  if (command === 'stop') return stop(values.pid, values.timeout, extra)
  if (command !== 'upgrade' && command !== 'status' && command !== 'rollback') usage(command === undefined ? 'no command' : `unknown command ${JSON.stringify(command)}`)
  if (command === 'rollback' && values.timeout !== undefined) usage('rollback takes no --timeout: it answers at once')
  if (extra.length > 1) usage(`unexpected argument ${JSON.stringify(extra[1])}`)
  if (values.socket === '') usage('--socket takes a path')
  if (values.socket !== undefined && extra.length > 0) usage(`give a NAME or --socket PATH, not both (${JSON.stringify(extra[0])} and --socket ${values.socket})`)
  const name = extra[0]
  if (name !== undefined && nameProblem(name) !== undefined) usage(`invalid name ${JSON.stringify(name.slice(0, 100))}: ${nameProblem(name)}`)
  let socket = values.socket
  if (socket === undefined) {
    try {
      socket = await findLiveSocket(name)
    } catch (err) {
      const e = err as HandoverError
      if (values.json === true || command !== 'status') process.stdout.write(`${JSON.stringify({ ok: false, code: e.code, message: e.message })}\n`)
      process.stderr.write(`handover: ${command} failed: ${e.code}: ${e.message}\n`)
      return 1
    }
  }
  let line: string = command
  let waitMs = command === 'upgrade' ? DEFAULT_UPGRADE_WAIT : DEFAULT_STATUS_WAIT
  if (values.timeout !== undefined) {
    // The wait for the answer is a timer too: MS + ANSWER_GRACE must fit one.
    const ms = parseMs(values.timeout, 1, MAX_TIMEOUT - ANSWER_GRACE)
    if (ms === undefined) usage(`--timeout takes milliseconds, not ${JSON.stringify(values.timeout)}`)
    if (command === 'upgrade') {
      line = `upgrade ${ms}`
      waitMs = ms + ANSWER_GRACE
    } else {
      waitMs = ms
    }
  }
  const answer = await request(socket, line, waitMs, { idempotent: command === 'status' })
  // A table for people; the JSON for scripts (and upgrade's answer, which is short).
  if (command === 'status' && values.json !== true) {
    if (answer.ok) process.stdout.write(formatStatusTable(answer, Date.now()))
  } else {
    process.stdout.write(`${JSON.stringify(answer)}\n`)
  }
  if (answer.ok) return 0
  process.stderr.write(`handover: ${command} failed: ${answer.code}: ${answer.message}\n`)
  // ERR_TIMEOUT is only ever this command's own deadline: the server says ERR_UPGRADE_TIMEOUT.
  return answer.code === 'ERR_TIMEOUT' ? EXIT_NO_ANSWER : 1
}

