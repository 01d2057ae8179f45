// drain({ leaveWindow }) on servers in this process, with real sockets and
// clients: what each kind of long-lived connection is asked to do, what is
// left alone, bad input; and the preload's HANDOVER_LEAVE_WINDOW setting.
// (onDrain() hooks are process-wide and announced once, so the hooks' side
// is in test/long-lived-hooks.test.ts, a process of its own.)
import { spawnSync } from 'node:child_process'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { drain, HandoverError } from '../dist/index.js'
import { freePort } from './helpers/clients.mjs'
import { sleep } from './helpers/processes.mjs'
import { APPS, killPreloadApps, PreloadApp, ROOT } from './helpers/preload-app.js'
import { EXAMPLES } from './helpers/long-lived.js'

const open: Array<{ close?: () => void; destroy?: () => void }> = []
afterEach(() => {
  for (const thing of open.splice(0)) {
    if (thing instanceof net.Server) thing.close()
    else (thing.destroy ?? thing.close)?.call(thing)
  }
})
afterEach(killPreloadApps)

function listening<T extends net.Server>(server: T): Promise<T & { port: number }> {
  open.push(server)
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(Object.assign(server, { port: (server.address() as net.AddressInfo).port }))))
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket))
    // Flowing, so that 'end' comes without a reader.
    socket.resume()
    open.push(socket)
    socket.on('error', reject)
  })
}

function webSocket(port: number): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    open.push(ws as never)
    const closed = new Promise<{ code: number; reason: string }>((done) => ws.on('close', (code, reason) => done({ code, reason: String(reason) })))
    ws.on('open', () => resolve({ ws, closed }))
    ws.on('error', reject)
  })
}

describe('drain({ leaveWindow }) rejects bad values', () => {
  it.each([[-1], [Number.NaN], ['1000'], [2 ** 31], [null]])('%j', async (leaveWindow) => {
    const server = await listening(http.createServer())
    const err = await drain(server, { leaveWindow } as never).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(HandoverError)
    expect(err).toMatchObject({ code: 'ERR_INVALID_OPTION' })
    expect((err as Error).message).toMatch(/leaveWindow/)
    expect(server.listening).toBe(true)
  })
})

