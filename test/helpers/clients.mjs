// @ts-check
// Shared by the vitest suite and the Windows lane (plain JavaScript: the
// lane runs it under `wine node.exe`, and under Linux node against a
// Wine-hosted server). Only Node's own modules.
import dgram from 'node:dgram'
import http from 'node:http'
import net from 'node:net'

/** @typedef {{ port?: number, host?: string, socketPath?: string }} Target */

/**
 * @typedef {object} RequestLoop
 * @property {number} ok answers so far
 * @property {Record<string, number>} errors failures so far, by error code (or message)
 * @property {Map<number, number>} byPid answers so far, by the pid that answered
 * @property {() => Record<string, number>} mark a copy of `errors` now, for {@link since}
 * @property {() => Promise<void>} stop ends the loops and waits for them
 */

/**
 * One request on a fresh connection (agent: false). Rejects on any failure.
 * @param {Target} target
 * @returns {Promise<{ status: number, body: string }>}
 */
export function get(target, path = '/', timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...target, host: target.host ?? '127.0.0.1', path, agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (/** @type {string} */ c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })))
    req.on('error', reject)
  })
}

/**
 * The pid that answered `/`, as a number.
 * @param {Target} target
 * @returns {Promise<number>}
 */
export async function pidAt(target) {
  const { status, body } = await get(target)
  if (status !== 200) throw new Error(`status ${status}`)
  return Number(body)
}

/**
 * Sends one datagram and waits for the `pid:payload` echo.
 * @param {number} port
 * @returns {Promise<number>}
 */
export function udpPid(port, host = '127.0.0.1', timeoutMs = 2_000) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4')
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error('no udp answer'))
    }, timeoutMs)
    socket.on('message', (msg) => {
      clearTimeout(timer)
      socket.close()
      resolve(Number(String(msg).split(':')[0]))
    })
    socket.send('ping', port, host)
  })
}

/**
 * A port that was free a moment ago (port 0 is never inherited, so fixtures
 * need a fixed one). Below Linux's ephemeral range, so no client connection
 * takes it before the fixture binds it; chosen afresh each time, since Wine's
 * bind refuses a port that still has TIME_WAIT entries.
 * @returns {Promise<number>}
 */
export async function freePort(host = '127.0.0.1') {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 20_000)
    if (await probeBind(port, host).then(() => true, () => false)) return port
  }
}

/**
 * Binds and closes a probe server on the port: resolves if nothing holds it,
 * rejects (EADDRINUSE) if something does.
 * @param {number} port
 * @returns {Promise<void>}
 */
export function probeBind(port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(port, host, () => probe.close(() => resolve()))
  })
}

/**
 * `concurrency` loops of fresh-connection requests, counted by answering pid and by error code.
 * @param {Target} target
 * @param {number} concurrency
 * @returns {RequestLoop}
 */
export function loadLoop(target, concurrency) {
  return requestLoop(concurrency, async () => {
    const { status, body } = await get(target, '/', 10_000)
    if (status !== 200) throw new Error(`status ${status}`)
    return Number(body)
  })
}

/**
 * Runs `concurrency` loops of `request` until stopped, and counts answers by
 * pid and failures by error code. `request` resolves with the answering pid.
 * @param {number} concurrency
 * @param {(worker: number) => Promise<number>} request
 * @param {() => Promise<void> | void} [onStop]
 * @returns {RequestLoop}
 */
export function requestLoop(concurrency, request, onStop) {
  let running = true
  let ok = 0
  /** @type {Record<string, number>} */
  const errors = {}
  /** @type {Map<number, number>} */
  const byPid = new Map()
  const loops = Array.from({ length: concurrency }, async (_, worker) => {
    while (running) {
      try {
        const pid = await request(worker)
        ok++
        byPid.set(pid, (byPid.get(pid) ?? 0) + 1)
      } catch (err) {
        const { code, message } = /** @type {NodeJS.ErrnoException} */ (err)
        const key = code ?? message
        errors[key] = (errors[key] ?? 0) + 1
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
      await onStop?.()
    },
  }
}

/**
 * Failures by code between two marks of one loop.
 * @param {Record<string, number>} before
 * @param {Record<string, number>} after
 * @returns {Record<string, number>}
 */
export function since(before, after) {
  /** @type {Record<string, number>} */
  const out = {}
  for (const [code, n] of Object.entries(after)) if (n - (before[code] ?? 0) > 0) out[code] = n - (before[code] ?? 0)
  return out
}
