import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, get, pidAt } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const dir = mkdtempSync(join(tmpdir(), 'handover-probation-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function start(extra: Record<string, string> = {}): Promise<{ f: Fixture; port: number; pidFile: string }> {
  const port = await freePort()
  const pidFile = join(dir, `${port}.pid`)
  const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_PID_FILE: pidFile, ...extra })
  return { f, port, pidFile }
}

const readPid = (file: string): number => Number(readFileSync(file, 'utf8').trim())

describe('probation', () => {
  it('a child that dies 100 ms after ready, within a 1000 ms probation → ERR_CHILD_EXITED; the old process still serves and owns the pid file', async () => {
    const { f, port, pidFile } = await start({ FIXTURE_PROBATION: '1000' })
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_EXIT_AFTER_READY=100')
    const from = f.events.length
    const failed = await f.admin(parent, '/upgrade')
    expect(failed).toMatchObject({ ok: false, code: 'ERR_CHILD_EXITED', exitCode: 5 })
    expect(failed.message).toMatch(/exited with code 5 during the 1000 ms probation after it was ready/)
    const child = f.events.slice(from).find((e) => e.event === 'ready')?.pid as number
    expect(child).toBeGreaterThan(0)
    expect(f.event(child, 'exiting-after-ready')).toBeDefined()
    expect(isAlive(child)).toBe(false)
    expect(await pidAt({ port })).toBe(parent)
    // The child wrote its pid at ready(); the old process wrote its own back.
    expect(readPid(pidFile)).toBe(parent)
    // Still the server: exit() did not resolve, and the next upgrade works.
    expect(f.event(parent, 'exiting')).toBeUndefined()
    await f.admin(parent, '/next?FIXTURE_EXIT_AFTER_READY=')
    const ok = await f.admin(parent, '/upgrade')
    expect(ok).toMatchObject({ ok: true })
    expect(readPid(pidFile)).toBe(ok.pid)
  })

  it('without probation (the default) the same child is handed over to, and then nothing serves', async () => {
    const { f, port } = await start()
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_EXIT_AFTER_READY=100')
    const upgraded = await f.admin(parent, '/upgrade')
    // The default promises to keep serving on failures before ready() only.
    expect(upgraded).toMatchObject({ ok: true })
    await waitUntil(() => !isAlive(parent) && !isAlive(upgraded.pid as number), 10_000, 'both generations to exit')
    await expect(get({ port }, '/', 2_000)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('a healthy child: upgrade() resolves no sooner than the probation after its ready; the pid file then has the new pid', async () => {
    const { f, port, pidFile } = await start({ FIXTURE_PROBATION: '1500' })
    const parent = f.current
    const upgraded = await f.admin(parent, '/upgrade')
    expect(upgraded).toMatchObject({ ok: true })
    const child = upgraded.pid as number
    const ready = f.event(child, 'ready')
    expect(ready).toBeDefined()
    // The child logs 'ready' just after it has told the parent, so allow the parent a little head start.
    expect((upgraded.t as number) - (ready!.t as number)).toBeGreaterThanOrEqual(1500 - 50)
    await waitUntil(() => !isAlive(parent), 10_000, 'the old process to exit')
    expect(await pidAt({ port })).toBe(child)
    expect(readPid(pidFile)).toBe(child)
  })

  it('stop() during the probation kills the child; the old process was the last', async () => {
    const { f, pidFile } = await start({ FIXTURE_PROBATION: '5000', FIXTURE_LINGER: '1' })
    const parent = f.current
    const from = f.events.length
    const upgrading = f.admin(parent, '/upgrade')
    const ready = await f.waitFor((e) => e.event === 'ready' && e.pid !== parent, 15_000, from)
    expect(await f.admin(parent, '/stop')).toEqual({ ok: true })
    expect(await upgrading).toMatchObject({ ok: false, code: 'ERR_STOPPED' })
    expect(isAlive(ready.pid)).toBe(false)
    expect(() => readFileSync(pidFile)).toThrow()
  })

  it('refuses a bad probation with ERR_INVALID_OPTION', async () => {
    for (const bad of ['-1', 'NaN', '2147483648']) {
      const f = await Fixture.start({ FIXTURE_PROBATION: bad }, { waitFor: 'create-failed' })
      expect(f.events.find((e) => e.event === 'create-failed')).toMatchObject({ code: 'ERR_INVALID_OPTION' })
      expect(f.events.find((e) => e.event === 'create-failed')?.message).toMatch(/probation/)
    }
  })
})
