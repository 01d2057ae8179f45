// k and l run the same app in each of handover's three products, with
// connection hand-off on or off, and upgrade it one upgrade at a time:
//   api      server.mjs (Upgrader + drain()); off: BENCH_HAND_OFF=0, which
//            makes it call drain(server, { handOff: false })
//   preload  node --import handover/register worker.mjs; off: HANDOVER_HAND_OFF=0
//   run      handover run -w 2 worker.mjs (the CLI); off: --no-hand-off
// upgrade() sends SIGHUP to the pid in the pid file (the current generation,
// or the supervisor), waits for the new generation to be ready, then for
// every process of the old one to exit. Exits are polled in /proc every
// 10 ms by the bench itself; the hand-off moment is each old process's own
// 'draining' event (server.mjs after exit(), worker.mjs from onDrain()).
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Lines } from './lines.mjs'
import { childrenOf, freePort, isAlive, sleep, waitFor } from './proc.mjs'
import { max, median } from './stats.mjs'

const here = (file) => fileURLToPath(new URL(file, import.meta.url))
const DIST = here('../../dist/')
const REGISTER = join(DIST, 'preload', 'register.js')
const CLI = join(DIST, 'bin.js')
const WORKERS = 2

export const MODE_TITLES = {
  api: 'the API (server.mjs)',
  preload: 'the preload (--import handover/register)',
  run: `handover run -w ${WORKERS}`,
}

/** Wall-clock ms, comparable with the `at` of the servers' events (lib/handler.mjs). */
const wall = (perfNow = performance.now()) => performance.timeOrigin + perfNow

/**
 * Whether this build has each product's hand-off off switch. Until it does,
 * "off" runs the same code as "on" (drain() ignores an option it does not
 * know, the preload an unknown variable); `handover run` would refuse an
 * unknown flag, so it is only passed when the CLI's help lists it.
 */
export function handOffSwitches(node = process.execPath) {
  const help = spawnSync(node, [CLI, 'run', '--help'], { encoding: 'utf8' })
  const bundle = distText()
  return {
    api: /\bhandOff\b/.test(bundle),
    preload: bundle.includes('HANDOVER_HAND_OFF'),
    run: `${help.stdout}${help.stderr}`.includes('--no-hand-off'),
  }
}

function distText() {
  let text = ''
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.js')) text += readFileSync(path, 'utf8')
    }
  }
  walk(DIST)
  return text
}

export class ModeServer {
  /**
   * Starts `mode` on a free port; `handOff` false turns hand-off off with
   * that product's switch. Resolves once the first generation serves.
   */
  static async start(mode, { name, dir, handOff, switches, node, env = {} }) {
    const port = await freePort()
    const files = { events: join(dir, `${name}.events`), pidFile: join(dir, `${name}.pid`), log: join(dir, `${name}.log`) }
    rmSync(files.pidFile, { force: true })
    const base = { ...process.env, ...env, BENCH_PORT: String(port), BENCH_EVENTS: files.events, BENCH_WORKERS: String(WORKERS) }
    let args
    if (mode === 'api') {
      args = [here('../server.mjs')]
      base.BENCH_PID_FILE = files.pidFile
      if (!handOff) base.BENCH_HAND_OFF = '0'
    } else if (mode === 'preload') {
      args = ['--import', REGISTER, here('../worker.mjs')]
      base.HANDOVER_PID_FILE = files.pidFile
      if (!handOff) base.HANDOVER_HAND_OFF = '0'
    } else {
      args = [CLI, 'run', '-w', String(WORKERS), '--pid-file', files.pidFile,
        ...(!handOff && switches.run ? ['--no-hand-off'] : []), here('../worker.mjs')]
    }
    const child = spawn(node, args, { env: base, stdio: ['ignore', 'pipe', 'pipe'] })
    const server = new ModeServer(mode, port, files, child, new Lines(child, files.log, `${mode} (${name})`))
    try {
      await waitFor(`${mode} to be ready (log: ${files.log})`, () => server.readyNow() || child.exitCode !== null, 20_000, 10)
      if (child.exitCode !== null) throw new Error(`${mode} exited with ${child.exitCode}:\n${server.lines.tail.join('\n')}`)
    } catch (err) {
      await server.stop()
      throw err
    }
    return server
  }

  constructor(mode, port, files, child, lines) {
    this.mode = mode
    this.port = port
    this.files = files
    this.child = child
    this.lines = lines
    this.url = `http://127.0.0.1:${port}/`
    // Every pid that ever served, for stop().
    this.known = new Set([child.pid])
  }

  /** The pid file is written at ready(): by the first generation, or by the supervisor once its workers are. */
  readyNow() {
    const pid = this.pidFromFile()
    if (!pid || !isAlive(pid)) return false
    return this.mode !== 'run' || this.serving().length === WORKERS
  }

