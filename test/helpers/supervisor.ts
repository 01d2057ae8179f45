import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { CLI } from './control.js'
import { APPS, ROOT } from './preload-app.js'
import { isAlive, waitUntil } from './processes.mjs'
import { OutputLines } from './output.js'

export { CLI }

const started = new Set<ChildProcess>()
const workerPids = new Set<number>()

export interface Status {
  ok: boolean
  pid: number
  generation: number
  name?: string
  workers: Array<{
    pid: number; generation: number; slot: number; state: string; startedAt: string; restarts: number
    restartReason?: string; rss?: number; cpu?: number; requests?: number
  }>
}

/** `handover` command output, parsed. */
export function cli(args: string[], timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string; answer?: Record<string, unknown> } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs })
  let answer
  try {
    answer = JSON.parse(result.stdout.trim().split('\n').pop() ?? '')
  } catch {
    answer = undefined
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, answer }
}

/**
 * `handover run [options] <app>` as a user starts it: the built CLI, one
 * supervisor process whose pid never changes, and its workers, whose output
 * (and the supervisor's one-line reports) arrive on the same pipes.
 */
export class Supervised {
  readonly process: ChildProcess
  readonly pid: number
  private readonly output: OutputLines

  private constructor(options: string[], app: string, env: NodeJS.ProcessEnv, command: string[]) {
    const run = [CLI, 'run', ...options, join(APPS, app)]
    const [file, ...args] = command.length > 0 ? [...command, process.execPath, ...run] : [process.execPath, ...run]
    this.process = spawn(file, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.pid = this.process.pid as number
    started.add(this.process)
    this.output = new OutputLines(this.process)
  }

  get lines(): string[] {
    return this.output.lines
  }

  /** Starts it and waits for "generation 1 ready". `command` wraps node (e.g. unshare). */
  static async start(options: string[], app: string, env: NodeJS.ProcessEnv = {}, command: string[] = []): Promise<Supervised> {
    const s = Supervised.launch(options, app, env, command)
    await s.waitForLine(/^handover: generation 1 ready/)
    return s
  }

  /** Starts it without waiting (socket activation starts it only on the first connection). */
  static launch(options: string[], app: string, env: NodeJS.ProcessEnv = {}, command: string[] = []): Supervised {
    return new Supervised(options, app, env, command)
  }

  waitForLine(pattern: RegExp, timeoutMs = 20_000, from = 0): Promise<RegExpMatchArray> {
    return this.output.waitFor(pattern, timeoutMs, from, () => (this.output.closed ? `exited ${this.process.exitCode}` : undefined))
  }

  /** The status a control socket answers, or (without one) the workers seen in "listening <pid>" lines. */
  status(socket: string): Status {
    const { answer } = cli(['status', '--json', '--socket', socket])
    const status = answer as unknown as Status
    for (const w of status?.workers ?? []) workerPids.add(w.pid)
    return status
  }

  /** Resolves with the exit code once the supervisor has exited. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) {
      return Promise.resolve({ code: this.process.exitCode, signal: this.process.signalCode })
    }
    return new Promise((resolve) => this.process.once('exit', (code, signal) => resolve({ code, signal })))
  }

  /** Every pid that printed "listening <pid>": the app's workers. */
  workerPids(): number[] {
    // With --log-prefix a worker's lines start with [g<generation> w<slot> <pid>].
    const pids = this.lines.map((l) => /^(?:\[g\d+ w\d+ \d+\] )?listening (\d+)/.exec(l)?.[1]).filter(Boolean).map(Number)
    for (const pid of pids) workerPids.add(pid)
    return pids
  }

  get text(): string {
    return this.lines.join('\n')
  }
}

/** Kills every supervisor and worker the tests started, by pid. */
export async function killSupervised(): Promise<void> {
  for (const child of started) {
    try {
      child.kill('SIGKILL')
    } catch {
      // Gone.
    }
  }
  for (const pid of workerPids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Gone.
    }
  }
  await waitUntil(() => [...workerPids].every((pid) => !isAlive(pid)), 5_000, 'workers to be gone').catch(() => {})
  started.clear()
  workerPids.clear()
}
