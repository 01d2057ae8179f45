// drain() on servers in this process, with real sockets and clients.
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { execFileSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { drain, HandoverError } from '../dist/index.js'

const open: Array<net.Server | net.Socket | http2.ClientHttp2Session> = []
afterEach(() => {
  for (const thing of open.splice(0)) {
    if (thing instanceof net.Server) thing.close()
    else thing.destroy()
  }
})

function listening<T extends net.Server>(server: T): Promise<T & { port: number }> {
  open.push(server)
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(Object.assign(server, { port: (server.address() as net.AddressInfo).port }))))
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket))
    open.push(socket)
    socket.on('error', reject)
  })
}

/** What a socket saw: data, and whether it ended cleanly (FIN) or with an error. */
function watch(socket: net.Socket) {
  const seen = { data: '', ended: false, error: undefined as string | undefined, closed: false }
  socket.on('data', (chunk) => (seen.data += chunk))
  socket.on('end', () => (seen.ended = true))
  socket.on('error', (err: NodeJS.ErrnoException) => (seen.error = err.code))
  const closed = new Promise<void>((resolve) => socket.on('close', () => ((seen.closed = true), resolve())))
  return { seen, closed }
}

const pidHandler = (_req: http.IncomingMessage, res: http.ServerResponse): void => void res.end(String(process.pid))
const GET = 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'

describe('drain() rejects bad input and changes nothing', () => {
  it.each([[undefined], [null], [{}], ['server'], [http.createServer]])('server %#', async (bad) => {
    await expect(drain(bad as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it.each([
    [null],
    ['fast'],
    [{ idleGrace: -1 }],
    [{ idleGrace: Number.NaN }],
    [{ idleGrace: '500' }],
    [{ timeout: 2 ** 31 }],
    [{ timeout: Infinity }],
    [{ signal: {} }],
  ])('options %j', async (options) => {
    const server = await listening(http.createServer(pidHandler))
    const err = await drain(server, options as never).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(HandoverError)
    expect(err).toMatchObject({ code: 'ERR_INVALID_OPTION' })
    expect(server.listening).toBe(true)
    // Still a full server: a later drain with good options works.
    await expect(drain(server, { idleGrace: 0 })).resolves.toEqual({ graceful: 0, forced: 0 })
  })
})

describe('drain() on one server', () => {
  it('returns the drain under way when called again', async () => {
    const server = await listening(http.createServer(pidHandler))
    const first = drain(server)
    expect(drain(server, { timeout: 1 })).toBe(first)
    await expect(first).resolves.toEqual({ graceful: 0, forced: 0 })
  })

  it('resolves for a server that is not listening', async () => {
    await expect(drain(http.createServer(pidHandler))).resolves.toEqual({ graceful: 0, forced: 0 })
  })

  it('closes an idle keep-alive connection after the grace, with a FIN, not a reset', async () => {
    const server = await listening(http.createServer(pidHandler))
    const socket = await connect(server.port)
    const { seen, closed } = watch(socket)
    socket.write(GET)
    await new Promise((r) => setTimeout(r, 50))
    expect(seen.data).toMatch(/keep-alive/i)
    const result = await drain(server, { idleGrace: 100 })
    await closed
    expect(result).toEqual({ graceful: 1, forced: 0 })
    expect(seen).toMatchObject({ ended: true, error: undefined })
    expect(server.listenerCount('request')).toBe(1)
  })

  it('keeps a connection whose request trickles in, and answers it with Connection: close', async () => {
    const server = await listening(http.createServer(pidHandler))
    const socket = await connect(server.port)
    const { seen, closed } = watch(socket)
    const drained = drain(server, { idleGrace: 150 })
    // One byte every 50 ms: the connection is never quiet for the grace.
    for (const byte of GET) {
      socket.write(byte)
      await new Promise((r) => setTimeout(r, 50))
    }
    await closed
    expect(seen.data).toMatch(/^HTTP\/1\.1 200 /)
    expect(seen.data).toMatch(/\r\nconnection: close\r\n/i)
    expect(await drained).toEqual({ graceful: 1, forced: 0 })
  })

  it('leaves an upgraded (WebSocket-like) connection to the timeout, then forces it', async () => {
    const server = await listening(http.createServer(pidHandler))
    server.on('upgrade', (_req, socket: net.Socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n'))
    const socket = await connect(server.port)
    const { seen, closed } = watch(socket)
    socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n')
    await new Promise((r) => setTimeout(r, 50))
    expect(seen.data).toMatch(/^HTTP\/1\.1 101 /)
    const result = await drain(server, { idleGrace: 20, timeout: 400 })
    await closed
    expect(result).toEqual({ graceful: 0, forced: 1 })
  })

  it('net.Server: waits for connections to end by themselves; an abort forces the rest', async () => {
    const server = await listening(net.createServer((s) => s.on('data', () => {})))
    const leaving = await connect(server.port)
    const staying = await connect(server.port)
    const stay = watch(staying)
    await new Promise((r) => setTimeout(r, 50))
    const controller = new AbortController()
    const drained = drain(server, { idleGrace: 0, signal: controller.signal })
    leaving.end()
    await new Promise((r) => setTimeout(r, 300))
    // A raw TCP connection has no "between requests": it was left alone.
    expect(stay.seen.closed).toBe(false)
    controller.abort()
    expect(await drained).toEqual({ graceful: 1, forced: 1 })
    await stay.closed
  })

  it('http2 with the stream API: GOAWAY, the open stream finishes, and the compatibility API stays off', async () => {
    const server = await listening(http2.createServer())
    server.on('stream', (stream) =>
      setTimeout(() => {
        stream.respond({ ':status': 200 })
        stream.end('late')
      }, 300),
    )
    const session = http2.connect(`http://127.0.0.1:${server.port}`)
    open.push(session)
    const goaway = new Promise((resolve) => session.once('goaway', resolve))
    const stream = session.request({ ':path': '/' })
    let body = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => (body += chunk))
    const ended = new Promise((resolve, reject) => {
      stream.on('end', resolve)
      stream.on('error', reject)
    })
    await new Promise((r) => setTimeout(r, 50))
    const result = await drain(server, { idleGrace: 100 })
    await goaway
    await ended
    expect(body).toBe('late')
    expect(result).toEqual({ graceful: 1, forced: 0 })
    // A 'request' listener, even for a moment, would have added the compatibility 'stream' handler.
    expect(server.listenerCount('stream')).toBe(1)
    expect(server.listenerCount('request')).toBe(0)
  })
})

it('importing handover loads neither node:tls nor node:http2 (each costs a new generation start-up time)', () => {
  const script = `await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}); console.log(JSON.stringify(process.moduleLoadList))`
  const loaded = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[]
  expect(loaded).toContain('NativeModule net')
  expect(loaded.filter((m) => /^NativeModule (tls|_tls_wrap|http2|internal\/http2\/core)$/.test(m))).toEqual([])
})
