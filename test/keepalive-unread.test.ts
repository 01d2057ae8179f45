// Issue 18, part 1: a request whose first bytes are already in the kernel's
// buffer when the old process hands its connection over is answered by the
// new generation, end to end through the Upgrader and drain() (the mechanism
// alone: connection-handoff.test.ts). The old process must never read a byte
// after deciding that a connection is idle.
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { RawConnection, REQUEST } from './helpers/raw-http.js'

afterEach(killAllFixtures)

const SCRIPT = fileURLToPath(new URL('./fixtures/http-server.mjs', import.meta.url))
const EACH = 10

describe('a request already in the kernel buffer at the hand-off', () => {
  it('whole, or only its first bytes: answered by the new generation on the same connection, which stays open', async () => {
    const port = await freePort()
    // Each old process blocks its loop between 'draining' and drain(): what a
    // client writes then is in the kernel's buffer, unread, when drain() looks.
    const f = await Fixture.start({ FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_BLOCK_BEFORE_DRAIN: '1000' }, { script: SCRIPT })
    // The second generation is the one under test: a process started by
    // handover has loaded http/handoff.js after its ready(), so its drain()
    // hands over with no I/O turn between the block and the first sweep. The
    // first generation loads that module when it drains (file reads: a poll
    // phase, which reads the request, and the old process answers it).
    const { newPid: old } = await f.handoff()
    const whole = await Promise.all(Array.from({ length: EACH }, () => RawConnection.open(port)))
    const firstBytes = await Promise.all(Array.from({ length: EACH }, () => RawConnection.open(port)))
    const all = [...whole, ...firstBytes]
    for (const c of all) expect(await c.get()).toBe(old)
    const ports = all.map((c) => c.localPort)

    const from = f.events.length
    process.kill(old, 'SIGHUP')
    await f.waitFor((e) => e.pid === old && e.event === 'draining', 30_000, from)
    // The old loop is blocked for a second from its 'draining' line on.
    const answers = all.map((c) => c.response())
    await Promise.all([...whole.map((c) => c.write(REQUEST)), ...firstBytes.map((c) => c.write(REQUEST.slice(0, 7)))])
    const drained = await f.waitFor((e) => e.pid === old && e.event === 'drained', 30_000, from)
    const upgraded = await f.waitFor((e) => e.pid === old && e.event === 'upgraded', 30_000, from)
    // The rest of each half-sent request, to the process that now holds the connection.
    await Promise.all(firstBytes.map((c) => c.write(REQUEST.slice(7))))
    const results = await Promise.all(answers)

    expect(results.map((r) => [r.status, Number(r.body), r.close])).toEqual(all.map(() => [200, upgraded.child, false]))
    expect(drained).toMatchObject({ handedOver: 2 * EACH, forced: 0 })
    // Same connections, still open, and the next request on each is the new generation's too.
    expect(all.map((c) => c.localPort)).toEqual(ports)
    for (const c of all) expect(await c.get()).toBe(upgraded.child)
    expect(all.filter((c) => c.closed)).toHaveLength(0)
    for (const c of all) c.destroy()
  }, 60_000)
})
