// Helpers for the Windows lane (scripts/test-windows.sh). Plain JavaScript,
// because the same file runs under Linux node and under `wine node.exe`
// (Node 20 cannot load TypeScript). It mirrors test/helpers/{fixture,clients}.ts
// where those rely on Linux (/proc) or on TypeScript.
import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

export const FIXTURE = fileURLToPath(new URL('../fixtures/server.mjs', import.meta.url))

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(25)
  }
}

/** Inside Windows only: whether a Windows process runs. */
export function isAlive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** One request on a fresh connection. Rejects on any failure, with the error's code. */
export function get(target, path = '/', timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', ...target, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })))
    req.on('error', reject)
  })
}

export async function pidAt(target) {
  const { status, body } = await get(target)
  if (status !== 200) throw new Error(`status ${status}`)
  return Number(body)
}

/** A port below Linux's ephemeral range, free a moment ago: Wine's bind refuses ports with TIME_WAIT entries. */
export async function freePort(host = '127.0.0.1') {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 20_000)
    const free = await new Promise((resolve) => {
      const server = net.createServer()
      server.once('error', () => resolve(false))
      server.listen(port, host, () => server.close(() => resolve(true)))
    })
    if (free) return port
  }
}

/** Binds and closes a probe server on the port: resolves if nothing holds it, rejects (EADDRINUSE) if something does. */
export function probeBind(port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(port, host, () => probe.close(() => resolve()))
  })
}

/**
 * `concurrency` loops of fresh-connection requests until stopped. Counts
 * answers by pid and failures by code; `mark()` snapshots the failures so a
 * caller can attribute them to one hand-off.
 */
export function loadLoop(target, concurrency) {
  let running = true
  const errors = {}
  const byPid = new Map()
  let ok = 0
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const { status, body } = await get(target, '/', 10_000)
        if (status !== 200) errors[`status ${status}`] = (errors[`status ${status}`] ?? 0) + 1
        else {
          ok++
          byPid.set(Number(body), (byPid.get(Number(body)) ?? 0) + 1)
        }
      } catch (err) {
        const code = err.code ?? 'unknown'
        errors[code] = (errors[code] ?? 0) + 1
      }
    }
  })
  return {
    get ok() {
      return ok
    },
    errors,
    byPid,
    mark: () => ({ ...errors }),
    async stop() {
      running = false
      await Promise.all(loops)
    },
  }
}

/** Failures by code between two marks. */
export function since(before, after) {
  const out = {}
  for (const [code, n] of Object.entries(after)) if (n - (before[code] ?? 0) > 0) out[code] = n - (before[code] ?? 0)
  return out
}

/**
 * test/fixtures/server.mjs and every generation it upgrades into, driven
 * through each generation's admin port. On Windows there is no SIGHUP: the
 * admin route /upgrade is how the fixture (like examples/http-server) is
 * told to upgrade.
 *
 * Under Wine, node.exe dies with EBADF when its stdout is a Linux pipe, so a
 * fixture started from Linux logs to a file, which this polls.
 */
export class Fixture {
  events = []
  stderr = []
  current = 0
  #waiters = []
  #buffer = ''

