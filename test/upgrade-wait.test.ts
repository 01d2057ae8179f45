// A second deploy while the first generation still drains a slow request:
// upgrade({ waitForParent }) waits for it to go, bounded, instead of failing
// at once with ERR_PARENT_NOT_EXITED (which a SIGHUP handler would only log,
// after `kill -HUP` had exited 0: a lost deploy).
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, get, pidAt } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive } from './helpers/processes.mjs'

afterEach(killAllFixtures)

describe('upgrade({ waitForParent })', () => {
  it('waits for a draining parent, fails with ERR_PARENT_NOT_EXITED without it or when the wait runs out', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    const first = f.current
    // Accepted by the first generation, which must finish it before it can exit.
    const slow = get({ port }, '/slow?ms=4000', 20_000)
    // Give the request time to reach the server before the hand-off.
    await new Promise((r) => setTimeout(r, 200))
    const up = await f.signalUpgrade()
    expect(up.event).toBe('upgraded')
    const second = up.child as number
    await f.waitFor((e) => e.pid === second && e.event === 'ready')
    expect(isAlive(first)).toBe(true)

    // Without the option: today's behaviour, at once.
    expect(await f.admin(second, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_PARENT_NOT_EXITED' })
    // A wait shorter than the drain runs out with the same code, and nothing was started.
    const short = await f.admin(second, '/upgrade?waitForParent=300')
    expect(short).toMatchObject({ ok: false, code: 'ERR_PARENT_NOT_EXITED' })
    expect(short.message).toMatch(/has not exited within 300 ms/)
    expect(f.events.filter((e) => e.event === 'started').length).toBe(2)
    expect(await f.admin(second, '/upgrade?waitForParent=-1')).toMatchObject({ ok: false, code: 'ERR_INVALID_OPTION' })
    // The caller's signal ends the wait.
    expect(await f.admin(second, '/upgrade?waitForParent=20000&abortAfter=300')).toMatchObject({ ok: false, code: 'ERR_ABORTED' })

    // With a wait long enough for the drain: succeeds once the parent has gone.
    const waited = f.admin(second, '/upgrade?waitForParent=20000')
    // The wait is the upgrade in progress.
    await new Promise((r) => setTimeout(r, 200))
    expect(await f.admin(second, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_UPGRADE_IN_PROGRESS' })
    expect(await slow).toEqual({ status: 200, body: String(first) })
    const result = await waited
    expect(result).toMatchObject({ ok: true })
    const third = result.pid as number
    // The first generation had closed before the third was started.
    const closedAt = f.events.findIndex((e) => e.pid === first && e.event === 'closed')
    const thirdAt = f.events.findIndex((e) => e.pid === third && e.event === 'started')
    expect(closedAt).toBeGreaterThanOrEqual(0)
    expect(thirdAt).toBeGreaterThan(closedAt)
    expect(isAlive(first)).toBe(false)
    await f.waitFor((e) => e.pid === second && e.event === 'closed')
    expect(await pidAt({ port })).toBe(third)
  })
})
