import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, get, pidAt, udpPid, type Target } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive } from './helpers/processes.mjs'
import { hasIPv6 } from './helpers/host.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-handoff-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Two hand-offs: each new pid answers, each old process exits after exit() and close. */
async function twoHandoffs(f: Fixture, answer: () => Promise<number>): Promise<void> {
  let serving = f.current
  expect(await answer()).toBe(serving)
  for (let i = 0; i < 2; i++) {
    const { oldPid, newPid } = await f.handoff()
    expect(oldPid).toBe(serving)
    expect(newPid).not.toBe(oldPid)
    expect(f.event(newPid, 'listening')?.inherited).toBe(true)
    const exiting = f.events.findIndex((e) => e.pid === oldPid && e.event === 'exiting')
    const closed = f.events.findIndex((e) => e.pid === oldPid && e.event === 'closed')
    expect(exiting).toBeGreaterThan(-1)
    expect(closed).toBeGreaterThan(exiting)
    expect(isAlive(oldPid)).toBe(false)
    expect(await answer()).toBe(newPid)
    serving = newPid
  }
}

describe('hand-off for each kind of socket', () => {
  it('tcp (dual-stack wildcard)', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp', FIXTURE_ADDRESS: `:${port}` })
    await twoHandoffs(f, () => pidAt({ port }))
  })

  it('tcp4', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    await twoHandoffs(f, () => pidAt({ port }))
  })

  it.skipIf(!hasIPv6)('tcp6', async () => {
    const port = await freePort('::1')
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp6', FIXTURE_ADDRESS: `[::1]:${port}` })
    await twoHandoffs(f, () => pidAt({ host: '::1', port }))
  })

  it('unix: the path keeps working across hand-offs', async () => {
    const socketPath = join(dir, 'handoff.sock')
    const f = await Fixture.start({ FIXTURE_NETWORK: 'unix', FIXTURE_ADDRESS: socketPath })
    await twoHandoffs(f, () => pidAt({ socketPath }))
    expect(existsSync(socketPath)).toBe(true)
  })

  it('udp', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'udp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    await twoHandoffs(f, () => udpPid(port))
  })
})

describe('inheritance matches normalised addresses', () => {
  it.each([
    ['tcp', ':{port}', 'tcp', '0.0.0.0:{port}'],
    ['tcp', '0.0.0.0:{port}', 'tcp', '[::]:{port}'],
    ['tcp4', '127.0.0.1:{port}', 'tcp', 'localhost:{port}'],
  ])('a parent on %s %s hands its socket to a child asking for %s %s', async (n1, a1, n2, a2) => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: n1, FIXTURE_ADDRESS: a1.replace('{port}', String(port)) })
    const first = f.current
    const address = a2.replace('{port}', String(port))
    await f.admin(first, `/next?FIXTURE_NETWORK=${n2}&FIXTURE_ADDRESS=${encodeURIComponent(address)}`)
    const { newPid } = await f.handoff()
    // Inherited, not bound afresh: a fresh bind would have failed with EADDRINUSE.
    expect(f.event(newPid, 'listening')).toMatchObject({ inherited: true })
    expect(await pidAt({ port })).toBe(newPid)
  })

  it('a child asking for a new address binds it, and the old socket is closed at ready()', async () => {
    const [oldPort, newPort] = [await freePort(), await freePort()]
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${oldPort}` })
    await f.admin(f.current, `/next?FIXTURE_ADDRESS=127.0.0.1:${newPort}`)
    const { newPid } = await f.handoff()
    expect(f.event(newPid, 'listening')).toMatchObject({ inherited: false })
    expect(await pidAt({ port: newPort })).toBe(newPid)
    await expect(pidAt({ port: oldPort })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })
})

describe('in-flight work and the pid file', () => {
  it('a slow request started before the upgrade completes on the old pid while the new pid answers', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    const oldPid = f.current
    const target: Target = { port }
    const slow = get(target, '/slow?ms=1500')
    // The slow request is accepted by the old process before the upgrade starts.
    await new Promise((r) => setTimeout(r, 200))
    const result = await f.signalUpgrade()
    expect(result.event).toBe('upgraded')
    const newPid = result.child as number
    expect(await pidAt(target)).toBe(newPid)
    expect(isAlive(oldPid)).toBe(true)
    expect(await slow).toEqual({ status: 200, body: String(oldPid) })
    await f.waitFor((e) => e.pid === oldPid && e.event === 'closed')
  })

  it('the pid file holds the serving pid after each hand-off', async () => {
    const port = await freePort()
    const pidFile = join(dir, 'server.pid')
    const f = await Fixture.start({ FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_PID_FILE: pidFile })
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(f.current))
    for (let i = 0; i < 2; i++) {
      const { newPid } = await f.handoff()
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(newPid))
    }
    process.kill(f.current, 'SIGTERM')
    await f.waitFor((e) => e.pid === f.current && e.event === 'closed')
    expect(existsSync(pidFile)).toBe(false)
  })
})