describe('drain({ leaveWindow }) asks long-lived connections to leave', () => {
  it('ws: each WebSocket gets 1012 from ws itself, within the window', async () => {
    const server = await listening(http.createServer((_req, res) => res.end('ok')))
    const wss = new WebSocketServer({ server })
    wss.on('connection', (ws) => ws.send('hi'))
    const clients = await Promise.all(Array.from({ length: 10 }, () => webSocket(server.port)))
    const result = await drain(server, { leaveWindow: 500, timeout: 5_000 })
    const closes = await Promise.all(clients.map((c) => c.closed))
    expect(closes.map((c) => c.code)).toEqual(Array(10).fill(1012))
    expect(closes[0].reason).toBe('service restart')
    // None was left to the deadline.
    expect(result).toEqual({ graceful: 10, forced: 0, askedToLeave: 10 })
  })

  it('without leaveWindow nothing changes: the WebSocket stays until the timeout and no askedToLeave is reported', async () => {
    const server = await listening(http.createServer())
    new WebSocketServer({ server })
    const client = await webSocket(server.port)
    const result = await drain(server, { timeout: 300 })
    expect(result).toEqual({ graceful: 0, forced: 1 })
    expect((await client.closed).code).toBe(1006)
  })

  it('a leaveWindow longer than 3/4 of the timeout is clamped: the connection still leaves before the deadline', async () => {
    const server = await listening(http.createServer())
    new WebSocketServer({ server })
    const clients = await Promise.all(Array.from({ length: 5 }, () => webSocket(server.port)))
    const result = await drain(server, { leaveWindow: 60_000, timeout: 1_000 })
    expect(result).toEqual({ graceful: 5, forced: 0, askedToLeave: 5 })
    for (const c of clients) expect((await c.closed).code).toBe(1012)
  })

  it('an upgraded connection of a protocol handover does not know: a FIN once it has been quiet, never in the middle of its traffic', async () => {
    const server = await listening(http.createServer())
    server.on('upgrade', (_req, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n')
      socket.on('data', (d) => socket.write(d))
    })
    const quiet = await connect(server.port)
    const chatty = await connect(server.port)
    for (const s of [quiet, chatty]) s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n')
    await sleep(100)
    // The chatty one sends every 20 ms: never quiet for the 200 ms grace, so it is ended at the window's end (1 s).
    const timer = setInterval(() => chatty.writable && chatty.write('x'), 20)
    const ended = (s: net.Socket): Promise<number> => new Promise((resolve) => s.once('end', () => resolve(Date.now())))
    const [quietEnd, chattyEnd] = [ended(quiet), ended(chatty)]
    const started = Date.now()
    const drained = drain(server, { leaveWindow: 1_000, idleGrace: 200, timeout: 5_000 })
    const [q, c] = await Promise.all([quietEnd, chattyEnd])
    clearInterval(timer)
    expect(c - started).toBeGreaterThanOrEqual(900)
    expect(q).toBeLessThanOrEqual(c)
    quiet.end()
    chatty.end()
    expect(await drained).toEqual({ graceful: 2, forced: 0, askedToLeave: 2 })
  })

  it('a plain net server: every connection ends with a FIN; a write by the app after it does not crash the process', async () => {
    const writers: net.Socket[] = []
    const server = await listening(net.createServer((socket) => writers.push(socket)))
    const clients = await Promise.all(Array.from({ length: 3 }, () => connect(server.port)))
    // Accepted by the server, not just queued: closing a listener resets what is still in its queue.
    while (writers.length < 3) await sleep(5)
    const ends = clients.map((c) => new Promise<void>((resolve) => c.once('end', () => resolve())))
    const drained = drain(server, { leaveWindow: 300, idleGrace: 50, timeout: 5_000 })
    await Promise.all(ends)
    // The app did not notice and writes on: ERR_STREAM_WRITE_AFTER_END would be an unhandled 'error' (no listener of the app's own).
    for (const w of writers) w.write('late')
    await sleep(50)
    for (const c of clients) c.end()
    expect(await drained).toEqual({ graceful: 3, forced: 0, askedToLeave: 3 })
  })

  it('HTTP/1 server-sent events: a retry hint, then the terminating chunk, and the connection closes; the app writing on does not crash', async () => {
    const responses: http.ServerResponse[] = []
    const server = await listening(http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: 1\n\n')
      responses.push(res)
    }))
    const raw = await connect(server.port)
    raw.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n')
    let text = ''
    raw.on('data', (d) => (text += d))
    const closed = new Promise<void>((resolve) => raw.on('close', () => resolve()))
    await sleep(50)
    const drained = drain(server, { leaveWindow: 200, timeout: 5_000 })
    await closed
    // Written straight after the end: Node's write-after-end 'error' must not reach the process.
    for (const res of responses) res.write('data: late\n\n')
    await sleep(50)
    expect(text).toMatch(/keep-alive/i)
    expect(text).toMatch(/data: 1\n\n\r\n[0-9a-f]+\r\n\nretry: 1000\n\n\r\n0\r\n\r\n$/)
    expect(await drained).toEqual({ graceful: 1, forced: 0, askedToLeave: 1 })
  })

  it('HTTP/2 server-sent events, stream API and compatibility API: retry hint and a clean END_STREAM; GOAWAY ends the session', async () => {
    for (const api of ['stream', 'compat'] as const) {
      const server = await listening(http2.createServer())
      const writers: Array<() => void> = []
      if (api === 'stream') {
        server.on('stream', (stream) => {
          stream.respond({ ':status': 200, 'content-type': 'text/event-stream' })
          stream.write('data: 1\n\n')
          writers.push(() => stream.write('data: late\n\n'))
        })
      } else {
        server.on('request', (_req, res) => {
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.write('data: 1\n\n')
          writers.push(() => res.write('data: late\n\n'))
        })
      }
      const session = http2.connect(`http://127.0.0.1:${server.port}`)
      open.push(session)
      const req = session.request({ ':path': '/events' })
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (d: string) => (body += d))
      const ended = new Promise<void>((resolve) => req.on('end', () => resolve()))
      const closed = new Promise<number>((resolve) => req.on('close', () => resolve(req.rstCode ?? -1)))
      await new Promise((r) => req.once('response', r))
      const drained = drain(server, { leaveWindow: 200, timeout: 5_000 })
      await ended
      for (const write of writers) write()
      expect(await closed).toBe(http2.constants.NGHTTP2_NO_ERROR)
      expect(body).toBe('data: 1\n\n\nretry: 1000\n\n')
      session.close()
      expect(await drained).toEqual({ graceful: 1, forced: 0, askedToLeave: 1 })
    }
  })

  it('a short request in flight is not touched: it finishes, and its connection closes between requests as before', async () => {
    const server = await listening(http.createServer((_req, res) => setTimeout(() => res.end('slow'), 400)))
    const raw = await connect(server.port)
    let text = ''
    raw.on('data', (d) => (text += d))
    raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await sleep(50)
    const result = await drain(server, { leaveWindow: 100, idleGrace: 100, timeout: 5_000 })
    expect(text).toMatch(/\r\n\r\nslow$/)
    expect(result).toEqual({ graceful: 1, forced: 0, askedToLeave: 0 })
  })
})

describe('HANDOVER_LEAVE_WINDOW under the preload', () => {
  it('a bad value stops the start with a typed error', () => {
    const result = spawnSync(process.execPath, ['--import', 'handover/register', join(APPS, EXAMPLES, 'ws.mjs')], {
      cwd: ROOT, env: { ...process.env, HANDOVER_LEAVE_WINDOW: 'soon', PORT: '1' }, timeout: 10_000, encoding: 'utf8',
    })
    expect(result.status).toBe(1)
    expect(result.stderr).toMatch(/ERR_INVALID_OPTION/)
    expect(result.stderr).toMatch(/HANDOVER_LEAVE_WINDOW/)
  })

  it('longer than 3/4 of the drain timeout: clamped, and said once on stderr', async () => {
    const port = await freePort()
    const app = await PreloadApp.start(`${EXAMPLES}ws.mjs`, { PORT: String(port), HANDOVER_LEAVE_WINDOW: '10000', HANDOVER_DRAIN_TIMEOUT: '4000' })
    await app.waitForLine(/^handover: HANDOVER_LEAVE_WINDOW=10000 is clamped to 3000 ms, 3\/4 of the drain timeout \(4000 ms\)/)
    const client = await webSocket(port)
    await app.upgrade()
    expect((await client.closed).code).toBe(1012)
  })

  it('off: WebSockets stay until the drain timeout, as before', async () => {
    const port = await freePort()
    const app = await PreloadApp.start(`${EXAMPLES}ws.mjs`, { PORT: String(port), HANDOVER_LEAVE_WINDOW: 'off', HANDOVER_DRAIN_TIMEOUT: '1000' })
    const client = await webSocket(port)
    await app.upgrade()
    expect((await client.closed).code).toBe(1006)
  })
})
