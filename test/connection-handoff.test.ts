// Idle keep-alive connections moving between two real processes joined by a
// socketPair() (test/fixtures/handoff-peer.mjs): the client keeps its
// connection (same local port) and the next answer comes from the new pid.
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as esbuild from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { settledFdCount } from './helpers/fds.js'
import { CA } from './helpers/http-clients.js'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const FIXTURE = join(ROOT, 'test/fixtures/handoff-peer.mjs')
const WAIT_MS = 30_000

interface Message {
  event: string
  [field: string]: unknown
}

interface Handed {
  detached: number[]
  refused: Array<{ port: number; kind: string }>
}

interface Answer {
  pid: number
  /** The server's view of the client's port. */
  remotePort: number
  /** The client's own port. */
  localPort: number
  reused: boolean
}

/** The "old" process, driven over fork()'s IPC channel; it relays to "new". */
class Peers {
  readonly messages: Message[] = []
  private wake?: () => void
  constructor(readonly child: ChildProcess) {
    child.on('message', (m) => {
      this.messages.push(m as Message)
      this.wake?.()
    })
  }

  send(command: Record<string, unknown>): void {
    this.child.send(command)
  }

  /** The first message of that event not taken yet. */
  async next(event: string): Promise<Message> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const i = this.messages.findIndex((m) => m.event === event)
      if (i >= 0) return this.messages.splice(i, 1)[0]
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`no ${event} from the old process`)
      await new Promise<void>((resolve) => {
        this.wake = resolve
        setTimeout(resolve, 200)
      })
    }
  }

  async ask(command: Record<string, unknown>, event: string): Promise<Message> {
    this.send(command)
    return this.next(event)
  }
}

/** A GET to a port on 127.0.0.1, or to a unix socket's path. */
function request(agent: http.Agent | false, to: number | string, path = '/', secure = false) {
  let localPort = 0
  const target = typeof to === 'string' ? { socketPath: to } : { host: '127.0.0.1', port: to }
  const req = (secure ? https : http).get({ ...target, path, agent, ...(secure && { ca: CA, servername: 'localhost' }) })
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('error', reject)
    req.on('socket', (socket) => socket.once('connect', () => (localPort = socket.localPort ?? 0)))
    req.on('response', (res) => {
      localPort = res.socket.localPort ?? localPort
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('error', reject)
      res.on('end', () => resolve({ ...(JSON.parse(body) as { pid: number; remotePort: number }), localPort, reused: req.reusedSocket }))
    })
  })
  return { req, answer }
}

const get = (agent: http.Agent | false, to: number | string, path = '/', secure = false): Promise<Answer> => request(agent, to, path, secure).answer

/** A reader of raw HTTP/1.1 responses off a net.Socket: `next(n)` resolves with the next n bodies, as JSON. */
function rawResponses(socket: net.Socket) {
  let text = ''
  const bodies: Array<{ pid: number; remotePort: number }> = []
  let wake = (): void => {}
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    text += chunk
    for (;;) {
      const head = text.indexOf('\r\n\r\n')
      const length = /content-length: (\d+)/i.exec(text.slice(0, head))
      if (head < 0 || !length || text.length < head + 4 + Number(length[1])) break
      bodies.push(JSON.parse(text.slice(head + 4, head + 4 + Number(length[1]))))
      text = text.slice(head + 4 + Number(length[1]))
    }
    wake()
  })
  return {
    next: (n: number) =>
      new Promise<Array<{ pid: number; remotePort: number }>>((resolve, reject) => {
        socket.once('error', reject)
        wake = () => bodies.length >= n && resolve(bodies.splice(0, n))
        wake()
      }),
  }
}

