import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, get, pidAt, udpPid } from './helpers/clients.js'
import { Fixture, isAlive, killAllFixtures } from './helpers/fixture.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-handoff-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('hand-off for each kind of socket', () => {
  it('tcp: the new pid answers and the old process exits after exit() and close', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp', FIXTURE_ADDRESS: `:${port}` })
    const first = f.current
    expect(await pidAt({ port })).toBe(first)
    const { oldPid, newPid } = await f.handoff()
    expect(oldPid).toBe(first)
    expect(newPid).not.toBe(first)
    expect(await pidAt({ port })).toBe(newPid)
    expect(f.event(newPid, 'listening')?.inherited).toBe(true)
    // The old process logged exiting before closed, and is gone.
    expect(f.event(oldPid, 'exiting')).toBeDefined()
    expect(isAlive(oldPid)).toBe(false)
  })
})
