import { execFile } from 'node:child_process'
import dgram from 'node:dgram'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { listenName } from '../src/core/options.js'
import { freePort, get, pidAt, udpPid, type Target } from './helpers/clients.mjs'
import { Fixture, killAllFixtures, type FixtureEvent } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

// The real tool from Debian's systemd package: it binds, waits for the first
// connection, then execs the command with LISTEN_FDS, LISTEN_PID and
// LISTEN_FDNAMES, the way a .socket unit starts its service.
const ACTIVATE = 'systemd-socket-activate'

const dir = mkdtempSync(join(tmpdir(), 'handover-activation-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The tool passes on only the variables named with -E (and PATH, HOME...). */
function activate(addresses: string[], env: Record<string, string>, ...extra: string[]): string[] {
  return [ACTIVATE, ...addresses.flatMap((a) => ['-l', a]), ...Object.entries(env).map(([k, v]) => `-E${k}=${v}`), ...extra]
}

/** Starts the fixture under the tool. */
function startActivated(addresses: string[], env: Record<string, string>, ...extra: string[]): Promise<Fixture> {
  return Fixture.start(env, { launcher: activate(addresses, env, ...extra) })
}

/** The first request is what makes the tool start the server; retried until the tool listens. */
async function firstAnswer<T>(ask: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      return await ask()
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (Date.now() > deadline || !(code === 'ECONNREFUSED' || code === 'ENOENT' || /no udp answer/.test(String(err)))) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

function refused(target: Target): Promise<string> {
  return get(target, '/', 5_000).then((r) => `answered ${r.body}`, (err: NodeJS.ErrnoException) => err.code ?? 'error')
}

/** What an unrelated child of the app inherits: socket fds beyond stdio, and LISTEN_* variables. */
async function childView(f: Fixture, pid: number): Promise<{ socketFds: string[]; listenEnv: string[] }> {
  const [fds, env] = String((await f.admin(pid, '/spawn')).stdout).split('\n---\n')
  expect(fds).toMatch(/ 1 -> /)
  return {
    socketFds: fds.split('\n').filter((l) => / \d+ -> socket:/.test(l) && !/ [012] -> /.test(l)),
    listenEnv: env.split('\n').filter((l) => l.startsWith('LISTEN_')),
  }
}

const listening = (f: Fixture, pid: number): FixtureEvent | undefined => f.event(pid, 'listening')

describe('socket activation', () => {
  it('claims the activated tcp socket by address, serves the first connection, passes it on, leaks nothing', async () => {
    const port = await freePort()
    const address = `127.0.0.1:${port}`
    const starting = startActivated([address], { FIXTURE_ADDRESS: address })
    // The connection that starts the server is queued on the activated socket, and answered.
    const answeredBy = await firstAnswer(() => pidAt({ port }))
    const f = await starting
    const first = f.current
    expect(answeredBy).toBe(first)
    expect(f.event(first, 'started')?.hasParent).toBe(false)
    expect(listening(f, first)).toMatchObject({ address, inherited: true })
    // The originals at fd 3.. are closed and the copies are close-on-exec; the variables are gone.
    expect(await childView(f, first)).toEqual({ socketFds: [], listenEnv: [] })

    const { newPid: second } = await f.handoff()
    expect(listening(f, second)).toMatchObject({ address, inherited: true })
    expect(await pidAt({ port })).toBe(second)
    expect(await childView(f, second)).toEqual({ socketFds: [], listenEnv: [] })

    process.kill(second, 'SIGTERM')
    await waitUntil(() => !isAlive(second), 10_000, 'the last generation to exit')
    expect(await refused({ port })).toBe('ECONNREFUSED')
  })

  it('LISTEN_FDNAMES: claims by name whatever the address, closes the unclaimed socket at ready(), keeps the name across generations', async () => {
    const [web, spare, fallback] = [await freePort(), await freePort(), await freePort()]
    const starting = startActivated(
      [`127.0.0.1:${web}`, `127.0.0.1:${spare}`],
      { FIXTURE_LISTEN_NAME: 'web', FIXTURE_ADDRESS: `127.0.0.1:${fallback}` },
      '--fdname=web:spare',
    )
    await firstAnswer(() => pidAt({ port: web }))
    const f = await starting
    expect(listening(f, f.current)).toMatchObject({ address: `127.0.0.1:${web}`, inherited: true })
    // Nothing claimed "spare": ready() closed it, and nothing else held it.
    expect(await refused({ port: spare })).toBe('ECONNREFUSED')
    expect(await refused({ port: fallback })).toBe('ECONNREFUSED')

    const { newPid } = await f.handoff()
    expect(listening(f, newPid)).toMatchObject({ address: `127.0.0.1:${web}`, inherited: true })
    expect(await pidAt({ port: web })).toBe(newPid)
    expect(await refused({ port: fallback })).toBe('ECONNREFUSED')
  })

  it('a name two sockets share, or a socket that does not fit the network, fails listen()', async () => {
    const connect = (port: number): Promise<net.Socket> => firstAnswer(() => new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s)).on('error', reject)
    }))
    const [a, b] = [await freePort(), await freePort()]
    const env = { FIXTURE_LISTEN_NAME: 'web', FIXTURE_ADDRESS: '127.0.0.1:0' }
    const shared = Fixture.start(env, { launcher: activate([`127.0.0.1:${a}`, `127.0.0.1:${b}`], env, '--fdname=web:web'), waitFor: 'listen-failed' })
    const first = await connect(a)
    expect((await shared).events.find((e) => e.event === 'listen-failed')).toMatchObject({ code: 'ERR_INVALID_OPTION' })
    first.destroy()

    // A datagram socket named "web", claimed for tcp.
    const port = await freePort()
    const udp = Fixture.start(env, { launcher: activate([`127.0.0.1:${port}`], env, '--datagram', '--fdname=web'), waitFor: 'listen-failed' })
    const trigger = dgram.createSocket('udp4')
    const sending = setInterval(() => trigger.send('start', port, '127.0.0.1'), 100)
    try {
      expect((await udp).events.find((e) => e.event === 'listen-failed')).toMatchObject({ code: 'ERR_BAD_INHERITANCE' })
    } finally {
      clearInterval(sending)
      trigger.close()
    }
  })

  it('claims an activated udp socket with listenPacket()', async () => {
    const port = await freePort()
    const address = `127.0.0.1:${port}`
    const starting = startActivated([address], { FIXTURE_NETWORK: 'udp', FIXTURE_ADDRESS: address }, '--datagram')
    // The datagram that starts the server waits in the socket and gets its echo.
    const answeredBy = await firstAnswer(() => udpPid(port))
    const f = await starting
    expect(answeredBy).toBe(f.current)
    expect(listening(f, f.current)).toMatchObject({ address, inherited: true })
    const { newPid } = await f.handoff()
    expect(await udpPid(port)).toBe(newPid)
  })

  it('an activated unix socket: served across a hand-off, and its file left to the service manager at stop', async () => {
    const socketPath = join(dir, 'activated.sock')
    const starting = startActivated([socketPath], { FIXTURE_NETWORK: 'unix', FIXTURE_ADDRESS: socketPath })
    await firstAnswer(() => pidAt({ socketPath }))
    const f = await starting
    expect(listening(f, f.current)).toMatchObject({ address: socketPath, inherited: true })
    const { newPid } = await f.handoff()
    expect(await pidAt({ socketPath })).toBe(newPid)
    process.kill(newPid, 'SIGTERM')
    await waitUntil(() => !isAlive(newPid), 10_000, 'the last generation to exit')
    // A .socket unit keeps the file (and its own listening socket) after the service stops.
    expect(existsSync(socketPath)).toBe(true)
  })

  it('LISTEN_PID naming another process (a shell that did not exec): the sockets are not claimed, the variables still removed', async () => {
    const port = await freePort()
    const address = `127.0.0.1:${port}`
    // `; exit` keeps the shell alive as node's parent, so LISTEN_PID is the shell's pid.
    const shell = ['sh', '-c', '"$0" "$1"; exit $?']
    const trigger = (): Promise<net.Socket> => firstAnswer(() => new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s)).on('error', reject)
    }))

    // Asked for the activated address, it binds afresh and finds it taken.
    const env = { FIXTURE_ADDRESS: address }
    const starting = Fixture.start(env, { launcher: [...activate([address], env), ...shell], waitFor: 'listen-failed' })
    const first = await trigger()
    const f = await starting
    expect(f.events.find((e) => e.event === 'listen-failed')).toMatchObject({ code: 'EADDRINUSE' })
    first.destroy()
    await killAllFixtures()

    const port2 = await freePort()
    const env2 = { FIXTURE_ADDRESS: '127.0.0.1:0' }
    const starting2 = Fixture.start(env2, { launcher: [...activate([`127.0.0.1:${port2}`], env2), ...shell] })
    const second = await firstAnswer(() => new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port2, '127.0.0.1', () => resolve(s)).on('error', reject)
    }))
    const g = await starting2
    expect(listening(g, g.current)).toMatchObject({ inherited: false })
    expect((await childView(g, g.current)).listenEnv).toEqual([])
    second.destroy()
  })

  it('validates listen() options', () => {
    expect(listenName(undefined)).toBeUndefined()
    expect(listenName({})).toBeUndefined()
    expect(listenName({ name: 'web' })).toBe('web')
    for (const bad of [5, null, { name: '' }, { name: 'a:b' }, { name: 'a b' }, { name: 'x'.repeat(256) }, { name: 7 }]) {
      expect(() => listenName(bad as never), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }))
    }
  })

  it('malformed variables for this pid fail create() with ERR_BAD_INHERITANCE', async () => {
    // `exec` keeps the shell's pid, so LISTEN_PID=$$ names the node process.
    const run = (vars: string): Promise<Fixture> =>
      Fixture.start({}, { launcher: ['sh', '-c', `export LISTEN_PID=$$ ${vars}; exec "$0" "$1" 3</dev/null`], waitFor: 'create-failed' })
    for (const vars of ['LISTEN_FDS=abc', 'LISTEN_FDS=2 LISTEN_FDNAMES=a', 'LISTEN_FDS=1 LISTEN_FDNAMES=a:b', 'LISTEN_FDS=99999']) {
      const f = await run(vars)
      expect(f.events.find((e) => e.event === 'create-failed'), vars).toMatchObject({ code: 'ERR_BAD_INHERITANCE' })
    }
    // A passed fd that is not a socket (here /dev/null) is refused too: see the next test.
    const notSocket = await Fixture.start({}, { launcher: ['sh', '-c', 'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$1" 3</dev/null'], waitFor: 'create-failed' })
    expect(notSocket.events.find((e) => e.event === 'create-failed')).toMatchObject({ code: 'ERR_BAD_INHERITANCE' })
  })

  it('LISTEN_FDS covering an fd that is not a socket: ERR_BAD_INHERITANCE from create(), and the fd is left open, never closed', async () => {
    // Reports what create() did and what fd 3 is before and after; then keeps the event loop turning.
    const script = `
      import { readlinkSync } from 'node:fs'
      const fd3 = () => { try { return readlinkSync('/proc/self/fd/3') } catch (e) { return e.code } }
      const { Upgrader } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)})
      const before = fd3()
      const created = await Upgrader.create().then(() => ({ ok: true }), (e) => ({ code: e.code, message: e.message }))
      await new Promise((r) => setTimeout(r, 200))
      console.log(JSON.stringify({ created, before, after: fd3() }))`
    const run = (redirect: string, pipe = false): Promise<{ status: number | null; signal: string | null; out: string; err: string }> => {
      // `exec` keeps the shell's pid, so LISTEN_PID=$$ names the node process.
      const inner = `export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" --input-type=module -e "$1" ${redirect}`
      const args = pipe ? ['-c', 'echo data | sh -c "$0" "$@"', inner, process.execPath, script] : ['-c', inner, process.execPath, script]
      return new Promise((resolve) => {
        execFile('sh', args, { timeout: 20_000 }, (err, out, stderr) => {
          const e = err as (Error & { code?: number; signal?: string }) | null
          resolve({ status: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, out, err: stderr })
        })
      })
    }
    const file = join(dir, 'not-a-socket')
    writeFileSync(file, 'data\n')
    const cases: Array<[string, string, boolean, RegExp]> = [
      ['a regular file', `3<${file}`, false, new RegExp(`^${file}$`)],
      ['a pipe', '3<&0', true, /^pipe:\[\d+\]$/],
      // No fd 3 passed at all: fd 3 is node's own (its epoll fd), which closing would abort node.
      ['nothing (node\'s own fd 3)', '3<&-', false, /^anon_inode:/],
    ]
    for (const [what, redirect, pipe, target] of cases) {
      const r = await run(redirect, pipe)
      expect({ status: r.status, signal: r.signal }, `${what}: ${r.err}`).toEqual({ status: 0, signal: null })
      const report = JSON.parse(r.out) as { created: { code?: string; message?: string }; before: string; after: string }
      expect(report.created, what).toMatchObject({ code: 'ERR_BAD_INHERITANCE', message: expect.stringMatching(/fd 3 .*not a socket/) })
      expect(report.before, what).toMatch(target)
      expect(report.after, what).toBe(report.before)
    }
  })
})