describe('connection hand-off between two processes', () => {
  let dir: string
  let peers: Peers
  let oldPid: number
  let newPid: number
  let port: number
  let strictPort: number
  let httpsPort: number
  let baseline: number
  const agents: http.Agent[] = []
  const keepAlive = (secure = false): http.Agent => {
    const agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    return agent
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'handover-handoff-'))
    const bundle = join(dir, 'handoff-lib.mjs')
    // The addon loader finds the package root from import.meta.url; pinned to
    // src/backend/, it loads this checkout's build/Release addon.
    await esbuild.build({
      entryPoints: [join(ROOT, 'test/fixtures/handoff-lib.ts')],
      outfile: bundle,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      logLevel: 'warning',
      define: { 'import.meta.url': JSON.stringify(pathToFileURL(join(ROOT, 'src/backend/addon.ts')).href) },
    })
    const child = fork(FIXTURE, [bundle, 'old', join(ROOT, 'test/fixtures/tls'), dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
    peers = new Peers(child)
    const ready = await peers.next('ready')
    oldPid = ready.pid as number
    newPid = ready.newPid as number
    port = ready.port as number
    httpsPort = ready.httpsPort as number
    strictPort = ready.strictPort as number
    baseline = await settledFdCount(oldPid)
  })

  afterAll(async () => {
    for (const agent of agents) agent.destroy()
    for (const pid of [oldPid, newPid]) {
      if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL')
    }
    await waitUntil(() => ![oldPid, newPid].some((pid) => pid && isAlive(pid)), 10_000, 'the peers to exit')
    rmSync(dir, { recursive: true, force: true })
  })

  it('answers the next request on the same connection from the new process', async () => {
    const agent = keepAlive()
    const first = await get(agent, port)
    expect(first.pid).toBe(oldPid)
    const handed = (await peers.ask({ cmd: 'handoff' }, 'handed')) as unknown as Handed
    expect(handed.detached).toEqual([first.localPort])
    const second = await get(agent, port)
    expect(second).toEqual({ pid: newPid, remotePort: first.localPort, localPort: first.localPort, reused: true })
    // And the one after: keep-alive goes on in the new process.
    expect(await get(agent, port)).toMatchObject({ pid: newPid, localPort: first.localPort, reused: true })
  })

  it('moves a connection of a unix socket server too', async () => {
    const agent = keepAlive()
    const first = await get(agent, join(dir, 'old.sock'))
    expect(first).toMatchObject({ pid: oldPid, reused: false })
    const handed = (await peers.ask({ cmd: 'handoff' }, 'handed')) as unknown as Handed
    // A unix socket has no port to name it by: one connection, no refusal.
    expect(handed.detached).toHaveLength(1)
    expect(handed.refused).toEqual([])
    // The client still talks to old.sock's connection; new.sock is only where the new process listens.
    expect(await get(agent, join(dir, 'old.sock'))).toMatchObject({ pid: newPid, reused: true })
  })

  it('hands over 200 connections at once', async () => {
    const clients = Array.from({ length: 200 }, () => keepAlive())
    const firsts = await Promise.all(clients.map((agent) => get(agent, port)))
    expect(new Set(firsts.map((a) => a.pid))).toEqual(new Set([oldPid]))
    const handed = (await peers.ask({ cmd: 'handoff' }, 'handed')) as unknown as Handed
    expect(handed.refused).toEqual([])
    expect(new Set(handed.detached)).toEqual(new Set(firsts.map((a) => a.localPort)))
    const seconds = await Promise.all(clients.map((agent) => get(agent, port)))
    seconds.forEach((answer, i) => expect(answer).toEqual({ pid: newPid, remotePort: firsts[i].localPort, localPort: firsts[i].localPort, reused: true }))
    const status = await peers.ask({ cmd: 'new-status' }, 'new-status')
    // getConnections() and drain()'s tracking both count adopted connections.
    expect(status).toMatchObject({ connections: 201, tracked: 201 })
  })

  it('gives the new process a request already waiting in the kernel at the hand-off', async () => {
    const agent = keepAlive()
    const first = await get(agent, port)
    expect(first.pid).toBe(oldPid)
    const marker = join(dir, 'sent')
    // The old process blocks its loop until the request is in its socket's
    // receive buffer, then detaches in that same callback: no poll phase
    // runs in between, so it never reads it. The new process waits 300 ms
    // before adopting: an old process still reading would have answered by then.
    await peers.ask({ cmd: 'block', marker, wait: 300 }, 'blocking')
    const { req, answer } = request(agent, port)
    await new Promise((resolve) => req.on('finish', resolve))
    writeFileSync(marker, '')
    expect((await peers.next('received')).port).toBe(first.localPort)
    const handed = (await peers.next('handed')) as unknown as Handed
    expect(handed.detached).toEqual([first.localPort])
    expect(await answer).toEqual({ pid: newPid, remotePort: first.localPort, localPort: first.localPort, reused: true })
  })

  it('keeps a connection with a request in progress, or half a request, on the old process', async () => {
    const agent = keepAlive()
    const slow = get(agent, port, '/slow')
    const started = await peers.next('slow-started')
    const raw = net.connect(port, '127.0.0.1')
    await new Promise((resolve) => raw.once('connect', resolve))
    raw.write('GET /partial HTTP/1.1\r\nHost: localhost\r\n')
    await waitUntil(
      async () => {
        const status = await peers.ask({ cmd: 'status' }, 'status')
        return (status.sockets as Array<{ port: number; bytesRead: number }>).some((s) => s.port === raw.localPort && s.bytesRead > 0)
      },
      WAIT_MS,
      'the old process to read half a request',
    )
    const handed = (await peers.ask({ cmd: 'handoff' }, 'handed')) as unknown as Handed
    expect(handed.detached).toEqual([])
    expect(handed.refused).toEqual(expect.arrayContaining([{ port: started.remotePort, kind: 'http' }, { port: raw.localPort, kind: 'http' }]))
    peers.send({ cmd: 'finish-slow' })
    expect(await slow).toMatchObject({ pid: oldPid, localPort: started.remotePort })
    const responses = rawResponses(raw)
    raw.write('\r\n')
    expect(await responses.next(1)).toEqual([{ pid: oldPid, remotePort: raw.localPort }])
    raw.destroy()
    // Idle now: the slow one's connection goes at the next hand-off.
    const again = (await peers.ask({ cmd: 'handoff' }, 'handed')) as unknown as Handed
    expect(again.detached).toEqual([started.remotePort])
    expect(await get(agent, port)).toMatchObject({ pid: newPid, localPort: started.remotePort, reused: true })
  })

  it('moves a connection that has not sent a byte yet, and the old process writes nothing to it', async () => {
    const raw = net.connect(strictPort, '127.0.0.1')
    let seen = ''
    raw.setEncoding('utf8')
    raw.on('data', (chunk: string) => (seen += chunk))
    await new Promise((resolve) => raw.once('connect', resolve))
    await waitUntil(
      async () => ((await peers.ask({ cmd: 'status' }, 'status')).sockets as Array<{ port: number }>).some((s) => s.port === raw.localPort),
      WAIT_MS,
      'the old process to accept',
    )
    // While "new" holds the fd for 1.5 s, the old server's headersTimeout
    // check (every 100 ms, 300 ms) finds this connection: it would answer 408.
    peers.send({ cmd: 'handoff', wait: 1500 })
    expect((await peers.next('received')).port).toBe(raw.localPort)
    expect(((await peers.next('handed')) as unknown as Handed).detached).toEqual([raw.localPort])
    raw.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await waitUntil(() => /\r\n\r\n\{.*\}/.test(seen), WAIT_MS, 'an answer')
    expect(seen).toMatch(/^HTTP\/1\.1 200 /)
    expect(JSON.parse(seen.slice(seen.indexOf('{')))).toEqual({ pid: newPid, remotePort: raw.localPort })
    raw.destroy()
  })

  it('hands over a pipelining connection once it has answered all it read', async () => {
    const raw = net.connect(port, '127.0.0.1')
    await new Promise((resolve) => raw.once('connect', resolve))
    const responses = rawResponses(raw)
    const two = 'GET /a HTTP/1.1\r\nHost: localhost\r\n\r\nGET /b HTTP/1.1\r\nHost: localhost\r\n\r\n'
    raw.write(two)
    const me = { remotePort: raw.localPort }
    expect(await responses.next(2)).toEqual([{ pid: oldPid, ...me }, { pid: oldPid, ...me }])
    const handed = (await peers.ask({ cmd: 'handoff' }, 'handed')) as unknown as Handed
    expect(handed.detached).toEqual([raw.localPort])
    raw.write(two)
    expect(await responses.next(2)).toEqual([{ pid: newPid, ...me }, { pid: newPid, ...me }])
    raw.destroy()
  })

  it('refuses TLS and upgraded (WebSocket) connections, which go on on the old process', async () => {
    const agent = keepAlive(true)
    const first = await get(agent, httpsPort, '/', true)
    expect(first.pid).toBe(oldPid)
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    const wsPort = (ws as unknown as { _socket: net.Socket })._socket.localPort
    const handed = (await peers.ask({ cmd: 'handoff' }, 'handed')) as unknown as Handed
    expect(handed.detached).toEqual([])
    expect(handed.refused).toEqual(
      expect.arrayContaining([
        { port: first.localPort, kind: 'tls' },
        { port: first.localPort, kind: 'tcp-under-tls' },
        { port: wsPort, kind: 'http' },
      ]),
    )
    expect(await get(agent, httpsPort, '/', true)).toMatchObject({ pid: oldPid, localPort: first.localPort, reused: true })
    const echo = new Promise((resolve) => ws.once('message', (data) => resolve(String(data))))
    ws.send('hi')
    expect(await echo).toBe(`${oldPid} hi`)
    ws.close()
    await new Promise((resolve) => ws.once('close', resolve))
    agent.destroy()
  })

  it('leaks no fd: not into children, and the old process back at its baseline', async () => {
    const children = await peers.ask({ cmd: 'children' }, 'children')
    // A fresh /bin/sh of either process: no channel, no connection past its
    // stdio (its stdout is spawnSync's socketpair; other fds are whatever
    // this test runner inherited, never a socket).
    for (const listing of [children.old, children.new] as string[]) {
      const fds = [...listing.matchAll(/ (\d+) -> (.*)$/gm)].map(([, fd, target]) => ({ fd: Number(fd), target }))
      expect(fds.map((f) => f.fd)).toEqual(expect.arrayContaining([0, 1, 2]))
      expect(fds.filter((f) => f.fd > 2 && f.target.startsWith('socket:'))).toEqual([])
    }
    await waitUntil(async () => ((await peers.ask({ cmd: 'status' }, 'status')).sockets as unknown[]).length === 0, WAIT_MS, 'the old process to hold no connection')
    expect(await settledFdCount(oldPid)).toBe(baseline)
  })

  it('counts adopted connections in drain()', async () => {
    const status = await peers.ask({ cmd: 'new-status' }, 'new-status')
    const open = status.connections as number
    expect(open).toBeGreaterThanOrEqual(200)
    const drained = await peers.ask({ cmd: 'drain-new' }, 'drained')
    expect(drained.result).toEqual({ graceful: open, forced: 0 })
  })

  it('keeps a connection, and the request sent meanwhile, when the receiver dies before adopting it', async () => {
    const agent = keepAlive()
    const first = await get(agent, port)
    expect(first.pid).toBe(oldPid)
    // "new" holds the fd unadopted for a minute; the old process keeps its
    // handle until "new" says it adopted it.
    peers.send({ cmd: 'handoff', wait: 60_000 })
    expect((await peers.next('received')).port).toBe(first.localPort)
    const { req, answer } = request(agent, port)
    await new Promise((resolve) => req.on('finish', resolve))
    process.kill(newPid, 'SIGKILL')
    expect((await peers.next('new-gone')).reattached).toEqual([first.localPort])
    expect(await answer).toEqual({ pid: oldPid, remotePort: first.localPort, localPort: first.localPort, reused: true })
    agent.destroy()
  })

  it("runs the old server's close() callback: no released connection is still counted", async () => {
    await waitUntil(async () => ((await peers.ask({ cmd: 'status' }, 'status')).sockets as unknown[]).length === 0, WAIT_MS, 'the old process to hold no connection')
    expect(await peers.ask({ cmd: 'close' }, 'closed')).toMatchObject({ connections: 0 })
  })
})
