// @ts-check
// test/fixtures/server.mjs driven from a test: shared by the vitest suite
// and the Windows lane (plain JavaScript: the lane runs it under
// `wine node.exe`, and under Linux node against a Wine-hosted server).
import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { get } from './clients.mjs'
import { isAlive, waitUntil } from './processes.mjs'

export const FIXTURE = fileURLToPath(new URL('../fixtures/server.mjs', import.meta.url))

/** @typedef {{ event: string, pid: number, [field: string]: unknown }} FixtureEvent */

/**
 * How a generation is told to upgrade: SIGHUP, or (Windows has no SIGHUP)
 * its admin route /upgrade.
 * @typedef {'signal' | 'admin'} UpgradeVia
 */

/**
 * @typedef {object} StartOptions
 * @property {string} [script] the server to run (default: test/fixtures/server.mjs)
 * @property {string} [waitFor] the event that says it started (default: ready)
 * @property {string[]} [launcher] runs `node script` itself (e.g. systemd-socket-activate)
 * @property {boolean} [detached] a process group of its own, for tests that signal the whole group
 * @property {string} [node] the node that runs it (default: this one; the arm64 lane's runs under qemu)
 * @property {UpgradeVia} [upgradeVia] default: admin on Windows, signal elsewhere
 */

const WAIT_MS = 30_000

/**
 * A fixture server and every generation it upgrades into. All generations
 * share one stdout, so events from each arrive here in order.
 */
export class Fixture {
  /** @type {FixtureEvent[]} */
  events = []
  /** @type {Set<number>} */
  pids = new Set()
  /** @type {string[]} */
  stderr = []
  /** The pid of the generation that is serving now. */
  current = 0
  /** @type {Array<() => void>} */
  #waiters = []
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #poller
  /** @type {(chunk: string) => void} */
  #readStdout
  /** @type {(chunk: string) => void} */
  #readStderr
  /**
   * @param {import('node:child_process').ChildProcess} child
   * @param {UpgradeVia} upgradeVia
   * @param {boolean} hostedByWine its pids are Windows pids, seen from Linux: only the admin routes reach them
   */
  constructor(child, upgradeVia, hostedByWine) {
    this.process = child
    this.upgradeVia = upgradeVia
    this.hostedByWine = hostedByWine
    this.#readStdout = lineReader((line) => this.#onStdoutLine(line))
    this.#readStderr = lineReader((line) => this.stderr.push(line))
  }

