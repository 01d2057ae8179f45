// NestJS with app.enableShutdownHooks() under handover/register (issue 19):
// Nest's default hooks listen to SIGHUP (and SIGUSR2) too, so every upgrade
// also ran app.close() in the old process; passing the stop signals alone
// (docs/frameworks.md#nestjs) leaves the upgrade signal to handover.
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, loadLoop } from './helpers/clients.mjs'
import { nodeKeepAliveLoop } from './helpers/http-clients.js'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'

afterEach(killPreloadApps)

// PreloadApp runs scripts relative to test/fixtures/apps/.
const MAIN = '../../../examples/nestjs/main.mjs'

describe('NestJS under the preload', () => {
  it('with enableShutdownHooks([\'SIGTERM\', \'SIGINT\']): 0 failed requests through 3 upgrades, and no app.close() at an upgrade', async () => {
    const port = await freePort()
    const app = await PreloadApp.start(MAIN, { PORT: String(port) }, { wait: /^listening \d+/ })
    const fresh = loadLoop({ port }, 3)
    const keepAlive = nodeKeepAliveLoop(port, 3)
    try {
      for (let i = 0; i < 3; i++) await app.upgrade()
    } finally {
      await Promise.all([fresh.stop(), keepAlive.stop()])
    }
    expect(fresh.errors).toEqual({})
    expect(keepAlive.errors).toEqual({})
    expect(fresh.ok + keepAlive.ok).toBeGreaterThan(100)
    expect(app.lines.filter((l) => l.startsWith('app shutdown'))).toEqual([])
    // The stop signals are Nest's: SIGTERM runs its shutdown hooks.
    const last = app.current
    await app.stop('SIGTERM')
    expect(app.lines).toContain(`app shutdown ${last} SIGTERM`)
  })

  it("with Nest's default signals, an upgrade also shuts the old app down through its own hooks (why the docs pass the stop signals)", async () => {
    const port = await freePort()
    const app = await PreloadApp.start(MAIN, { PORT: String(port), NEST_ALL_SIGNALS: '1' }, { wait: /^listening \d+/ })
    const first = app.current
    process.kill(first, 'SIGHUP')
    await app.waitForLine(new RegExp(`^app shutdown ${first} SIGHUP$`), 15_000)
    // The upgrade the SIGHUP also started settles one way or the other; a
    // new generation it started is then named (upgraded to pid N) and killed
    // after the test with the rest, not left serving with no parent.
    await app.waitForLine(/^handover: (upgraded to pid \d+|upgrade failed)/, 15_000)
  })
})
