import { afterEach, describe, expect, it } from 'vitest'
import { freePort, loadLoop } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'

afterEach(killAllFixtures)

const CLIENTS = 16
const HANDOFFS = 5

describe('under load', () => {
  it(`${CLIENTS} clients on fresh connections through ${HANDOFFS} hand-offs: no failed request`, async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp', FIXTURE_ADDRESS: `:${port}` })
    const load = loadLoop({ port }, CLIENTS)
    const servedBefore: number[] = []
    try {
      for (let i = 0; i < HANDOFFS; i++) {
        // Let every generation serve for a while before it hands over.
        const atStart = load.ok
        while (load.ok < atStart + 200) await new Promise((r) => setTimeout(r, 10))
        servedBefore.push(load.ok)
        await f.handoff()
      }
      const atEnd = load.ok
      while (load.ok < atEnd + 200) await new Promise((r) => setTimeout(r, 10))
    } finally {
      await load.stop()
    }
    expect(load.errors).toEqual({})
    // Every generation answered requests, and the load ran through each hand-off.
    expect([...load.byPid.keys()].sort()).toEqual([...f.pids].sort())
    expect(load.ok).toBeGreaterThan(servedBefore[HANDOFFS - 1])
  })
})