  /**
   * Starts the fixture with `env` added to this process's environment and waits for its first event.
   * @param {Record<string, string>} env
   * @param {StartOptions} [options]
   * @returns {Promise<Fixture>}
   */
  static async start(env, options = {}) {
    const [command, ...args] = [...(options.launcher ?? []), options.node ?? process.execPath, options.script ?? FIXTURE]
    const child = await spawnRetryingUnderWine(command, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.detached ?? false,
    })
    const f = new Fixture(child, options.upgradeVia ?? (process.platform === 'win32' ? 'admin' : 'signal'), false)
    child.stdout?.setEncoding('utf8').on('data', f.#readStdout)
    child.stderr?.setEncoding('utf8').on('data', f.#readStderr)
    return f.#started(options.waitFor)
  }

  /**
   * From Linux: `wine node.exe script`. Under Wine, node.exe dies with EBADF
   * when its stdout is a Linux pipe, so the fixture logs to files, which
   * this polls. It exits on its own after two minutes, in case no admin
   * route answers when the test ends.
   * @param {Record<string, string>} env
   * @param {{ logFile: string, nodeExe: string, script?: string, waitFor?: string }} options
   * @returns {Promise<Fixture>}
   */
  static async startUnderWine(env, { logFile, nodeExe, script = FIXTURE, waitFor }) {
    const out = openSync(logFile, 'w')
    const err = openSync(`${logFile}.err`, 'w')
    const child = spawn('wine', [nodeExe, script], {
      env: { ...process.env, FIXTURE_MAX_LIFETIME: '120000', ...env },
      stdio: ['ignore', out, err],
    })
    closeSync(out)
    closeSync(err)
    const f = new Fixture(child, 'admin', true)
    const follow = [tail(logFile, f.#readStdout), tail(`${logFile}.err`, f.#readStderr)]
    f.#poller = setInterval(() => follow.forEach((poll) => poll()), 25)
    f.#poller.unref()
    return f.#started(waitFor)
  }

  /** @param {string | undefined} waitFor */
  async #started(waitFor = 'ready') {
    running.add(this)
    await this.waitFor((e) => e.event === waitFor, WAIT_MS)
    return this
  }

  /** @param {string} line */
  #onStdoutLine(line) {
    /** @type {FixtureEvent} */
    let event
    try {
      event = JSON.parse(line)
    } catch {
      this.stderr.push(`stdout: ${line}`)
      return
    }
    this.events.push(event)
    this.pids.add(event.pid)
    if (event.event === 'ready') this.current = event.pid
    for (const wake of this.#waiters.splice(0)) wake()
  }

  /**
   * Resolves with the first event from index `from` on (seen so far or later) that matches.
   * @param {(e: FixtureEvent) => boolean} match
   * @returns {Promise<FixtureEvent>}
   */
  async waitFor(match, timeoutMs = WAIT_MS, from = 0) {
    const deadline = Date.now() + timeoutMs
    for (let i = from; ; ) {
      for (; i < this.events.length; i++) if (match(this.events[i])) return this.events[i]
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new Error(`fixture: no matching event within ${timeoutMs} ms; events: ${JSON.stringify(this.events.slice(-12))}; stderr: ${this.stderr.slice(-10).join('\n')}`)
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve(undefined)
        })
      })
    }
  }

  /**
   * @param {number} pid
   * @param {string} name
   * @returns {FixtureEvent | undefined}
   */
  event(pid, name) {
    return this.events.find((e) => e.pid === pid && e.event === name)
  }

  /** @param {number} pid */
  adminPort(pid) {
    const started = this.event(pid, 'started')
    if (!started) throw new Error(`no started event from ${pid}`)
    return /** @type {number} */ (started.admin)
  }

  /**
   * Calls a generation's admin route and returns its JSON reply.
   * @param {number} pid
   * @param {string} path
   * @returns {Promise<Record<string, unknown>>}
   */
  async admin(pid, path) {
    // A fresh connection each time, so no idle admin socket skews fd counts.
    const { body } = await get({ port: this.adminPort(pid) }, path, 60_000)
    return JSON.parse(body)
  }

  /**
   * Sends SIGHUP to the serving generation and waits for the outcome.
   * Returns the upgraded/upgrade-failed event.
   * @returns {Promise<FixtureEvent>}
   */
  async signalUpgrade(timeoutMs = 30_000) {
    const pid = this.current
    const from = this.events.length
    process.kill(pid, 'SIGHUP')
    return this.waitFor((e) => e.pid === pid && (e.event === 'upgraded' || e.event === 'upgrade-failed'), timeoutMs, from)
  }

  /**
   * Asks the serving generation to upgrade through its admin route; resolves with its reply.
   * @returns {Promise<Record<string, unknown>>}
   */
  upgrade(query = '') {
    return this.admin(this.current, `/upgrade${query}`)
  }

  /**
   * A full hand-off: upgrade, the new generation ready, the old one closed and gone.
   * @returns {Promise<{ oldPid: number, newPid: number }>}
   */
  async handoff() {
    const oldPid = this.current
    const newPid = this.upgradeVia === 'signal' ? await this.#upgradeBySignal() : await this.#upgradeByAdmin()
    await this.waitFor((e) => e.pid === newPid && e.event === 'ready')
    await this.waitFor((e) => e.pid === oldPid && e.event === 'closed')
    await waitUntil(async () => !(await this.running(oldPid, newPid)), 20_000, `old process ${oldPid} to exit`)
    return { oldPid, newPid }
  }

  async #upgradeBySignal() {
    const result = await this.signalUpgrade()
    if (result.event !== 'upgraded') throw new Error(`upgrade failed: ${JSON.stringify(result)}`)
    return /** @type {number} */ (result.child)
  }

  async #upgradeByAdmin() {
    // One draining generation at a time, which these tests count on: a new
    // generation could upgrade as soon as its parent has handed over.
    await this.admin(this.current, '/wait-parent?timeout=20000')
    const reply = await this.upgrade()
    if (!reply.ok) throw new Error(`upgrade failed: ${JSON.stringify(reply)}`)
    return /** @type {number} */ (reply.pid)
  }

  /**
   * Whether `pid` runs: asked of this machine, or (hosted by Wine) of generation `via`.
   * @param {number} pid
   * @returns {Promise<boolean>}
   */
  async running(pid, via = this.current) {
    if (!this.hostedByWine) return isAlive(pid)
    return /** @type {boolean} */ ((await this.admin(via, `/alive?pid=${pid}`)).alive)
  }

  /** The generations that are still alive (processes of this machine only). */
  alive() {
    return [...this.pids].filter(isAlive)
  }

  /**
   * Kills every generation still alive. Hosted by Wine, asks every
   * generation that still serves to stop; the rest exit on their own
   * lifetime limit.
   * @returns {Promise<void>}
   */
  async kill() {
    clearInterval(this.#poller)
    if (this.hostedByWine) {
      for (const pid of this.pids) {
        if (this.event(pid, 'started') && !this.event(pid, 'closed')) await this.admin(pid, '/stop-and-exit').catch(() => {})
      }
      return
    }
    for (const pid of this.alive()) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Gone meanwhile.
      }
    }
    await waitUntil(() => this.alive().length === 0, 5_000, 'fixture processes to die')
  }
}

