// Scenario j, no load: what an upgrade of a real application costs next to
// starting it cold. The app is express-app.cjs (express and six common
// middlewares). Per variant (without, then with a warm NODE_COMPILE_CACHE),
// after one unmeasured round, `runs` rounds of:
// - cold: spawn `node express-app.cjs` (no handover), from spawn() to its
//   "listening on" line (printed in listen()'s callback: the port accepts),
//   then one GET /health: to its 200 response;
// - upgrade: SIGHUP to the current generation of `node --import
//   handover/register express-app.cjs`; the figure is the preload's own
//   "upgraded to pid N in M ms" (in the old process, from the SIGHUP to
//   upgrade() resolving: the new generation is ready), as b measures its
//   upgrades in server.mjs, in whole ms. Then the old one is waited out.
// The driver reads both apps' output from pipes as it comes: polling the
// port every 2 ms made the cold start 50% slower on a busy 2-core machine.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Lines } from './lines.mjs'
import { freePort, isAlive, waitFor } from './proc.mjs'
import { max, median, min } from './stats.mjs'

const APP = fileURLToPath(new URL('../express-app.cjs', import.meta.url))
const REGISTER = fileURLToPath(new URL('../../dist/preload/register.js', import.meta.url))
export const APP_LABEL = 'express-app.cjs: express + helmet, cors, compression, cookie-parser, morgan, express-rate-limit, 4 routes'
const LISTENING = /^listening on /

/** Whether `node` reads NODE_COMPILE_CACHE (module.enableCompileCache, node >= 22.1). */
function hasCompileCache(node) {
  const out = spawnSync(node, ['-p', "typeof require('node:module').enableCompileCache"], { encoding: 'utf8' })
  return out.stdout.trim() === 'function'
}

export async function runRealApp({ options: o, dir, log, node }) {
  const variants = [{ name: 'no compile cache' }]
  const cacheSupported = hasCompileCache(node.path)
  if (cacheSupported) variants.push({ name: 'NODE_COMPILE_CACHE, warm', cache: true })
  else log(`  j: node ${node.version} has no NODE_COMPILE_CACHE (node >= 22.1); measuring without it only`)
  const out = []
  for (const variant of variants) {
    const cacheDir = variant.cache ? mkdtempSync(join(dir, 'compile-cache-')) : undefined
    const env = cacheDir ? { NODE_COMPILE_CACHE: cacheDir } : {}
    log(`  j: ${variant.name}: ${o.floorRuns} cold starts and ${o.floorRuns} upgrades, after one unmeasured of each`)
    out.push({ name: variant.name, ...(await measureVariant(o.floorRuns, { logFile: join(dir, 'j.log'), node: node.path, env, cacheDir })) })
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true })
  }
  return { app: APP_LABEL, node: node.version, runs: o.floorRuns, cacheSupported, variants: out }
}

async function measureVariant(runs, { logFile, node, env, cacheDir }) {
  const app = await PreloadedApp.start(node, env, logFile)
  const cold = []
  const upgrades = []
  try {
    // Unmeasured: the first of each also fills the compile cache.
    await coldStart(node, env, logFile)
    await app.upgrade()
    for (let i = 0; i < runs; i++) {
      cold.push(await coldStart(node, env, logFile))
      upgrades.push(await app.upgrade())
    }
  } finally {
    await app.stop()
  }
  const stats = (xs) => ({ median: median(xs), min: min(xs), max: max(xs), all: xs })
  return {
    cacheFiles: cacheDir ? countFiles(cacheDir) : undefined,
    acceptMs: stats(cold.map((c) => c.acceptMs)),
    firstOkMs: stats(cold.map((c) => c.firstOkMs)),
    upgradeMs: stats(upgrades.map((u) => u.ms)),
    // A cross-check from outside: SIGHUP sent to the preload's line read from the pipe.
    upgradeSeenMs: stats(upgrades.map((u) => u.seenMs)),
    // From that line to the old generation's exit (polled every 10 ms).
    oldGoneMs: stats(upgrades.map((u) => u.goneMs)),
  }
}

function countFiles(path) {
  let n = 0
  for (const entry of readdirSync(path, { withFileTypes: true })) n += entry.isDirectory() ? countFiles(join(path, entry.name)) : 1
  return n
}

/** One `node express-app.cjs`: spawn to "listening", and to a 200 from GET /health; then SIGTERM and its exit. */
async function coldStart(node, env, logFile) {
  const port = await freePort()
  const start = performance.now()
  const child = spawn(node, [APP], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try {
    const listening = await new Lines(child, logFile, 'express-app.cjs').next(LISTENING, 20_000)
    const status = await get(port)
    if (status !== 200) throw new Error(`express-app.cjs answered GET /health with ${status}`)
    return { acceptMs: listening.at - start, firstOkMs: performance.now() - start }
  } finally {
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(killer)
  }
}

function get(port) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', agent: false, timeout: 10_000 }, (res) => {
      res.resume()
      res.once('end', () => resolve(res.statusCode))
    })
    req.once('timeout', () => req.destroy(new Error('GET /health timed out')))
    req.once('error', reject)
  })
}

/** `node --import handover/register express-app.cjs`: every generation writes to the first one's pipes. */
class PreloadedApp {
  static async start(node, env, logFile) {
    const port = await freePort()
    // Written by ready(), which comes after listening: an upgrade before it would wait for it.
    const pidFile = `${logFile}.pid`
    rmSync(pidFile, { force: true })
    const child = spawn(node, ['--import', REGISTER, APP], {
      env: { ...process.env, ...env, PORT: String(port), HANDOVER_PID_FILE: pidFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const app = new PreloadedApp(child, new Lines(child, logFile, 'the preloaded express app'))
    const ready = () => existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8')) === child.pid
    try {
      await waitFor('the preloaded express app to be ready', () => ready() || child.exitCode !== null, 20_000, 10)
      if (child.exitCode !== null) throw new Error(`the preloaded express app exited with ${child.exitCode}:\n${app.lines.tail.join('\n')}`)
    } catch (err) {
      await app.stop()
      throw err
    }
    return app
  }

  constructor(child, lines) {
    this.lines = lines
    this.current = child.pid
    this.pids = new Set([child.pid])
  }

  async upgrade() {
    const old = this.current
    const outcome = this.lines.next(/^handover: (?:upgraded to pid (\d+) in (\d+) ms|upgrade failed: .*)$/)
    const sent = performance.now()
    process.kill(old, 'SIGHUP')
    const { line, at, match } = await outcome
    if (!match[1]) throw new Error(`j: ${line}`)
    this.current = Number(match[1])
    this.pids.add(this.current)
    await waitFor(`the old generation ${old} to exit`, () => !isAlive(old), 30_000, 10)
    return { ms: Number(match[2]), seenMs: at - sent, goneMs: performance.now() - at }
  }

  async stop() {
    try {
      process.kill(this.current, 'SIGTERM')
    } catch {}
    try {
      await waitFor('the preloaded express app to exit', () => [...this.pids].every((p) => !isAlive(p)), 15_000, 20)
    } catch {
      for (const p of this.pids) {
        try {
          process.kill(p, 'SIGKILL')
        } catch {}
      }
    }
  }
}
