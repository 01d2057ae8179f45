import { chmodSync, existsSync, linkSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, pidAt } from './helpers/clients.mjs'
import { cli, cliWithin, raw } from './helpers/control.js'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const dir = mkdtempSync(join(tmpdir(), 'handover-harden-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Accepts and never answers: a stopped (SIGSTOP) or wedged server, as the CLI sees it. */
async function silentServer(): Promise<{ path: string; close: () => void }> {
  const path = join(dir, `silent-${Math.random().toString(36).slice(2)}.ctl`)
  const held: net.Socket[] = []
  const server = net.createServer((socket) => held.push(socket))
  await new Promise<void>((resolve) => server.listen(path, resolve))
  return { path, close: () => { for (const s of held) s.destroy(); server.close() } }
}

describe('the handover CLI never waits forever', () => {
  it('status gives up after its default 5 s with exit status 3, saying what it waited for', async () => {
    const silent = await silentServer()
    try {
      const r = await cliWithin(20_000, 'status', '--json', '--socket', silent.path)
      expect(r.status).toBe(3)
      expect(r.elapsed).toBeGreaterThanOrEqual(4_900)
      expect(r.elapsed).toBeLessThan(12_000)
      expect(r.answer).toMatchObject({ ok: false, code: 'ERR_TIMEOUT' })
      expect(r.stderr).toMatch(/^handover: status failed: ERR_TIMEOUT: no answer to "status" from .*silent-.*\.ctl within 5000 ms/)
    } finally {
      silent.close()
    }
  })

  it('status --timeout and upgrade --timeout bound the wait the same way', async () => {
    const silent = await silentServer()
    try {
      const status = await cliWithin(20_000, 'status', '--json', '--socket', silent.path, '--timeout', '300')
      expect(status).toMatchObject({ status: 3, answer: { ok: false, code: 'ERR_TIMEOUT' } })
      expect(status.elapsed).toBeLessThan(4_000)
      // upgrade: the server's own deadline plus the grace it needs to kill and reap the child.
      const upgrade = await cliWithin(20_000, 'upgrade', '--socket', silent.path, '--timeout', '100')
      expect(upgrade).toMatchObject({ status: 3, answer: { ok: false, code: 'ERR_TIMEOUT' } })
      expect(upgrade.stderr).toMatch(/no answer to "upgrade 100" from .* within 5100 ms/)
      expect(upgrade.elapsed).toBeLessThan(12_000)
    } finally {
      silent.close()
    }
  })
})

async function start(extra: Record<string, string> = {}): Promise<{ f: Fixture; ctl: string; port: number }> {
  const ctl = join(dir, `app-${Math.random().toString(36).slice(2)}.ctl`)
  const port = await freePort()
  const f = await Fixture.start({ FIXTURE_CONTROL_SOCKET: ctl, FIXTURE_ADDRESS: `127.0.0.1:${port}`, ...extra })
  return { f, ctl, port }
}

/**
 * A second name for the control socket, so the test can still reach it once
 * its path is gone: connect() goes by the inode, as for the original name.
 */
function keepReachable(ctl: string): string {
  const link = `${ctl}.link`
  linkSync(ctl, link)
  return link
}

describe('the control socket file may be deleted or replaced', () => {
  it('deleted (a tmp cleaner): upgrades still succeed, and status says the path is gone', async () => {
    const { f, ctl, port } = await start()
    const link = keepReachable(ctl)
    unlinkSync(ctl)
    expect(await raw(link, 'status\n')).toEqual({ ok: true, pid: f.current, hasParent: false, socketPathMissing: true })

    const { newPid } = await f.handoff()
    expect(await pidAt({ port })).toBe(newPid)
    expect(await raw(link, 'status\n')).toEqual({ ok: true, pid: newPid, hasParent: true, socketPathMissing: true })
    // The next generation too, through the CLI; nothing recreates the path.
    const again = await cli('upgrade', '--socket', link)
    expect(again).toMatchObject({ status: 0, answer: { ok: true } })
    expect(existsSync(ctl)).toBe(false)
  })

  it('replaced by a symlink: its target is never chmodded, and status says the path is not the socket', async () => {
    const { f, ctl } = await start()
    const victim = join(dir, `victim-${Math.random().toString(36).slice(2)}`)
    writeFileSync(victim, 'secret\n')
    chmodSync(victim, 0o640)
    const link = keepReachable(ctl)
    unlinkSync(ctl)
    symlinkSync(victim, ctl)

    const { newPid } = await f.handoff()
    expect(statSync(victim).mode & 0o777).toBe(0o640)
    expect(await raw(link, 'status\n')).toEqual({ ok: true, pid: newPid, hasParent: true, socketPathReplaced: true })
    expect(await cli('upgrade', '--socket', link)).toMatchObject({ status: 0, answer: { ok: true } })
    expect(statSync(victim).mode & 0o777).toBe(0o640)

    // The final stop leaves the symlink and its target alone.
    const last = f.current
    process.kill(last, 'SIGTERM')
    await waitUntil(() => !isAlive(last), 10_000, 'the last generation to exit')
    expect(lstatSync(ctl).isSymbolicLink()).toBe(true)
    expect(readFileSync(victim, 'utf8')).toBe('secret\n')
  })
})

describe('the control socket bounds its clients', () => {
  const DEADLINE = 1_500

  /** `n` connections that send nothing; each records when the server closed it. */
  async function idle(ctl: string, n: number, started: number): Promise<Array<{ socket: net.Socket; closedAt?: number }>> {
    return Promise.all(Array.from({ length: n }, () => new Promise<{ socket: net.Socket; closedAt?: number }>((resolve) => {
      const c: { socket: net.Socket; closedAt?: number } = { socket: net.connect(ctl) }
      c.socket.on('error', () => {})
      c.socket.on('close', () => (c.closedAt = Date.now() - started))
      c.socket.on('connect', () => resolve(c))
      c.socket.on('close', () => resolve(c))
    })))
  }

  it('200 idle connections, however they dribble, go at the command deadline; status is answered while they are held', async () => {
    const { f, ctl } = await start({ FIXTURE_CONTROL_DEADLINE: String(DEADLINE) })
    const started = Date.now()
    const conns = await idle(ctl, 200, started)
    // Bytes, but never a line: they do not move the deadline.
    const dribble = setInterval(() => { for (const c of conns) if (!c.socket.destroyed) c.socket.write('x') }, 100)
    try {
      // Nothing is refused for being one too many: 200 is under the bound.
      expect(conns.filter((c) => c.closedAt !== undefined)).toHaveLength(0)
      expect(await cli('status', '--json', '--socket', ctl)).toMatchObject({ status: 0, answer: { ok: true, pid: f.current } })
      await waitUntil(() => conns.every((c) => c.closedAt !== undefined), DEADLINE + 5_000, 'the idle connections to be dropped')
    } finally {
      clearInterval(dribble)
    }
    for (const c of conns) expect(c.closedAt).toBeGreaterThanOrEqual(DEADLINE - 100)
  })

  it('over the bound, the oldest idle connection makes room: 100 idle against a bound of 32 leave a status answered', async () => {
    const { ctl } = await start({ FIXTURE_CONTROL_MAX: '32', FIXTURE_CONTROL_DEADLINE: '60000' })
    const started = Date.now()
    const conns: Array<{ socket: net.Socket; closedAt?: number }> = []
    // One at a time, so that "oldest" is well defined.
    for (let i = 0; i < 100; i++) conns.push(...await idle(ctl, 1, started))
    await waitUntil(() => conns.filter((c) => c.closedAt === undefined).length <= 32, 5_000, 'the server to evict down to its bound')
    const open = conns.map((c, i) => (c.closedAt === undefined ? i : -1)).filter((i) => i >= 0)
    // The newest survive; the oldest were closed, long before the deadline.
    expect(Math.min(...open)).toBeGreaterThanOrEqual(100 - 32)
    for (const c of conns.slice(0, 100 - 32)) expect(c.closedAt).toBeLessThan(30_000)
    // A client arriving now evicts the oldest idle one and is answered.
    expect(await raw(ctl, 'status\n')).toMatchObject({ ok: true })
    for (const c of conns) c.socket.destroy()
  })

  it('200 concurrent handover status processes while 20 idle connections are held: every one answered', async () => {
    const { f, ctl } = await start()
    const held = await idle(ctl, 20, Date.now())
    try {
      const results = await Promise.all(Array.from({ length: 200 }, () => cliWithin(120_000, 'status', '--json', '--socket', ctl, '--timeout', '60000')))
      const failed = results.filter((r) => r.status !== 0)
      expect(failed.map((r) => r.stderr)).toEqual([])
      for (const r of results) expect(r.answer).toMatchObject({ ok: true, pid: f.current })
    } finally {
      for (const c of held) c.socket.destroy()
    }
  }, 180_000)

  it('1,000 concurrent clients in one process, each sending status once with no retry: every one answered', async () => {
    const { f, ctl } = await start()
    const answers = await Promise.allSettled(Array.from({ length: 1000 }, () => raw(ctl, 'status\n')))
    const rejected = answers.filter((a) => a.status === 'rejected').map((a) => String((a as PromiseRejectedResult).reason))
    expect(rejected).toEqual([])
    for (const a of answers) expect((a as PromiseFulfilledResult<Record<string, unknown>>).value).toMatchObject({ ok: true, pid: f.current })
  }, 60_000)

  it('a connection running an upgrade outlives the deadline: the upgrade timeout bounds it', async () => {
    const { f, ctl } = await start({ FIXTURE_CONTROL_DEADLINE: '500' })
    await f.admin(f.current, '/next?FIXTURE_MODE=hang')
    const r = await cli('upgrade', '--socket', ctl, '--timeout', '2000')
    expect(r).toMatchObject({ status: 1, answer: { ok: false, code: 'ERR_UPGRADE_TIMEOUT' } })
    expect(r.elapsed).toBeGreaterThanOrEqual(2_000)
  })
})
