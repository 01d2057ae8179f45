// The load generator: wrk when it is on PATH (apt-get install wrk), else
// autocannon from devDependencies. Both report the same shape:
//   { requests, seconds, rps, p50Ms, p99Ms, errors: {connect, read, write, timeout, non2xx}, failed }
import { spawn, spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { createRequire } from 'node:module'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = (file) => fileURLToPath(new URL(file, import.meta.url))

function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return join(dir, command)
    } catch {}
  }
  return undefined
}

/** Which tool this run uses, and its version, for the report. */
export function pickTool(requested = 'auto') {
  const wrk = requested === 'autocannon' ? undefined : onPath('wrk')
  if (wrk) {
    const out = spawnSync(wrk, ['--version'], { encoding: 'utf8' })
    return { name: 'wrk', path: wrk, version: /wrk (\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1] ?? '?' }
  }
  if (requested === 'wrk') throw new Error('wrk is not on PATH (apt-get install wrk)')
  const require = createRequire(import.meta.url)
  let version
  try {
    version = require('autocannon/package.json').version
  } catch {
    throw new Error('neither wrk (apt-get install wrk) nor autocannon (npm install) is installed')
  }
  return { name: 'autocannon', path: dirname(require.resolve('autocannon/package.json')), version }
}

/**
 * Starts `seconds` of load on `url`; `close` sends Connection: close on every
 * request. `gapMs: [lo, hi]` paces it (l): each connection waits a random
 * lo..hi ms before its next request (wrk's delay(), lib/wrk-report.lua);
 * autocannon can only pace at a fixed rate, 1000 / ((lo + hi) / 2) requests
 * a second per connection. Returns { result: Promise, stop() }; stop() ends
 * the load early and the result still comes.
 */
export function startLoad(tool, { url, seconds, connections, threads, close = false, gapMs }) {
  const env = gapMs ? { ...process.env, BENCH_WRK_GAP_MS: `${gapMs[0]},${gapMs[1]}` } : process.env
  const connectionRate = gapMs ? 2000 / (gapMs[0] + gapMs[1]) : undefined
  const child = tool.name === 'wrk'
    ? spawn(tool.path, [
        '-t', String(threads), '-c', String(connections), '-d', `${Math.round(seconds)}s`,
        '-s', here('./wrk-report.lua'), ...(close ? ['-H', 'Connection: close'] : []), url,
      ], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [here('./autocannon-load.mjs'), JSON.stringify({ url, seconds, connections, close, connectionRate })], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  const result = new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => {
      const json = (tool.name === 'wrk' ? stderr : stdout).split('\n').filter((l) => l.startsWith('{')).pop()
      if (!json) return reject(new Error(`${tool.name} exited with ${signal ?? code} and no result:\n${stdout}\n${stderr}`))
      resolve(tool.name === 'wrk' ? fromWrk(JSON.parse(json)) : withTotals(JSON.parse(json)))
    })
  })
  return { result, stop: () => child.kill('SIGINT') }
}

function fromWrk(w) {
  const seconds = w.duration_us / 1e6
  return withTotals({
    requests: w.requests,
    seconds,
    p50Ms: w.p50_us / 1000,
    p99Ms: w.p99_us / 1000,
    errors: { connect: w.connect, read: w.read, write: w.write, timeout: w.timeout, non2xx: w.status },
  })
}

function withTotals(r) {
  return { ...r, rps: r.requests / r.seconds, failed: Object.values(r.errors).reduce((a, b) => a + b, 0) }
}
