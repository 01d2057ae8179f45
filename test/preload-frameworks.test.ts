// Unmodified apps, one per framework or server kind, run with
// `node --import handover/register` (or --require for CommonJS): three
// SIGHUP upgrades each under fresh-connection and keep-alive load, with no
// failed request, then a graceful SIGTERM.
import { readFileSync, rmSync } from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, get, loadLoop, requestLoop, type RequestLoop } from './helpers/clients.mjs'
import { http2Loop, nodeKeepAliveLoop } from './helpers/http-clients.js'
import { makeCertificate, killPreloadApps, PreloadApp } from './helpers/preload-app.js'

const tlsDir = makeCertificate()
const ca = readFileSync(join(tlsDir, 'cert.pem'))
afterEach(killPreloadApps)
afterAll(() => rmSync(tlsDir, { recursive: true, force: true }))

const UPGRADES = 3

/** One request on a fresh TLS connection. */
function httpsOnce(port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', agent: false, ca, servername: 'localhost', timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => (res.statusCode === 200 ? resolve(Number(body)) : reject(new Error(`status ${res.statusCode}`))))
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })))
    req.on('error', reject)
  })
}

/** A raw TCP client: connect, read the pid, see the server close. */
function netOnce(port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    let text = ''
    socket.setEncoding('utf8')
    socket.setTimeout(10_000, () => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })))
    socket.on('data', (c: string) => (text += c))
    socket.on('end', () => (/^\d+$/.test(text) ? resolve(Number(text)) : reject(new Error(`bad answer ${JSON.stringify(text)}`))))
    socket.on('error', reject)
  })
}

/** Resolves if something accepts a TCP connection on the port. */
function connectTo(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      socket.destroy()
      resolve()
    })
    socket.on('error', reject)
  })
}

/** The first answer of a loop, or its first error. */
async function firstOf(loop: RequestLoop & { retries?: number }): Promise<number> {
  while (loop.ok === 0 && Object.keys(loop.errors).length === 0) await new Promise((r) => setTimeout(r, 10))
  await loop.stop()
  const code = Object.keys(loop.errors)[0]
  if (code) throw Object.assign(new Error(code), { code })
  return [...loop.byPid.keys()][0]
}

interface Case {
  name: string
  script: string
  env?: NodeJS.ProcessEnv
  loads: (port: number) => RequestLoop[]
  answer: (port: number) => Promise<number>
}

const httpLoads = (port: number): RequestLoop[] => [loadLoop({ port }, 3), nodeKeepAliveLoop(port, 3)]
const httpAnswer = async (port: number): Promise<number> => Number((await get({ port })).body)

const cases: Case[] = [
  { name: 'express 5', script: 'express.mjs', loads: httpLoads, answer: httpAnswer },
  { name: 'fastify 5, listen({ port, host })', script: 'fastify.mjs', loads: httpLoads, answer: httpAnswer },
  { name: 'fastify 5, host "localhost" (one server per address)', script: 'fastify.mjs', env: { HOST: 'localhost' }, loads: httpLoads, answer: httpAnswer },
  { name: 'koa 3', script: 'koa.mjs', loads: httpLoads, answer: httpAnswer },
  { name: '@hono/node-server serve()', script: 'hono.mjs', loads: httpLoads, answer: httpAnswer },
  { name: 'node:http, CommonJS with --require', script: 'http.cjs', loads: httpLoads, answer: httpAnswer },
  {
    name: 'node:https (certificate made for the test)', script: 'https.mjs', env: { TLS_DIR: tlsDir },
    loads: (port) => [requestLoop(3, () => httpsOnce(port)), nodeKeepAliveLoop(port, 3, true, ca)],
    answer: httpsOnce,
  },
  {
    name: 'node:http2 (secure, sessions kept open until GOAWAY)', script: 'http2.mjs', env: { TLS_DIR: tlsDir },
    loads: (port) => [http2Loop(port, 3, ca)],
    answer: (port) => firstOf(http2Loop(port, 1, ca)),
  },
  {
    name: 'node:net', script: 'net.mjs', loads: (port) => [requestLoop(4, () => netOnce(port))],
    answer: netOnce,
  },
]

describe('unmodified apps upgrade on SIGHUP with no failed request', () => {
  it.each(cases)('$name', async ({ script, env, loads, answer }) => {
    const port = await freePort()
    const app = await PreloadApp.start(script, { PORT: String(port), ...env })
    const pids = [app.current]
    expect(await answer(port)).toBe(app.current)

    const running = loads(port)
    await new Promise((r) => setTimeout(r, 200))
    for (let i = 0; i < UPGRADES; i++) {
      const { newPid } = await app.upgrade()
      pids.push(newPid)
      await new Promise((r) => setTimeout(r, 200))
    }
    await Promise.all(running.map((l) => l.stop()))

    for (const loop of running) {
      expect(loop.errors).toEqual({})
      expect(loop.ok).toBeGreaterThan(0)
    }
    expect(await answer(port)).toBe(app.current)
    // Every generation served some of the load; each old one has exited (app.upgrade() waited for it).
    const served = new Set(running.flatMap((l) => [...l.byPid.keys()]))
    expect(served.has(pids[pids.length - 1])).toBe(true)
    expect(served.size).toBeGreaterThanOrEqual(2)

    await app.stop('SIGTERM')
    await expect(connectTo(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })
})

describe('an in-flight request across an upgrade and a stop', () => {
  it('express: a slow request in flight finishes with 200 on the old pid; SIGTERM finishes one too', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('express.mjs', { PORT: String(port), SLOW_MS: '800' })
    const first = app.current
    const slow = get({ port }, '/slow')
    await new Promise((r) => setTimeout(r, 100))
    const { newPid } = await app.upgrade()
    expect(await slow).toEqual({ status: 200, body: String(first) })

    const slowAtStop = get({ port }, '/slow')
    await new Promise((r) => setTimeout(r, 100))
    const exited = new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        try {
          process.kill(newPid, 0)
        } catch {
          clearInterval(timer)
          resolve()
        }
      }, 20)
    })
    process.kill(newPid, 'SIGTERM')
    expect(await slowAtStop).toEqual({ status: 200, body: String(newPid) })
    await exited
    await expect(get({ port })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })
})
