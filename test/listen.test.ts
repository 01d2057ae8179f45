import { execFile, spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HandoverError, Upgrader, type Listener } from '../src/index.js'
import { posixAddon } from '../src/backend/addon.js'
import { freePort } from './helpers/clients.mjs'
import { hasIPv6 } from './helpers/host.js'

// One Upgrader per process: this file's worker owns one, and stops it last.
let upg: Upgrader
const dir = mkdtempSync(join(tmpdir(), 'handover-listen-'))
const servers: net.Server[] = []

beforeAll(async () => {
  upg = await Upgrader.create({ pidFile: join(dir, 'app.pid') })
})
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  rmSync(dir, { recursive: true, force: true })
})

const hasPython = spawnSync('python3', ['--version']).status === 0

async function serve(listener: Listener): Promise<net.Server> {
  const server = net.createServer((socket) => socket.end(`hello from ${listener.address}`))
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(listener, resolve))
  return server
}

function fetchLine(options: net.NetConnectOpts): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = ''
    const socket = net.connect(options)
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (data += chunk))
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
  })
}

function thrown(fn: () => unknown): HandoverError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(HandoverError)
    return err as HandoverError
  }
  throw new Error('expected an error')
}

/** O_CLOEXEC, as /proc shows it: the flag that keeps a socket out of unrelated children. */
function isCloseOnExec(fd: number): boolean {
  const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]
  return (parseInt(flags, 8) & 0o2000000) !== 0
}

describe('fresh binds round-trip real connections', () => {
  it('tcp with a wildcard host is dual-stack', async () => {
    const listener = upg.listen('tcp', ':0')
    expect(listener).toMatchObject({ network: 'tcp', inherited: false })
    expect(listener.port).toBeGreaterThan(0)
    await serve(listener)
    expect(await fetchLine({ host: '127.0.0.1', port: listener.port! })).toMatch(/^hello from /)
    if (hasIPv6) expect(await fetchLine({ host: '::1', port: listener.port! })).toMatch(/^hello from /)
  })

  it('tcp4 on loopback reports its resolved address', async () => {
    const listener = upg.listen('tcp4', '127.0.0.1:0')
    expect(listener.address).toBe(`127.0.0.1:${listener.port}`)
    await serve(listener)
    expect(await fetchLine({ host: '127.0.0.1', port: listener.port! })).toBe(`hello from 127.0.0.1:${listener.port}`)
  })

  it.skipIf(!hasIPv6)('tcp6 on loopback', async () => {
    const listener = upg.listen('tcp6', '[::1]:0')
    expect(listener.address).toBe(`[::1]:${listener.port}`)
    await serve(listener)
    expect(await fetchLine({ host: '::1', port: listener.port! })).toBe(`hello from [::1]:${listener.port}`)
  })

  it('unix socket', async () => {
    const path = join(dir, 'a.sock')
    const listener = upg.listen('unix', path)
    expect(listener).toMatchObject({ network: 'unix', address: path, path })
    const server = await serve(listener)
    // Node cannot tell the path of an adopted unix socket; the listener can.
    expect(server.address()).toBeNull()
    expect(await fetchLine({ path })).toBe(`hello from ${path}`)
  })

  it.skipIf(process.platform !== 'linux' || !hasPython)('abstract unix socket', async () => {
    const name = `handover-test-${process.pid}`
    const listener = upg.listen('unix', `@${name}`)
    expect(listener.address).toBe(`@${name}`)
    await serve(listener)
    // Node 20's client pads abstract names to 108 bytes; handover binds the
    // exact name, as Linux tools, Go and systemd do. Python connects exactly.
    const script = `import socket\ns = socket.socket(socket.AF_UNIX)\ns.settimeout(5)\ns.connect('\\0${name}')\nprint(s.recv(200).decode())`
    const { stdout } = await promisify(execFile)('python3', ['-c', script], { encoding: 'utf8', timeout: 5_000 })
    expect(stdout.trim()).toBe(`hello from @${name}`)
  })

  it('udp', async () => {
    const listener = upg.listenPacket('udp4', '127.0.0.1:0')
    expect(listener.socketType).toBe('udp4')
    const server = dgram.createSocket(listener.socketType!)
    server.on('message', (msg, rinfo) => server.send(`echo ${msg}`, rinfo.port, rinfo.address))
    await new Promise<void>((resolve) => server.bind(listener, resolve))
    const client = dgram.createSocket('udp4')
    const reply = new Promise<string>((resolve) => client.once('message', (m) => resolve(String(m))))
    client.send("ping", listener.port!, '127.0.0.1')
    expect(await reply).toBe('echo ping')
    client.close()
    server.close()
  })

  it('a port number listens on the dual-stack wildcard, the same socket as `:port`', async () => {
    const port = await freePort()
    const listener = upg.listen('tcp', port)
    expect(listener).toMatchObject({ network: 'tcp', port })
    // One socket, not EADDRINUSE: the number and the string name the same key.
    expect(upg.listen('tcp', `:${port}`).address).toBe(listener.address)
    await serve(listener)
    expect(await fetchLine({ host: '127.0.0.1', port })).toMatch(/^hello from /)
    if (hasIPv6) expect(await fetchLine({ host: '::1', port })).toMatch(/^hello from /)
  })

  it('gives every listen() its own close-on-exec handle on the one socket', async () => {
    const port = await freePort()
    const a = upg.listen('tcp4', `127.0.0.1:${port}`)
    const b = upg.listen('tcp', `localhost:${port}`)
    expect(b.port).toBe(a.port)
    expect(b.fd).not.toBe(a.fd)
    expect(isCloseOnExec(a.fd!)).toBe(true)
    expect(isCloseOnExec(b.fd!)).toBe(true)
    await serve(a)
    await serve(b)
    expect(await fetchLine({ host: '127.0.0.1', port: a.port! })).toMatch(/^hello/)
  })
})

