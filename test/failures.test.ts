import { afterEach, describe, expect, it } from 'vitest'
import { freePort, pidAt } from './helpers/clients.mjs'
import { settledFdCount } from './helpers/fds.js'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
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

  it('a new generation upgrades once its parent has handed over, even while the parent still drains; before (its probation) → ERR_PARENT_NOT_EXITED', async () => {
    const { f, port } = await start({ FIXTURE_LINGER: '1', FIXTURE_PROBATION: '2000' })
    const first = f.current
    const handedOver = f.signalUpgrade()
    const { pid: second } = await f.waitFor((e) => e.pid !== first && e.event === 'ready')
    // Its parent still serves beside it, in the probation.
    expect(await f.admin(second, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_PARENT_NOT_EXITED' })
    const short = await f.admin(second, '/upgrade?waitForParent=200')
    expect(short).toMatchObject({ ok: false, code: 'ERR_PARENT_NOT_EXITED' })
    expect(short.message).toMatch(/has not handed over within 200 ms/)
    expect((await handedOver).child).toBe(second)
    await f.waitFor((e) => e.pid === first && e.event === 'lingering')
    // The old generation has handed over for good.
    expect(await f.admin(first, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_ALREADY_UPGRADED' })

    // waitForParent() still waits for the parent's exit.
    expect(await f.admin(second, '/wait-parent?timeout=200')).toMatchObject({ ok: false, code: 'ERR_TIMEOUT' })
    // It still runs (draining; here it lingers, still accepting), and holds nothing up.
    await f.admin(second, '/next?FIXTURE_LINGER=0&FIXTURE_PROBATION=')
    const upgraded = await f.admin(second, '/upgrade')
    expect(upgraded).toMatchObject({ ok: true })
    expect(isAlive(first)).toBe(true)
    expect(f.event(upgraded.pid as number, 'started')?.ppid).toBe(second)
    process.kill(first, 'SIGTERM')
    await waitUntil(() => !isAlive(first) && !isAlive(second), 10_000, 'both old generations to exit')
    expect(await pidAt({ port })).toBe(upgraded.pid)
  })
})
