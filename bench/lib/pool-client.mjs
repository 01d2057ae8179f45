// k's client, run as its own process: a reverse proxy's pool of keep-alive
// connections to one backend. Each of `connections` loops has its own
// http.Agent (keepAlive, maxSockets 1: one socket per loop) and sends its
// next GET after an idle gap drawn from [gapMs[0], gapMs[1]], so that the
// gaps straddle the drain's idle grace. No retries: a request that fails
// counts as failed, by kind. It stops after `seconds`, or at SIGINT: each
// loop finishes the request it has in flight. Prints one JSON line:
//   { requests, ok, failed, errors: {kind: n}, errorTimes: [[ms, kind]],
//     newConnections: [ms...] }   (ms: wall clock, as lib/handler.mjs's now())
import http from 'node:http'
import { performance } from 'node:perf_hooks'

const { url, connections, gapMs, seconds, timeoutMs = 10_000 } = JSON.parse(process.argv[2])
const [lo, hi] = gapMs
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const out = { requests: 0, ok: 0, failed: 0, errors: {}, errorTimes: [], newConnections: [] }
const seen = new WeakSet()
let stopping = false

function fail(kind) {
  out.failed++
  out.errors[kind] = (out.errors[kind] ?? 0) + 1
  out.errorTimes.push([Math.round(now()), kind])
}

/** Node's names: a connection closed before any response is 'socket hang up' (code ECONNRESET). */
const kindOf = (err) => (err.message === 'socket hang up' ? 'socket hang up' : err.code ?? err.message)

function request(agent) {
  return new Promise((resolve) => {
    let done = false
    const finish = (kind) => {
      if (done) return
      done = true
      if (kind) fail(kind)
      else out.ok++
      resolve()
    }
    out.requests++
    const req = http.get(url, { agent }, (res) => {
      res.on('error', (err) => finish(kindOf(err)))
      res.on('aborted', () => finish('aborted'))
      res.on('end', () => finish(res.statusCode >= 200 && res.statusCode < 300 ? undefined : `HTTP ${res.statusCode}`))
      res.resume()
    })
    req.on('socket', (socket) => {
      if (seen.has(socket)) return
      seen.add(socket)
      out.newConnections.push(Math.round(now()))
    })
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('no response in time'), { code: 'timeout' })))
    req.on('error', (err) => finish(kindOf(err)))
  })
}

async function loop() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  // A pool's connections are not in step with each other.
  await sleep(Math.random() * hi)
  while (!stopping) {
    await request(agent)
    if (stopping) break
    await sleep(lo + Math.random() * (hi - lo))
  }
  agent.destroy()
}

const stop = () => (stopping = true)
process.once('SIGINT', stop)
setTimeout(stop, seconds * 1000).unref()
await Promise.all(Array.from({ length: connections }, loop))
process.stdout.write(`${JSON.stringify(out)}\n`)