/** @type {Set<Fixture>} */
const running = new Set()

/**
 * For afterEach: no fixture process outlives its test.
 * @returns {Promise<void>}
 */
export async function killAllFixtures() {
  for (const f of running) await f.kill()
  running.clear()
}

/**
 * A function to feed text chunks to, which calls `onLine` for each whole line.
 * @param {(line: string) => void} onLine
 * @returns {(chunk: string) => void}
 */
function lineReader(onLine) {
  let buffer = ''
  return (chunk) => {
    buffer += chunk
    for (let nl; (nl = buffer.indexOf('\n')) !== -1; buffer = buffer.slice(nl + 1)) onLine(buffer.slice(0, nl).replace(/\r$/, ''))
  }
}

/**
 * A function that feeds whatever `file` has gained since its last call to `feed`.
 * @param {string} file
 * @param {(text: string) => void} feed
 */
function tail(file, feed) {
  let offset = 0
  return () => {
    const text = readFileSync(file, 'utf8')
    if (text.length > offset) feed(text.slice(offset))
    offset = text.length
  }
}

/**
 * spawn(), tried again (up to 3 times, 250 ms apart) when it throws
 * `spawn UNKNOWN`: Wine's CreateProcess now and then fails that way for no
 * reason it reports (seen once in a CI run, at the test's own start of a
 * fixture, 45 ms in). Only under Wine (Windows' node.exe) and only that
 * code: on Linux, or for any other error, the first failure is the answer.
 * @param {string} command @param {string[]} args @param {import('node:child_process').SpawnOptions} options
 */
async function spawnRetryingUnderWine(command, args, options) {
  for (let attempt = 1; ; attempt++) {
    try {
      return spawn(command, args, options)
    } catch (err) {
      if (process.platform !== 'win32' || /** @type {NodeJS.ErrnoException} */ (err).code !== 'UNKNOWN' || attempt >= 3) throw err
      process.stderr.write(`fixture: spawn UNKNOWN under Wine, attempt ${attempt}; trying again\n`)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
}
