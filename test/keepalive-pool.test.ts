// Issue 18, part 1: a reverse proxy's pool of keep-alive connections, which
// never retries, through upgrades in each mode. Idle connections move to the
// new generation instead of being closed, so no request races a close and
// the pool keeps its connections. Hand-off off, the same pool shows what it
// costs (keepalive-pool-off.test.ts).
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { killDeployments, MODES, removeControlDir } from './helpers/deployments.js'
import { agentPool, poolThroughUpgrades, undiciPool, type PoolLoad } from './helpers/keepalive-pool.js'

afterEach(killDeployments)
afterAll(removeControlDir)

const POOL = 150
const UPGRADES = 8
/** The bounds: new connections over the whole run, and an old generation's exit after its hand-off. */
const MAX_CONNECTIONS = 1.5 * POOL
const MAX_EXIT_MS = 5_000

const clients: Array<[string, (port: number) => PoolLoad]> = [
  ['Node http.Agent (keepAlive, maxSockets 1 per loop)', (port) => agentPool(port, POOL)],
  ["undici's Pool (pipelining 1, one connection per loop)", (port) => undiciPool(port, POOL)],
]

describe.each(MODES)(`%s: a keep-alive pool of ${POOL} connections that never retries, idle 350-650 ms between requests, through ${UPGRADES} upgrades`, (mode) => {
  it.each(clients)('%s: no failed request, the pool kept, every old generation gone within 5 s of its hand-off', async (_, makeLoad) => {
    const run = await poolThroughUpgrades(mode, makeLoad, true, UPGRADES)
    expect(run.errors).toEqual({})
    expect(run.connections).toBeGreaterThanOrEqual(POOL)
    expect(run.connections).toBeLessThanOrEqual(MAX_CONNECTIONS)
    expect(Math.max(...run.exits.flat())).toBeLessThanOrEqual(MAX_EXIT_MS)
    // Every generation served (the first, then one per upgrade; two workers each under run).
    expect(run.pids).toBe((UPGRADES + 1) * (mode === 'run' ? 2 : 1))
    if (mode === 'api') {
      // The whole pool moved at each upgrade: idle connections at once, one with a request in flight after its response.
      expect(run.handedOver).toEqual(Array(UPGRADES).fill(POOL))
    }
  }, 180_000)
})
