// A second deploy while the first generation still drains a slow request:
// a long drain never holds the next deploy up. The parent has handed over
// (it no longer accepts), so the new generation starts the next one at
// once, and the older generations drain side by side.
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, get, pidAt } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive } from './helpers/processes.mjs'

afterEach(killAllFixtures)

describe('a deploy while the previous generation drains', () => {
  it('starts at once; the slow request still finishes on the oldest generation', async () => {
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

    expect(await f.admin(second, '/upgrade?waitForParent=-1')).toMatchObject({ ok: false, code: 'ERR_INVALID_OPTION' })
    const third = await f.admin(second, '/upgrade')
    expect(third).toMatchObject({ ok: true })
    expect(isAlive(first)).toBe(true)
    expect(await pidAt({ port })).toBe(third.pid)
    // Nothing waited for the first generation's exit.
    expect(f.events.findIndex((e) => e.pid === first && e.event === 'closed')).toBe(-1)

    expect(await slow).toEqual({ status: 200, body: String(first) })
    await f.waitFor((e) => e.pid === first && e.event === 'closed')
    await f.waitFor((e) => e.pid === second && e.event === 'closed')
    expect(await pidAt({ port })).toBe(third.pid)
  })
})