describe('bad input gets a typed error', () => {
  it('an unknown network', () => {
    expect(thrown(() => upg.listen('sctp' as 'tcp', ':80')).code).toBe('ERR_INVALID_NETWORK')
    expect(thrown(() => upg.listenPacket('tcp' as 'udp', ':80')).code).toBe('ERR_INVALID_NETWORK')
  })

  it.each(['nonsense', ':99999', '[::1'])('a malformed address %j', (address) => {
    expect(thrown(() => upg.listen('tcp', address)).code).toBe('ERR_INVALID_ADDRESS')
  })

  it.each([70000, 1.5, -1])('a bad port number %s', (port) => {
    expect(thrown(() => upg.listen('tcp', port)).code).toBe('ERR_INVALID_ADDRESS')
  })

  it('a port number for a unix socket', () => {
    expect(thrown(() => upg.listen('unix', 8080)).message).toMatch(/unix socket takes a path/)
  })

  it('a port in use keeps its errno code and names the address', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const { port } = blocker.address() as net.AddressInfo
    const err = thrown(() => upg.listen('tcp4', `127.0.0.1:${port}`))
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'listen', address: `tcp4 127.0.0.1:${port}` })
    expect(err.message).toContain(`127.0.0.1:${port}`)
    blocker.close()
  })

  it('an over-long unix path', () => {
    const err = thrown(() => upg.listen('unix', join(dir, 'x'.repeat(200))))
    expect(err.code).toBe('ENAMETOOLONG')
  })

  it('a file that is not a socket in the way of a unix path', () => {
    const path = join(dir, 'regular-file')
    writeFileSync(path, 'keep me')
    expect(thrown(() => upg.listen('unix', path)).code).toBe('EEXIST')
    expect(readFileSync(path, 'utf8')).toBe('keep me')
  })

  it('a unix path where another server is listening', async () => {
    const path = join(dir, 'taken.sock')
    const other = net.createServer()
    await new Promise<void>((resolve) => other.listen(path, resolve))
    expect(thrown(() => upg.listen('unix', path)).code).toBe('EADDRINUSE')
    await new Promise((r) => other.close(r))
  })

  it('replaces a stale unix socket file that nothing listens on', async () => {
    const path = join(dir, 'stale.sock')
    const fd = posixAddon().bindUnix(path, false, 1)
    new net.Socket({ fd }).destroy() // closed without unlinking: what a crash leaves
    expect(existsSync(path)).toBe(true)
    const listener = upg.listen('unix', path)
    await serve(listener)
    expect(await fetchLine({ path })).toBe(`hello from ${path}`)
  })

  it('bad options', async () => {
    const bad = [
      { upgradeTimeout: -1 }, { upgradeTimeout: 'soon' }, { upgradeTimeout: 2 ** 31 }, { parentTimeout: 0 },
      { pidFile: 7 }, { args: 'x' }, { args: [1] }, { cwd: '' }, { env: 'x' }, null,
    ] as unknown[]
    for (const options of bad) {
      await expect(Upgrader.create(options as object)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' })
    }
  })

  it('a second Upgrader in one process', async () => {
    await expect(Upgrader.create()).rejects.toMatchObject({ code: 'ERR_ALREADY_CREATED' })
  })

  it('upgrade() before ready()', async () => {
    await expect(upg.upgrade()).rejects.toMatchObject({ code: 'ERR_NOT_READY' })
  })

  it('bad arguments to upgrade() and waitForParent() reject, never throw', async () => {
    const bad = [null, 'x', { signal: {} }] as unknown as Parameters<Upgrader['upgrade']>[0][]
    for (const options of bad) {
      await expect(upg.upgrade(options)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' })
      await expect(upg.waitForParent(options)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' })
    }
    for (const timeout of [-1, 2 ** 31, Number.NaN]) {
      await expect(upg.waitForParent({ timeout })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' })
    }
  })
})

describe('lifecycle without a parent', () => {
  it('has no parent, and waitForParent() resolves at once', async () => {
    expect(upg.hasParent).toBe(false)
    await upg.waitForParent({ timeout: 1 })
  })

  it('ready() writes the pid file; stop() closes sockets and removes files', async () => {
    const path = join(dir, 'final.sock')
    const listener = upg.listen('unix', path)
    await serve(listener)
    await upg.ready()
    expect(readFileSync(join(dir, 'app.pid'), 'utf8').trim()).toBe(String(process.pid))

    upg.stop()
    await upg.exit()
    expect(existsSync(path)).toBe(false)
    expect(existsSync(join(dir, 'app.pid'))).toBe(false)
    expect(thrown(() => upg.listen('tcp', ':0')).code).toBe('ERR_STOPPED')
    await expect(upg.upgrade()).rejects.toMatchObject({ code: 'ERR_STOPPED' })
    await expect(upg.ready()).rejects.toMatchObject({ code: 'ERR_STOPPED' })
  })
})