  pidFromFile() {
    try {
      return Number(readFileSync(this.files.pidFile, 'utf8').trim()) || undefined
    } catch {
      return undefined
    }
  }

  /** The processes that serve now: the current generation, or the supervisor's workers. */
  serving() {
    const pid = this.pidFromFile()
    if (!pid) return []
    const pids = this.mode === 'run' ? childrenOf(pid) : [pid]
    for (const p of pids) this.known.add(p)
    return pids
  }

  events(kind) {
    let text = ''
    try {
      text = readFileSync(this.files.events, 'utf8')
    } catch {}
    const all = text.split('\n').filter(Boolean).map((l) => JSON.parse(l))
    return kind ? all.filter((e) => e.event === kind) : all
  }

  /**
   * One upgrade, to its end. Returns { ok, code?, signalAt, readyAt,
   * old: [{ pid, drainingAt, exitAt }] } in wall-clock ms; exitAt is
   * undefined for an old process still alive after `timeout`.
   */
  async upgrade(timeout = 40_000) {
    const target = this.pidFromFile()
    const old = this.serving()
    const outcome = this.outcome(target, timeout)
    const signalAt = wall()
    process.kill(target, 'SIGHUP')
    const { ok, code, readyAt } = await outcome.catch((err) => ({ ok: false, code: 'TIMEOUT', message: err.message }))
    const result = { ok, code, signalAt, readyAt, old: old.map((pid) => ({ pid })) }
    if (!ok) return result
    // Every old process, polled every 10 ms: its exit as the bench sees it.
    const deadline = Date.now() + timeout
    while (result.old.some((o) => o.exitAt === undefined) && Date.now() < deadline) {
      for (const o of result.old) if (o.exitAt === undefined && !isAlive(o.pid)) o.exitAt = wall()
      await sleep(10)
    }
    for (const e of this.events('draining')) {
      const o = result.old.find((x) => x.pid === e.pid)
      if (o && o.drainingAt === undefined) o.drainingAt = e.at
    }
    this.serving()
    return result
  }

  /** Resolves { ok, code, readyAt } when this mode says the upgrade signalled to `target` succeeded or failed. */
  async outcome(target, timeout) {
    if (this.mode === 'api') {
      // server.mjs writes the outcome to its events file, from the old process.
      const seen = this.events().length
      const e = await waitFor(`the upgrade of ${target}`, () =>
        this.events().slice(seen).find((x) => (x.event === 'upgrade' || x.event === 'upgrade-failed') && x.pid === target), timeout, 10)
      return { ok: e.event === 'upgrade', code: e.code, readyAt: e.at }
    }
    // The preload prints from the old process; the supervisor prints its own lines.
    const pattern = this.mode === 'preload'
      ? /^handover: (?:(upgraded to pid \d+)|upgrade failed: (\S+):)/
      : /^handover: (?:(generation \d+ ready)|upgrade failed: (\S+):)/
    const { match, at } = await this.lines.next(pattern, timeout)
    return { ok: Boolean(match[1]), code: match[2], readyAt: wall(at) }
  }

  /** SIGTERM to the current generation or the supervisor; SIGKILL to what is left after `timeout`. */
  async stop(timeout = 20_000) {
    const signal = (pid, sig) => {
      try {
        process.kill(pid, sig)
      } catch {}
    }
    const pid = this.pidFromFile()
    this.serving()
    signal(pid && isAlive(pid) ? pid : this.child.pid, 'SIGTERM')
    try {
      await waitFor(`${this.mode} to exit`, () => [...this.known].every((p) => !isAlive(p)), timeout, 20)
      return true
    } catch {
      for (const p of this.known) signal(p, 'SIGKILL')
      await sleep(200)
      return false
    }
  }
}

/**
 * What k and l report of a list of upgrade() results: how many succeeded,
 * the failures' codes, SIGHUP to the new generation ready, and the old
 * generation's exit after the hand-off: from its first process's
 * 'draining' (the ready moment if none was seen) to its last one's exit.
 */
export function upgradeFigures(list) {
  const ok = list.filter((u) => u.ok)
  const readyMs = ok.map((u) => u.readyAt - u.signalAt)
  const goneMs = []
  let notGone = 0
  for (const u of ok) {
    if (u.old.some((o) => o.exitAt === undefined)) {
      notGone++
      continue
    }
    const from = Math.min(...u.old.map((o) => o.drainingAt ?? u.readyAt))
    goneMs.push(Math.max(...u.old.map((o) => o.exitAt)) - from)
  }
  return {
    signals: list.length,
    ok: ok.length,
    failed: list.filter((u) => !u.ok).map((u) => u.code),
    readyMs: { median: median(readyMs), max: max(readyMs), all: readyMs },
    goneMs: { median: median(goneMs), max: max(goneMs), all: goneMs },
    notGone,
  }
}
