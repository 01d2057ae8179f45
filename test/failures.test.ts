import { afterEach, describe, expect, it } from 'vitest'
import { freePort, pidAt } from './helpers/clients.mjs'
import { settledFdCount } from './helpers/fds.js'
import { Fixture, killAllFixtures, type FixtureEvent } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

afterEach(killAllFixtures)

async function start(extra: Record<string, string> = {}): Promise<{ f: Fixture; port: number }> {
  const port = await freePort()
  const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, ...extra })
  return { f, port }
}

/** Pids of the generations started after `from` that are not `except`. */
function startedSince(f: Fixture, from: number, except: number): number[] {
  return f.events.slice(from).filter((e) => e.event === 'started' && e.pid !== except).map((e) => e.pid)
}

describe('a failed upgrade leaves the old process serving', () => {
  it('a child that crashes before ready() → ERR_CHILD_EXITED with its exit code; the next upgrade succeeds', async () => {
    const { f, port } = await start()
    const parent = f.current
    const fdsBefore = await settledFdCount(parent)
    await f.admin(parent, '/next?FIXTURE_MODE=crash')
    const failed = await f.signalUpgrade()
    expect(failed).toMatchObject({ event: 'upgrade-failed', code: 'ERR_CHILD_EXITED', exitCode: 3 })
    expect(await pidAt({ port })).toBe(parent)
    expect(f.events.some((e) => e.event === 'crashing')).toBe(true)
    // The failed attempt left nothing open behind it.
    expect(await settledFdCount(parent)).toBe(fdsBefore)

    await f.admin(parent, '/next?FIXTURE_MODE=ok')
    const { newPid } = await f.handoff()
    expect(await pidAt({ port })).toBe(newPid)
  })

  it('a child that never becomes ready → ERR_UPGRADE_TIMEOUT, and the child is gone', async () => {
    const { f, port } = await start({ FIXTURE_UPGRADE_TIMEOUT: '1500' })
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_MODE=hang')
    const from = f.events.length
    const failed = await f.signalUpgrade()
    expect(failed).toMatchObject({ event: 'upgrade-failed', code: 'ERR_UPGRADE_TIMEOUT' })
    const [hung] = startedSince(f, from, parent)
    expect(hung).toBeGreaterThan(0)
    expect(f.event(hung, 'hanging')).toBeDefined()
    expect(isAlive(hung)).toBe(false)
    expect(await pidAt({ port })).toBe(parent)
  })

  it('a concurrent upgrade() → ERR_UPGRADE_IN_PROGRESS', async () => {
    const { f } = await start({ FIXTURE_UPGRADE_TIMEOUT: '3000' })
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_MODE=hang')
    const first = f.admin(parent, '/upgrade')
    await f.waitFor((e) => e.event === 'hanging')
    expect(await f.admin(parent, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_UPGRADE_IN_PROGRESS' })
    expect(await first).toMatchObject({ ok: false, code: 'ERR_UPGRADE_TIMEOUT' })
  })

  it('a child that upgrades while its parent is alive → ERR_PARENT_NOT_EXITED, then succeeds once it is gone', async () => {
    const { f, port } = await start({ FIXTURE_LINGER: '1' })
    const first = f.current
    const result = await f.signalUpgrade()
    const second = result.child as number
    await f.waitFor((e) => e.pid === first && e.event === 'lingering')
    expect(isAlive(first)).toBe(true)
    expect(await f.admin(second, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_PARENT_NOT_EXITED' })
    expect(await f.admin(second, '/wait-parent?timeout=200')).toMatchObject({ ok: false, code: 'ERR_TIMEOUT' })
    // The old generation has handed over for good.
    expect(await f.admin(first, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_ALREADY_UPGRADED' })

    const waiting = f.admin(second, '/wait-parent')
    process.kill(first, 'SIGTERM')
    expect(await waiting).toEqual({ ok: true })
    await waitUntil(() => !isAlive(first), 10_000, 'the first generation to exit')
    await f.admin(second, '/next?FIXTURE_LINGER=0')
    const upgraded = await f.admin(second, '/upgrade')
    expect(upgraded).toMatchObject({ ok: true })
    await waitUntil(() => !isAlive(second), 10_000, 'the second generation to exit')
    expect(await pidAt({ port })).toBe(upgraded.pid)
  })
})

describe('cancelling and starting', () => {
  it("upgrade()'s signal aborts a starting child → ERR_ABORTED; the child is gone", async () => {
    const { f, port } = await start()
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_MODE=hang')
    const from = f.events.length
    expect(await f.admin(parent, '/upgrade?abortAfter=1000')).toMatchObject({ ok: false, code: 'ERR_ABORTED' })
    const [hung] = startedSince(f, from, parent)
    expect(hung).toBeGreaterThan(0)
    expect(isAlive(hung)).toBe(false)
    expect(await pidAt({ port })).toBe(parent)
  })

  it('a command that cannot start → ERR_SPAWN_FAILED, nothing left open, still serving', async () => {
    const { f, port } = await start({ FIXTURE_COMMAND: '/nonexistent/node' })
    const parent = f.current
    const fdsBefore = await settledFdCount(parent)
    for (let i = 0; i < 3; i++) {
      expect(await f.admin(parent, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_SPAWN_FAILED' })
    }
    expect(await settledFdCount(parent)).toBe(fdsBefore)
    expect(await pidAt({ port })).toBe(parent)
  })
})

describe('stop()', () => {
  it('during an upgrade kills the child; later upgrades → ERR_STOPPED; exit() resolves', async () => {
    const { f } = await start()
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_MODE=hang')
    const from = f.events.length
    const upgrading = f.admin(parent, '/upgrade')
    const hanging: FixtureEvent = await f.waitFor((e) => e.event === 'hanging', 15_000, from)
    expect(await f.admin(parent, '/stop')).toEqual({ ok: true })
    expect(await upgrading).toMatchObject({ ok: false, code: 'ERR_STOPPED' })
    expect(isAlive(hanging.pid)).toBe(false)
    await f.waitFor((e) => e.pid === parent && e.event === 'exiting')
    await f.waitFor((e) => e.pid === parent && e.event === 'closed')
    await waitUntil(() => !isAlive(parent), 10_000, 'the stopped process to exit')
  })

  it('refuses upgrade() after stop()', async () => {
    const { f } = await start({ FIXTURE_LINGER: '1' })
    const parent = f.current
    await f.admin(parent, '/stop')
    expect(await f.admin(parent, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_STOPPED' })
  })
})
