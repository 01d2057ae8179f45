import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, pidAt } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const dir = mkdtempSync(join(tmpdir(), 'handover-races-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('shutdown races', () => {
  it('stop() then process.exit() at once still kills the starting child', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_MODE=hang')
    const from = f.events.length
    void f.admin(parent, '/upgrade').catch(() => {})
    const hanging = await f.waitFor((e) => e.event === 'hanging', 15_000, from)
    await f.admin(parent, '/stop-and-exit').catch(() => {})
    await waitUntil(() => !isAlive(parent), 5_000, 'the parent to exit')
    // SIGKILL was sent before exit(); the child cannot have survived it.
    await waitUntil(() => !isAlive(hanging.pid), 2_000, 'the starting child to be gone')
    await expect(pidAt({ port })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it("a new generation that stops before ready() leaves the parent's unix socket file alone", async () => {
    const socketPath = join(dir, 'keep.sock')
    const f = await Fixture.start({ FIXTURE_NETWORK: 'unix', FIXTURE_ADDRESS: socketPath })
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_MODE=stop-before-ready')
    const failed = await f.signalUpgrade()
    expect(failed).toMatchObject({ event: 'upgrade-failed', code: 'ERR_CHILD_EXITED', exitCode: 1 })
    expect(f.events.some((e) => e.event === 'stopping-before-ready')).toBe(true)
    expect(existsSync(socketPath)).toBe(true)
    expect(await pidAt({ socketPath })).toBe(parent)
  })

  it('stop() while ready() runs: ready() rejects, the parent keeps serving and keeps its pid file', async () => {
    const port = await freePort()
    const pidFile = join(dir, 'race.pid')
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_PID_FILE: pidFile })
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_MODE=stop-during-ready')
    const failed = await f.signalUpgrade()
    expect(failed).toMatchObject({ event: 'upgrade-failed', code: 'ERR_CHILD_EXITED' })
    expect(f.events.find((e) => e.event === 'ready-failed')).toMatchObject({ code: 'ERR_STOPPED' })
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(parent))
    expect(await pidAt({ port })).toBe(parent)
  })
})

describe('resource exhaustion', () => {
  const script = fileURLToPath(new URL('./fixtures/fd-exhaustion.mjs', import.meta.url))
  it.each([0, 1, 3])('out of fds during upgrade() (%i spare): ERR_SPAWN_FAILED, and the server survives', async (spare) => {
    const port = await freePort()
    const { stdout } = await promisify(execFile)('sh', ['-c', `ulimit -n 128 && exec "${process.execPath}" "${script}"`], {
      env: { ...process.env, FIXTURE_ADDRESS: `127.0.0.1:${port}`, SPARE_FDS: String(spare) },
      timeout: 30_000,
    })
    const events = stdout.trim().split('\n').map((line) => JSON.parse(line))
    expect(events.find((e) => e.event === 'upgrade-result')).toMatchObject({ ok: false, code: 'ERR_SPAWN_FAILED' })
    expect(events.find((e) => e.event === 'upgrade-result').message).toMatch(/EMFILE/)
    expect(events.at(-1)).toMatchObject({ event: 'still-serving', status: 200 })
  })
})
