import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, pidAt } from './helpers/clients.mjs'
import { CLI, cli, raw } from './helpers/control.js'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const dir = mkdtempSync(join(tmpdir(), 'handover-control-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function start(extra: Record<string, string> = {}): Promise<{ f: Fixture; ctl: string; port: number }> {
  const ctl = join(dir, `app-${Math.random().toString(36).slice(2)}.ctl`)
  const port = await freePort()
  const f = await Fixture.start({ FIXTURE_CONTROL_SOCKET: ctl, FIXTURE_ADDRESS: `127.0.0.1:${port}`, ...extra })
  return { f, ctl, port }
}

describe('control socket and the handover CLI', () => {
  it('upgrades through the CLI, served by each generation in turn, mode 0600, removed at the final stop', async () => {
    const { f, ctl, port } = await start()
    const first = f.current
    const st = statSync(ctl)
    expect(st.isSocket()).toBe(true)
    expect(st.mode & 0o777).toBe(0o600)
    expect(await cli('status', '--json', '--socket', ctl)).toMatchObject({ status: 0, answer: { ok: true, pid: first, hasParent: false }, stderr: '' })

    const up = await cli('upgrade', '--socket', ctl)
    expect(up.status).toBe(0)
    const second = up.answer?.pid as number
    expect(up.answer).toEqual({ ok: true, pid: second })
    // Once the old generation has closed its server, only the new one accepts.
    await f.waitFor((e) => e.pid === first && e.event === 'closed')
    expect(await pidAt({ port })).toBe(second)
    await waitUntil(() => !isAlive(first), 10_000, 'the first generation to exit')

    // The socket was handed over with the others; the new generation answers on it.
    expect(await cli('status', '--json', '--socket', ctl)).toMatchObject({ status: 0, answer: { ok: true, pid: second, hasParent: true } })
    const again = await cli('upgrade', '--socket', ctl, '--timeout', '30000')
    expect(again).toMatchObject({ status: 0, answer: { ok: true } })
    const third = again.answer?.pid as number
    await f.waitFor((e) => e.pid === second && e.event === 'closed')
    expect(await pidAt({ port })).toBe(third)
    expect(statSync(ctl).mode & 0o777).toBe(0o600)

    await waitUntil(() => !isAlive(second), 10_000, 'the second generation to exit')
    process.kill(third, 'SIGTERM')
    await waitUntil(() => !isAlive(third), 10_000, 'the last generation to exit')
    expect(existsSync(ctl)).toBe(false)
    expect(await cli('status', '--json', '--socket', ctl)).toMatchObject({ status: 1, answer: { ok: false, code: 'ENOENT' } })
  })

  it('a crashing child: the CLI exits 1 with ERR_CHILD_EXITED, and the old process keeps serving and answering', async () => {
    const { f, ctl, port } = await start()
    const first = f.current
    await f.admin(first, '/next?FIXTURE_MODE=crash')
    const failed = await cli('upgrade', '--socket', ctl)
    expect(failed.status).toBe(1)
    expect(failed.answer).toMatchObject({ ok: false, code: 'ERR_CHILD_EXITED' })
    expect(failed.stderr).toMatch(/^handover: upgrade failed: ERR_CHILD_EXITED: the new process \d+ exited with code 3/)
    expect(await pidAt({ port })).toBe(first)
    expect(await cli('status', '--json', '--socket', ctl)).toMatchObject({ status: 0, answer: { pid: first } })
  })

  it('--timeout kills a child that never gets ready; a request during an upgrade is queued and answered with the follow-up generation', async () => {
    const { f, ctl, port } = await start()
    const first = f.current
    await f.admin(first, '/next?FIXTURE_MODE=hang')
    const timedOut = await cli('upgrade', '--socket', ctl, '--timeout', '2000')
    expect(timedOut).toMatchObject({ status: 1, answer: { ok: false, code: 'ERR_UPGRADE_TIMEOUT' } })
    // The child was killed (and reaped) before the answer.
    expect(f.alive()).toEqual([first])
    expect(await pidAt({ port })).toBe(first)

    const from = f.events.length
    const pending = cli('upgrade', '--socket', ctl)
    const hanging = await f.waitFor((e) => e.event === 'hanging', 15_000, from)
    const queued = cli('upgrade', '--socket', ctl)
    await new Promise((r) => setTimeout(r, 300))
    // The release on disk when the second request came: the follow-up starts it.
    await f.admin(first, '/next?FIXTURE_MODE=ok')
    // Ending the stuck child settles the first request; the follow-up starts then.
    process.kill(hanging.pid, 'SIGKILL')
    expect(await pending).toMatchObject({ status: 1, answer: { ok: false, code: 'ERR_CHILD_EXITED' } })
    const followUp = await queued
    expect(followUp).toMatchObject({ status: 0, answer: { ok: true } })
    expect(await pidAt({ port })).toBe(followUp.answer?.pid)
  })

  it('bad commands get ERR_BAD_COMMAND; a command without newline before EOF is read; the CLI refuses bad usage with status 2', async () => {
    const { f, ctl } = await start()
    for (const text of ['frobnicate\n', '\n', 'status extra\n', 'upgrade now\n', 'upgrade 0\n', 'upgrade 1 2\n', 'UPGRADE\n', `${'x'.repeat(2000)}`]) {
      expect(await raw(ctl, text), JSON.stringify(text.slice(0, 20))).toMatchObject({ ok: false, code: 'ERR_BAD_COMMAND' })
    }
    expect(await raw(ctl, 'status', true)).toEqual({ ok: true, pid: f.current, hasParent: false })
    expect(await raw(ctl, 'status\r\n')).toEqual({ ok: true, pid: f.current, hasParent: false })

    for (const args of [[], ['upgrade', 'a/b'], ['upgrade', 'app', '--socket', ctl], ['status', 'one', 'two'], ['reload', '--socket', ctl], ['upgrade', '--socket', ctl, '--timeout', 'soon'], ['status', '--socket', ctl, '--timeout', '0'], ['upgrade', '--socket', ctl, '--bogus']]) {
      const r = await cli(...args)
      expect(r.status, args.join(' ')).toBe(2)
      // The usage lists `handover run` first, then upgrade and status.
      expect(r.stderr).toMatch(/^handover: .*\nusage: handover run .*\n\s+handover upgrade/)
    }
    expect(await cli('upgrade', '--socket', join(dir, 'missing.ctl'))).toMatchObject({ status: 1, answer: { ok: false, code: 'ENOENT' } })
    // Nothing above upgraded anything.
    expect(f.pids.size).toBe(1)
  })

  it('controlSocketMode; a second instance on the same socket fails; an abstract name is refused', async () => {
    const { f, ctl } = await start({ FIXTURE_CONTROL_MODE: '660' })
    expect(statSync(ctl).mode & 0o777).toBe(0o660)

    const clash = await Fixture.start({ FIXTURE_CONTROL_SOCKET: ctl }, { waitFor: 'create-failed' })
    expect(clash.events.find((e) => e.event === 'create-failed')).toMatchObject({ code: 'EADDRINUSE' })
    // The failed instance left the running one's socket alone.
    expect(await cli('status', '--json', '--socket', ctl)).toMatchObject({ status: 0, answer: { pid: f.current } })

    const abstract = await Fixture.start({ FIXTURE_CONTROL_SOCKET: '@handover-ctl' }, { waitFor: 'create-failed' })
    expect(abstract.events.find((e) => e.event === 'create-failed')).toMatchObject({ code: 'ERR_INVALID_OPTION' })
  })

  it('--version prints the package version; --pid-file is refused with a pointer to --socket; a directory or a file is named as not a socket', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    for (const flag of ['--version', '-v']) {
      const out = await new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(process.execPath, [CLI, flag], (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout })))
      expect(out).toEqual({ code: 0, stdout: `${version}\n` })
    }

    const pidFile = await cli('status', '--pid-file', join(dir, 'app.pid'))
    expect(pidFile.status).toBe(2)
    expect(pidFile.stderr).toMatch(/^handover: --pid-file is not supported: .*controlSocket option and pass that path as --socket/)

    const directory = join(dir, 'a-directory')
    mkdirSync(directory)
    expect(await cli('status', '--json', '--socket', directory)).toMatchObject({
      status: 1, answer: { ok: false, code: 'ENOTSOCK', message: `cannot reach ${directory}: ${directory} is a directory, not a control socket` },
    })
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    expect(await cli('upgrade', '--socket', file)).toMatchObject({
      status: 1, answer: { ok: false, code: 'ENOTSOCK', message: `cannot reach ${file}: ${file} is not a socket` },
    })
  })
})
