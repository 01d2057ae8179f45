import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { freePort, loadLoop, pidAt } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { builtRelease } from './helpers/release.js'

afterEach(killAllFixtures)

/** The first release (protocol 1, which demands `version` === 1 exactly). */
const FIRST_RELEASE = '8005a65'

async function start(extra: Record<string, string> = {}, launcher?: string[]): Promise<{ f: Fixture; port: number }> {
  const port = await freePort()
  const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, ...extra }, { launcher })
  return { f, port }
}

describe('protocol versions', () => {
  it('a parent that speaks only protocol 3 → ERR_INCOMPATIBLE with the child\'s reason; still serving', async () => {
    const { f, port } = await start({ FIXTURE_PROTOCOL: '3-3' })
    const parent = f.current
    // The next generation is this release as it is: protocols 1 and 2.
    await f.admin(parent, '/next?FIXTURE_PROTOCOL=')
    const failed = await f.admin(parent, '/upgrade')
    expect(failed).toMatchObject({ ok: false, code: 'ERR_INCOMPATIBLE' })
    expect(failed.message).toMatch(/refused the hand-off: ERR_INCOMPATIBLE: the parent speaks handover protocol version 3, this process speaks versions 1 to 2/)
    expect(await pidAt({ port })).toBe(parent)
  })

  it('a release that speaks only protocol 1 hands over to this one (1 and 2) and back; one that speaks 2 and 3 agrees on 2', async () => {
    const { f, port } = await start({ FIXTURE_PROTOCOL: '1-1' })
    await f.admin(f.current, '/next?FIXTURE_PROTOCOL=')
    const { newPid: second } = await f.handoff()
    expect(await pidAt({ port })).toBe(second)
    await f.admin(second, '/next?FIXTURE_PROTOCOL=1-1')
    const { newPid: third } = await f.handoff()
    expect(await pidAt({ port })).toBe(third)
    await f.admin(third, '/next?FIXTURE_PROTOCOL=')
    const { newPid: fourth } = await f.handoff()
    // 1-2 to 2-3: both speak 2 and agree on it.
    await f.admin(fourth, '/next?FIXTURE_PROTOCOL=2-3')
    const { newPid: fifth } = await f.handoff()
    expect(await pidAt({ port })).toBe(fifth)
  })
})

describe(`the first release (${FIRST_RELEASE}) and this one`, () => {
  let oldModule = ''
  // A fresh machine builds the release from git history: npm ci and node-gyp.
  beforeAll(() => {
    oldModule = builtRelease(FIRST_RELEASE)
  }, 900_000)

  it('hand over in both directions under load, with no failed request', async () => {
    const { f, port } = await start({ HANDOVER_MODULE: oldModule })
    const load = loadLoop({ port }, 4)
    try {
      const first = f.current
      await f.admin(first, '/next?HANDOVER_MODULE=')
      const { newPid: current } = await f.handoff()
      // The rollback: this release hands back to the first one.
      await f.admin(current, `/next?HANDOVER_MODULE=${encodeURIComponent(oldModule)}`)
      const { newPid: rolledBack } = await f.handoff()
      await f.admin(rolledBack, '/next?HANDOVER_MODULE=')
      const { newPid: again } = await f.handoff()
      expect(await pidAt({ port })).toBe(again)
    } finally {
      await load.stop()
    }
    expect(load.errors).toEqual({})
    expect(load.ok).toBeGreaterThan(20)
    // Every generation served some of it.
    expect(load.byPid.size).toBeGreaterThanOrEqual(3)
  })
})

describe('a hello larger than 1 MiB', () => {
  let dir = ''
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }))

  it('10,000 unix listeners (fewer if the hard fd limit is lower) hand over', async (ctx) => {
    const hard = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim())
    // The parent holds each socket plus, while it spawns, one duplicate: 2 fds per listener.
    const count = Math.min(10_000, Math.floor((hard - 200) / 2))
    if (count < 9_000) {
      console.warn(`SKIPPED: the hard fd limit ${hard} allows only ${count} listeners here; raise it to 20,200`)
      ctx.skip()
    }
    if (count < 10_000) console.warn(`NOTE: the hard fd limit ${hard} allows ${count} listeners, not 10,000`)
    // Long paths (~100 bytes) make each hello entry ~250 bytes: well over 1 MiB in all.
    dir = mkdtempSync(join(tmpdir(), `handover-many-${'x'.repeat(60)}-`))
    const { f, port } = await start({ FIXTURE_EXTRA_UNIX: String(count), FIXTURE_EXTRA_DIR: dir, FIXTURE_UPGRADE_TIMEOUT: '50000' }, [
      'sh', '-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"',
    ])
    expect(f.event(f.current, 'extra-listeners')).toMatchObject({ count, inherited: 0 })
    const { newPid } = await f.handoff()
    expect(f.event(newPid, 'extra-listeners')).toMatchObject({ count, inherited: count })
    expect(await pidAt({ port })).toBe(newPid)
  }, 120_000)
})
