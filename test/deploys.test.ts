// Deploys as they happen (issue 19): a pipeline writes a release to disk and
// asks for an upgrade, and does it again 300 ms later while the first
// release is still starting (2.5 s). The second request is queued, never
// dropped: one follow-up generation starts once the first settles, so the
// release on disk at the last request is what serves in the end. In every
// mode, and through `handover upgrade`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, get } from './helpers/clients.mjs'
import { cli as controlCli } from './helpers/control.js'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { killSupervised, Supervised } from './helpers/supervisor.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-deploys-'))
afterEach(async () => {
  await killAllFixtures()
  killPreloadApps()
  await killSupervised()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const START_MS = 2_500
const unique = (name: string): string => join(dir, `${name}-${Math.random().toString(36).slice(2)}`)

/** What the app answers: "<pid> <release>". */
async function serving(port: number, path = '/'): Promise<{ pid: number; release: string }> {
  const { body } = await get({ port }, path)
  const [pid, release] = String(body).split(' ')
  return { pid: Number(pid), release }
}

/** Waits until every answer comes from `release`. */
async function settlesOn(port: number, release: string, path = '/'): Promise<number> {
  let pid = 0
  await waitUntil(async () => {
    const now = await serving(port, path)
    pid = now.pid
    return now.release === release
  }, 20_000, `release ${release} to serve`)
  return pid
}

describe('two deploys 300 ms apart while a slow release starts: the second one serves in the end', () => {
  it('under the preload (SIGHUP to the serving pid both times)', async () => {
    const port = await freePort()
    const releaseFile = unique('release')
    writeFileSync(releaseFile, 'r0')
    const app = await PreloadApp.start('release.mjs', { PORT: String(port), RELEASE_FILE: releaseFile, START_DELAY_MS: String(START_MS) }, { wait: /^listening \d+ r0/ })
    const first = app.current
    const from = app.lines.length
    writeFileSync(releaseFile, 'r1')
    process.kill(first, 'SIGHUP')
    await new Promise((r) => setTimeout(r, 300))
    writeFileSync(releaseFile, 'r2')
    // The pid file still names the first generation: the new one is not ready yet.
    process.kill(first, 'SIGHUP')
    await app.waitForLine(/^handover: upgrade queued \(1 waiting\): one follow-up generation starts when the upgrade under way settles/, 5_000, from)
    // Both requests are answered in the first generation's log: the second with the follow-up's pid.
    await app.waitForLine(/^handover: upgraded to pid \d+/, 15_000, from)
    const upgraded = () => app.lines.slice(from).filter((l) => /^handover: upgraded to pid \d+/.test(l))
    await waitUntil(() => upgraded().length === 2, 20_000, 'the follow-up generation')
    const last = Number(/pid (\d+)/.exec(upgraded()[1])?.[1])
    app.current = last
    expect(await settlesOn(port, 'r2')).toBe(last)
    // The first generation handed the queued deploy to the second, which ran it.
    await app.waitForLine(/^handover: upgrade passed on to pid \d+, which serves now/, 10_000, from)
    await app.waitForLine(/^handover: upgrading: a deploy reached the previous generation while this one started/, 10_000, from)
    // Two generations, no more: the second deploy made one follow-up. (Which
    // release the first of them read depends on when its start reached the
    // file; the follow-up started after the second write.)
    const started = app.lines.slice(from).filter((l) => /^listening \d+ r/.test(l)).map((l) => l.split(' ')[2])
    expect(started).toHaveLength(2)
    expect(started[1]).toBe('r2')
    await waitUntil(() => !isAlive(first), 10_000, 'the first generation to exit')
  })

  it('under handover run -w 2 (SIGHUP to the supervisor both times)', async () => {
    const port = await freePort()
    const releaseFile = unique('release')
    writeFileSync(releaseFile, 'r0')
    const s = await Supervised.start(['-w', '2'], 'release.mjs', { PORT: String(port), RELEASE_FILE: releaseFile, START_DELAY_MS: String(START_MS) })
    writeFileSync(releaseFile, 'r1')
    process.kill(s.pid, 'SIGHUP')
    await new Promise((r) => setTimeout(r, 300))
    writeFileSync(releaseFile, 'r2')
    process.kill(s.pid, 'SIGHUP')
    await s.waitForLine(/^handover: upgrade requested during generation 2's start: queued \(1 waiting\)/)
    await s.waitForLine(/^handover: generation 3 ready/, 20_000)
    await settlesOn(port, 'r2')
    // Three generations of two workers, no more; the last started after the second write.
    const started = s.lines.filter((l) => /^listening \d+ r/.test(l)).map((l) => l.split(' ')[2])
    expect(started).toHaveLength(6)
    expect(started.slice(4)).toEqual(['r2', 'r2'])
  })

  it('through handover upgrade under handover run: each command answers with the generation that includes its request', async () => {
    const port = await freePort()
    const releaseFile = unique('release')
    const socket = unique('ctl.sock')
    writeFileSync(releaseFile, 'r0')
    await Supervised.start(['-w', '2', '--control-socket', socket], 'release.mjs', { PORT: String(port), RELEASE_FILE: releaseFile, START_DELAY_MS: String(START_MS) })
    writeFileSync(releaseFile, 'r1')
    const firstRequest = controlCli('upgrade', '--socket', socket)
    await new Promise((r) => setTimeout(r, 300))
    writeFileSync(releaseFile, 'r2')
    const secondRequest = controlCli('upgrade', '--socket', socket)
    const [a, b] = await Promise.all([firstRequest, secondRequest])
    expect(a).toMatchObject({ status: 0, answer: { ok: true, generation: 2 } })
    expect(b).toMatchObject({ status: 0, answer: { ok: true, generation: 3 } })
    await settlesOn(port, 'r2')
  })

  it('through handover upgrade under the API: the second is answered with the generation the first one\'s successor started', async () => {
    const port = await freePort()
    const releaseFile = unique('release')
    const ctl = unique('ctl.sock')
    writeFileSync(releaseFile, 'r0')
    const f = await Fixture.start({
      FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_CONTROL_SOCKET: ctl, FIXTURE_RELEASE_FILE: releaseFile, FIXTURE_READY_DELAY: String(START_MS),
    })
    const first = f.current
    writeFileSync(releaseFile, 'r1')
    const firstRequest = controlCli('upgrade', '--socket', ctl)
    await new Promise((r) => setTimeout(r, 300))
    writeFileSync(releaseFile, 'r2')
    const secondRequest = controlCli('upgrade', '--socket', ctl)
    const [a, b] = await Promise.all([firstRequest, secondRequest])
    expect(a, JSON.stringify(a)).toMatchObject({ status: 0, answer: { ok: true } })
    expect(b, JSON.stringify(b)).toMatchObject({ status: 0, answer: { ok: true } })
    const second = a.answer?.pid as number
    const third = b.answer?.pid as number
    // The third was started by the second: the first no longer served when the deploy could run.
    expect((await f.waitFor((e) => e.pid === third && e.event === 'started')).ppid).toBe(second)
    expect(await settlesOn(port, 'r2', '/release')).toBe(third)
    expect(first).not.toBe(second)
  })

  it('upg.upgrade({ queue: true }) under the API: both calls resolve, the second with the follow-up', async () => {
    const port = await freePort()
    const releaseFile = unique('release')
    writeFileSync(releaseFile, 'r0')
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_RELEASE_FILE: releaseFile, FIXTURE_READY_DELAY: String(START_MS) })
    const first = f.current
    writeFileSync(releaseFile, 'r1')
    const a = f.admin(first, '/upgrade?queue=1')
    await new Promise((r) => setTimeout(r, 300))
    writeFileSync(releaseFile, 'r2')
    const b = f.admin(first, '/upgrade?queue=1')
    // Without the option: refused, as before.
    expect(await f.admin(first, '/upgrade')).toMatchObject({ ok: false, code: 'ERR_UPGRADE_IN_PROGRESS' })
    const [ra, rb] = await Promise.all([a, b])
    expect(ra).toMatchObject({ ok: true })
    expect(rb).toMatchObject({ ok: true })
    expect(rb.pid).not.toBe(ra.pid)
    expect(await settlesOn(port, 'r2', '/release')).toBe(rb.pid)
  })
})