  /**
   * Inside Windows (node.exe running the test): stdout is a pipe between
   * Windows processes. Also the arm64 lane's: `options.node` runs the fixture.
   */
  static async start(env, options = {}) {
    const f = new Fixture()
    f.process = spawn(options.node ?? process.execPath, [options.script ?? FIXTURE], {
      env: { ...process.env, FIXTURE_MAX_LIFETIME: '90000', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    f.process.stdout.setEncoding('utf8').on('data', (chunk) => f.#feed(chunk))
    f.process.stderr.setEncoding('utf8').on('data', (chunk) => f.stderr.push(chunk))
    return f.#started(options)
  }

  /** From Linux: `wine node.exe fixture`, logging to files. */
  static async startUnderWine(env, { logFile, nodeExe, script = FIXTURE, waitFor } = {}) {
    const f = new Fixture()
    const out = openSync(logFile, 'w')
    const err = openSync(`${logFile}.err`, 'w')
    f.process = spawn('wine', [nodeExe, script], {
      env: { ...process.env, FIXTURE_MAX_LIFETIME: '120000', ...env },
      stdio: ['ignore', out, err],
    })
    closeSync(out)
    closeSync(err)
    let offset = 0
    f.poller = setInterval(() => {
      const text = readFileSync(logFile, 'utf8')
      if (text.length > offset) {
        f.#feed(text.slice(offset))
        offset = text.length
      }
      try {
        const errText = readFileSync(`${logFile}.err`, 'utf8')
        if (errText) f.stderr = [errText]
      } catch {}
    }, 25)
    f.poller.unref()
    return f.#started({ waitFor })
  }

  async #started(options) {
    running.add(this)
    await this.waitFor((e) => e.event === (options.waitFor ?? 'ready'), 30_000)
    return this
  }

  #feed(chunk) {
    this.#buffer += chunk
    let nl
    while ((nl = this.#buffer.indexOf('\n')) !== -1) {
      const line = this.#buffer.slice(0, nl)
      this.#buffer = this.#buffer.slice(nl + 1)
      let event
      try {
        event = JSON.parse(line)
      } catch {
        this.stderr.push(`stdout: ${line}`)
        continue
      }
      this.events.push(event)
      if (event.event === 'ready') this.current = event.pid
    }
    for (const wake of this.#waiters.splice(0)) wake()
  }

  async waitFor(match, timeoutMs = 30_000, from = 0) {
    const deadline = Date.now() + timeoutMs
    for (let i = from; ; ) {
      for (; i < this.events.length; i++) if (match(this.events[i])) return this.events[i]
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new Error(`fixture: no matching event within ${timeoutMs} ms; events: ${JSON.stringify(this.events.slice(-12))}; stderr: ${this.stderr.join('').slice(-2000)}`)
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200))
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  event(pid, name) {
    return this.events.find((e) => e.pid === pid && e.event === name)
  }

  get pids() {
    return [...new Set(this.events.map((e) => e.pid))]
  }

  /** Calls a generation's admin route and returns its JSON reply. */
  async admin(pid, path) {
    const started = this.event(pid, 'started')
    if (!started) throw new Error(`no started event from ${pid}`)
    const { body } = await get({ port: started.admin }, path, 60_000)
    return JSON.parse(body)
  }

  /** Asks the serving generation to upgrade (its admin route), resolves with the reply. */
  upgrade(query = '') {
    return this.admin(this.current, `/upgrade${query}`)
  }

  /** Whether `pid` runs, as a Windows process sees it: this one, or (from Linux) generation `via`. */
  async alive(pid, via = this.current) {
    if (process.platform === 'win32') return isAlive(pid)
    return (await this.admin(via, `/alive?pid=${pid}`)).alive
  }

  /** A full hand-off: upgrade, the new generation ready, the old one closed and gone. */
  async handoff() {
    const oldPid = this.current
    // A new generation can only upgrade once its own parent has gone.
    await this.admin(oldPid, '/wait-parent?timeout=20000')
    const reply = await this.upgrade()
    if (!reply.ok) throw new Error(`upgrade failed: ${JSON.stringify(reply)}`)
    const newPid = reply.pid
    await this.waitFor((e) => e.pid === newPid && e.event === 'ready')
    await this.waitFor((e) => e.pid === oldPid && e.event === 'closed')
    await waitUntil(async () => !(await this.alive(oldPid, newPid)), 20_000, `old process ${oldPid} to exit`)
    return { oldPid, newPid }
  }

  /** Stops every generation that still answers; the rest exit on their own lifetime limit. */
  async stop() {
    clearInterval(this.poller)
    for (const pid of this.pids) {
      if (!this.event(pid, 'started') || this.event(pid, 'closed')) continue
      await this.admin(pid, '/stop-and-exit').catch(() => {})
    }
    if (this.process.exitCode === null && process.platform === 'win32') this.process.kill('SIGKILL')
  }
}

const running = new Set()

/** For afterEach: no fixture outlives its test. */
export async function stopAllFixtures() {
  for (const f of running) await f.stop()
  running.clear()
}
