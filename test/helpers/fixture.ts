import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { get } from './clients.js'

export const FIXTURE = fileURLToPath(new URL('../fixtures/server.mjs', import.meta.url))

export interface FixtureEvent {
  event: string
  pid: number
  [field: string]: unknown
}

/**
 * Alive while any of its threads is: PID 1 here does not always reap re-parented children, and a
 * killed multi-threaded process shows its leader as a zombie while other threads, which still hold
 * the fd table and so the listening sockets, are exiting.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return readdirSync(`/proc/${pid}/task`).some((tid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
        return !'ZX'.includes(stat.slice(stat.lastIndexOf(')') + 2)[0])
      } catch {
        return false
      }
    })
  } catch {
    return false
  }
}

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** The fd count once it holds still: a hand-off closes a few fds asynchronously. */
export async function settledFdCount(pid: number): Promise<number> {
  let last = -1
  for (let i = 0; i < 50; i++) {
    const now = openFds(pid).length
    if (now === last) return now
    last = now
    await new Promise((r) => setTimeout(r, 50))
  }
  return last
}

/** The targets of a process's open fds, e.g. `socket:[1234]`. */
export function openFds(pid: number): string[] {
  const dir = `/proc/${pid}/fd`
  return readdirSync(dir).map((fd) => {
    try {
      return `${fd} -> ${readlinkSync(`${dir}/${fd}`)}`
    } catch {
      return `${fd} -> ?`
    }
  })
}

/**
 * A fixture server and every generation it upgrades into. All generations
 * share one stdout pipe, so events from each arrive here in order.
 */
export class Fixture {
  readonly events: FixtureEvent[] = []
  readonly pids = new Set<number>()
  readonly stderr: string[] = []
  private waiters: Array<() => void> = []
  readonly process: ChildProcess
  /** The pid of the generation that is serving now. */
  current = 0

  private constructor(env: Record<string, string>, script: string, launcher: string[] = [], detached = false) {
    // A launcher (e.g. systemd-socket-activate) runs `node script` itself.
    const [command, ...args] = [...launcher, process.execPath, script]
    this.process = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own, for tests that signal the whole group.
      detached,
    })
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      let event: FixtureEvent
      try {
        event = JSON.parse(line) as FixtureEvent
      } catch {
        this.stderr.push(`stdout: ${line}`)
        return
      }
      this.events.push(event)
      this.pids.add(event.pid)
      if (event.event === 'ready') this.current = event.pid
      for (const wake of this.waiters.splice(0)) wake()
    })
    createInterface({ input: this.process.stderr! }).on('line', (line) => this.stderr.push(line))
  }

  static async start(
    env: Record<string, string>,
    options: { script?: string; waitFor?: string; launcher?: string[]; detached?: boolean } = {},
  ): Promise<Fixture> {
    const fixture = new Fixture(env, options.script ?? FIXTURE, options.launcher, options.detached)
    running.add(fixture)
    await fixture.waitFor((e) => e.event === (options.waitFor ?? 'ready'), 15_000)
    return fixture
  }

  /** Resolves with the first event (seen so far or later) that matches. */
  async waitFor(match: (e: FixtureEvent) => boolean, timeoutMs = 15_000, from = 0): Promise<FixtureEvent> {
    const deadline = Date.now() + timeoutMs
    for (let i = from; ; ) {
      for (; i < this.events.length; i++) if (match(this.events[i])) return this.events[i]
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new Error(`fixture: no matching event within ${timeoutMs} ms; events: ${JSON.stringify(this.events.slice(-12))}; stderr: ${this.stderr.slice(-10).join('\n')}`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  event(pid: number, name: string): FixtureEvent | undefined {
    return this.events.find((e) => e.pid === pid && e.event === name)
  }

  adminPort(pid: number): number {
    const started = this.event(pid, 'started')
    if (!started) throw new Error(`no started event from ${pid}`)
    return started.admin as number
  }

  /** Calls a generation's admin route and returns its JSON reply. */
  async admin(pid: number, path: string): Promise<Record<string, unknown>> {
    // A fresh connection each time, so no idle admin socket skews fd counts.
    const { body } = await get({ port: this.adminPort(pid) }, path, 60_000)
    return JSON.parse(body) as Record<string, unknown>
  }

  /**
   * Sends SIGHUP to the serving generation and waits for the outcome.
   * Returns the upgraded/upgrade-failed event.
   */
  async signalUpgrade(timeoutMs = 30_000): Promise<FixtureEvent> {
    const pid = this.current
    const from = this.events.length
    process.kill(pid, 'SIGHUP')
    return this.waitFor((e) => e.pid === pid && (e.event === 'upgraded' || e.event === 'upgrade-failed'), timeoutMs, from)
  }

  /** A full hand-off: upgrade, the new generation ready, the old one closed and gone. */
  async handoff(): Promise<{ oldPid: number; newPid: number }> {
    const oldPid = this.current
    const result = await this.signalUpgrade()
    if (result.event !== 'upgraded') throw new Error(`upgrade failed: ${JSON.stringify(result)}`)
    const newPid = result.child as number
    await this.waitFor((e) => e.pid === newPid && e.event === 'ready')
    await this.waitFor((e) => e.pid === oldPid && e.event === 'closed')
    await waitUntil(() => !isAlive(oldPid), 10_000, `old process ${oldPid} to exit`)
    return { oldPid, newPid }
  }

  alive(): number[] {
    return [...this.pids].filter(isAlive)
  }

  /** Kills every generation still alive. */
  async kill(): Promise<void> {
    for (const pid of this.alive()) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
    await waitUntil(() => this.alive().length === 0, 5_000, 'fixture processes to die')
  }
}

const running = new Set<Fixture>()

/** For afterEach: no fixture process outlives its test. */
export async function killAllFixtures(): Promise<void> {
  for (const f of running) await f.kill()
  running.clear()
}
