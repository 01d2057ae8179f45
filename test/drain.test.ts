import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, get, type RequestLoop } from './helpers/clients.mjs'
import { Fixture, killAllFixtures, type FixtureEvent } from './helpers/fixture.mjs'
import { http2Loop, nodeKeepAliveLoop, pipelinedLoop, undiciLoop } from './helpers/http-clients.js'

afterEach(killAllFixtures)

const SCRIPT = fileURLToPath(new URL('./fixtures/http-server.mjs', import.meta.url))
const HANDOFFS = 5

async function startServer(env: Record<string, string> = {}): Promise<{ f: Fixture; port: number }> {
  const port = await freePort()
  const f = await Fixture.start({ FIXTURE_ADDRESS: `127.0.0.1:${port}`, ...env }, { script: SCRIPT })
  return { f, port }
}

/** Waits until the load has had `count` more answers. */
async function served(load: RequestLoop, count: number): Promise<void> {
  const target = load.ok + count
  const deadline = Date.now() + 20_000
  while (load.ok < target) {
    if (Date.now() > deadline) throw new Error(`load stalled at ${load.ok} answers; errors ${JSON.stringify(load.errors)}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Hands off HANDOFFS times under the load, and checks that nothing failed and every generation answered. */
async function throughHandoffs(f: Fixture, load: RequestLoop): Promise<void> {
  try {
    for (let i = 0; i < HANDOFFS; i++) {
      await served(load, 100)
      await f.handoff()
    }
    await served(load, 100)
  } finally {
    await load.stop()
  }
  expect(load.errors).toEqual({})
  expect([...load.byPid.keys()].sort()).toEqual([...f.pids].sort())
  const drained = f.events.filter((e) => e.event === 'drained')
  expect(drained).toHaveLength(HANDOFFS)
  for (const d of drained) expect(d.forced).toBe(0)
}

describe(`drain() through ${HANDOFFS} hand-offs, with no failed request`, () => {
  it('keep-alive clients on Node http.Agent', async () => {
    const { f, port } = await startServer()
    await throughHandoffs(f, nodeKeepAliveLoop(port, 8))
  })

  it('keep-alive clients on undici', async () => {
    const { f, port } = await startServer()
    await throughHandoffs(f, undiciLoop(port, 8))
  })

  it('a pipelining client (three requests per write)', async () => {
    const { f, port } = await startServer()
    await throughHandoffs(f, pipelinedLoop(port, 4))
  })

  it('keep-alive clients over https', async () => {
    const { f, port } = await startServer({ FIXTURE_PROTOCOL: 'https' })
    await throughHandoffs(f, nodeKeepAliveLoop(port, 8, true))
  })

  it('http2: a session kept open across each hand-off until its GOAWAY', async () => {
    const { f, port } = await startServer({ FIXTURE_PROTOCOL: 'http2' })
    const load = http2Loop(port, 4)
    await throughHandoffs(f, load)
    // One session per generation at least: each drain sent its sessions a GOAWAY.
    expect(load.sessions.length).toBeGreaterThanOrEqual(HANDOFFS + 1)
  })

  it('a client that connects, then sends its request 200 ms into the drain: the new process answers it on the same connection, which stays open', async () => {
    const { f, port } = await startServer()
    for (let i = 0; i < HANDOFFS; i++) {
      const oldPid = f.current
      // Connected while only the old process accepts.
      const socket = await connected(port)
      await new Promise((r) => setTimeout(r, 50))
      const from = f.events.length
      const handoff = f.handoff()
      await f.waitFor((e) => e.pid === oldPid && e.event === 'draining', 15_000, from)
      await new Promise((r) => setTimeout(r, 200))
      const response = await exchange(socket, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n', false)
      expect(response).toMatch(/^HTTP\/1\.1 200 /)
      expect(response).not.toMatch(/\r\nconnection: close\r\n/i)
      const { newPid } = await handoff
      expect(response.endsWith(`\r\n\r\n${newPid}`)).toBe(true)
      expect(socket.destroyed).toBe(false)
      socket.destroy()
      expect((await f.waitFor((e) => e.pid === oldPid && e.event === 'drained', 15_000, from)).handedOver).toBe(1)
    }
  })

  it('with handOff: false, the same client is answered (with close) by the old process, as before', async () => {
    const { f, port } = await startServer({ FIXTURE_HAND_OFF: '0' })
    for (let i = 0; i < 2; i++) {
      const oldPid = f.current
      const socket = await connected(port)
      await new Promise((r) => setTimeout(r, 50))
      const from = f.events.length
      const handoff = f.handoff()
      await f.waitFor((e) => e.pid === oldPid && e.event === 'draining', 15_000, from)
      await new Promise((r) => setTimeout(r, 200))
      const response = await exchange(socket, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
      expect(response).toMatch(/^HTTP\/1\.1 200 /)
      expect(response).toMatch(/\r\nconnection: close\r\n/i)
      expect(response.endsWith(`\r\n\r\n${oldPid}`)).toBe(true)
      await handoff
      expect((await f.waitFor((e) => e.pid === oldPid && e.event === 'drained', 15_000, from)).handedOver).toBeUndefined()
    }
  })

  it('a request still running at the timeout is forced, and counted', async () => {
    const { f, port } = await startServer({ FIXTURE_DRAIN_TIMEOUT: '1000' })
    const oldPid = f.current
    // Two idle keep-alive connections, which the drain closes between requests.
    const idle = [await connected(port), await connected(port)]
    for (const socket of idle) expect(await exchange(socket, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n', false)).toMatch(/^HTTP\/1\.1 200 /)
    const slow = get({ port }, '/slow?ms=60000', 60_000)
    const outcome = slow.then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code,
    )
    await new Promise((r) => setTimeout(r, 100))
    await f.handoff()
    const drained = f.events.find((e: FixtureEvent) => e.pid === oldPid && e.event === 'drained')
    expect(drained).toMatchObject({ graceful: 2, forced: 1 })
    expect(await outcome).toBe('ECONNRESET')
    for (const socket of idle) socket.destroy()
  })
})

function connected(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket))
    socket.on('error', reject)
  })
}

/**
 * Writes a request and collects what comes back: everything until the
 * server closes (`untilClose`), or the first complete response.
 */
function exchange(socket: net.Socket, request: string, untilClose = true): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = ''
    const onData = (chunk: Buffer): void => {
      data += chunk.toString('utf8')
      const head = data.indexOf('\r\n\r\n')
      const length = Number(/content-length: *(\d+)/i.exec(data)?.[1])
      if (!untilClose && head >= 0 && data.length >= head + 4 + length) {
        socket.off('data', onData)
        resolve(data)
      }
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.once('close', () => resolve(data))
    socket.write(request)
  })
}
