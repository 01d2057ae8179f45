import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { afterAll } from 'vitest'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './clients.mjs'
import { Fixture, killAllFixtures } from './fixture.mjs'
import { killPreloadApps, PreloadApp } from './preload-app.js'
import { isAlive, sleep } from './processes.mjs'
import { CLI, killSupervised, Supervised, type Status } from './supervisor.js'

/**
 * One app served by handover in each of its three modes, upgraded the way
 * its users upgrade it, with the moment each old generation was handed off
 * and the moment it exited, for tests that put a client through upgrades.
 *   api      test/fixtures/http-server.mjs: an Upgrader and drain(), SIGHUP to the serving pid
 *   preload  test/fixtures/apps/configurable.mjs under handover/register, SIGHUP to the serving pid
 *   run      test/fixtures/apps/worker.mjs under `handover run -w 2`, SIGHUP to the supervisor
 */
export type Mode = 'api' | 'preload' | 'run'
export const MODES: Mode[] = ['api', 'preload', 'run']

export interface Upgraded {
  /** The processes that served until this upgrade: they drain now. */
  old: number[]
  /** When the test saw the hand-off: the new generation serves, the old ones stopped accepting. */
  at: number
}

export interface Deployment {
  readonly mode: Mode
  readonly port: number
  upgrade(): Promise<Upgraded>
  /** Per old generation (api only): what its drain() reported. */
  readonly drained: Array<Record<string, unknown>>
}

export interface StartOptions {
  /** false: the mode's own off switch (drain's handOff: false, HANDOVER_HAND_OFF=0, --no-hand-off). */
  handOff?: boolean
  env?: NodeJS.ProcessEnv
}

const HTTP_SERVER = fileURLToPath(new URL('../fixtures/http-server.mjs', import.meta.url))

export async function startDeployment(mode: Mode, { handOff = true, env = {} }: StartOptions = {}): Promise<Deployment> {
  const port = await freePort()
  if (mode === 'api') return startApi(port, handOff, env)
  if (mode === 'preload') return startPreload(port, handOff, env)
  return startRun(port, handOff, env)
}

async function startApi(port: number, handOff: boolean, env: NodeJS.ProcessEnv): Promise<Deployment> {
  const f = await Fixture.start({ FIXTURE_ADDRESS: `127.0.0.1:${port}`, ...(handOff ? {} : { FIXTURE_HAND_OFF: '0' }), ...(env as Record<string, string>) }, { script: HTTP_SERVER })
  return {
    mode: 'api',
    port,
    get drained() {
      return f.events.filter((e) => e.event === 'drained')
    },
    async upgrade() {
      const oldPid = f.current
      const from = f.events.length
      process.kill(oldPid, 'SIGHUP')
      const result = await f.waitFor((e) => e.pid === oldPid && (e.event === 'upgraded' || e.event === 'upgrade-failed'), 30_000, from)
      if (result.event !== 'upgraded') throw new Error(`upgrade failed: ${JSON.stringify(result)}`)
      const newPid = result.child as number
      await f.waitFor((e) => e.pid === newPid && e.event === 'ready', 30_000, from)
      await f.waitFor((e) => e.pid === oldPid && e.event === 'draining', 30_000, from)
      return { old: [oldPid], at: Date.now() }
    },
  }
}

async function startPreload(port: number, handOff: boolean, env: NodeJS.ProcessEnv): Promise<Deployment> {
  const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), ...(handOff ? {} : { HANDOVER_HAND_OFF: '0' }), ...env })
  return {
    mode: 'preload',
    port,
    drained: [],
    async upgrade() {
      const oldPid = app.current
      const from = app.lines.length
      process.kill(oldPid, 'SIGHUP')
      // Written by the old process once the new one is ready; it drains from then on.
      const match = await app.waitForLine(/^handover: (upgraded to pid (\d+) in \d+ ms|upgrade failed: .*)$/, 30_000, from)
      if (!match[2]) throw new Error(match[0])
      const at = Date.now()
      app.current = Number(match[2])
      return { old: [oldPid], at }
    },
  }
}

const controlDir = mkdtempSync(join(tmpdir(), 'handover-deploy-'))
// Removed after the test file that imported this: its supervisors, and their sockets, are gone by then.
afterAll(() => rmSync(controlDir, { recursive: true, force: true }))

async function startRun(port: number, handOff: boolean, env: NodeJS.ProcessEnv): Promise<Deployment> {
  const socket = join(controlDir, `ctl-${Math.random().toString(36).slice(2)}.sock`)
  const s = await Supervised.start(['-w', '2', '--control-socket', socket, ...(handOff ? [] : ['--no-hand-off'])], 'worker.mjs', { PORT: String(port), ...env })
  let generation = 1
  return {
    mode: 'run',
    port,
    drained: [],
    async upgrade() {
      // Asked without blocking this process's loop (the clients run in it), unlike cli().
      const before = await statusOf(s, socket)
      const old = before.workers.filter((w) => w.generation === generation).map((w) => w.pid)
      const from = s.lines.length
      process.kill(s.pid, 'SIGHUP')
      generation++
      const match = await s.waitForLine(new RegExp(`^handover: (generation ${generation} ready|upgrade failed: .*)`), 30_000, from)
      if (!match[0].includes('ready')) throw new Error(match[0])
      const at = Date.now()
      // Records every worker seen so far, for killSupervised() after the test.
      s.workerPids()
      return { old, at }
    },
  }
}

function statusOf(s: Supervised, socket: string): Promise<Status> {
  s.workerPids()
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'status', '--json', '--socket', socket], { encoding: 'utf8', timeout: 20_000 }, (err, stdout) => {
      if (err) return reject(err)
      resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as Status)
    })
  })
}

/** For afterEach: every process any mode started, by pid. */
export async function killDeployments(): Promise<void> {
  await killAllFixtures()
  killPreloadApps()
  await killSupervised()
}

export function removeControlDir(): void {
  rmSync(controlDir, { recursive: true, force: true })
}

/**
 * Watches processes until each has exited, and resolves with how long after
 * `from` each was seen gone (polled every 10 ms), or rejects after `timeoutMs`.
 */
export async function exitTimes(pids: number[], from: number, timeoutMs = 20_000): Promise<number[]> {
  const gone = new Map<number, number>()
  const deadline = from + timeoutMs
  for (;;) {
    for (const pid of pids) if (!gone.has(pid) && !isAlive(pid)) gone.set(pid, Date.now() - from)
    if (gone.size === pids.length) return pids.map((pid) => gone.get(pid) as number)
    if (Date.now() > deadline) throw new Error(`still running ${timeoutMs} ms after the hand-off: ${pids.filter((p) => !gone.has(p)).join(', ')}`)
    await sleep(10)
  }
}
