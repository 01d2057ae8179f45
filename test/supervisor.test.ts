// `handover run`: a supervisor whose pid never changes, N workers per
// generation, one shared socket per address, restarts, signals and the
// control socket, all with real processes.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, get, loadLoop } from './helpers/clients.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'
import { nodeKeepAliveLoop } from './helpers/http-clients.js'
import { cli, killSupervised, Supervised } from './helpers/supervisor.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-run-'))
afterEach(killSupervised)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const unique = (name: string): string => join(dir, `${name}-${Math.random().toString(36).slice(2)}`)

describe('handover run', () => {
  it('2 workers through 5 upgrades under fresh and keep-alive load: no failed request, one supervisor pid, every worker answering', async () => {
    const port = await freePort()
    const socket = unique('ctl.sock')
    const s = await Supervised.start(['-w', '2', '--control-socket', socket], 'worker.mjs', { PORT: String(port) })
    const first = s.status(socket)
    expect(first).toMatchObject({ ok: true, pid: s.pid, generation: 1 })
    expect(first.workers).toHaveLength(2)
    expect(first.workers.every((w) => w.state === 'ready' && w.generation === 1 && w.restarts === 0)).toBe(true)

    const fresh = loadLoop({ port }, 4)
    const keepAlive = nodeKeepAliveLoop(port, 4)
    await new Promise((r) => setTimeout(r, 200))
    for (let i = 0; i < 5; i++) {
      const { status, answer } = cli(['upgrade', '--socket', socket])
      expect(status).toBe(0)
      expect(answer).toMatchObject({ ok: true, generation: i + 2 })
      await new Promise((r) => setTimeout(r, 150))
    }
    await Promise.all([fresh.stop(), keepAlive.stop()])
    expect(fresh.errors).toEqual({})
    expect(keepAlive.errors).toEqual({})

    const last = s.status(socket)
    expect(last.pid).toBe(s.pid)
    expect(last.generation).toBe(6)
    const serving = last.workers.filter((w) => w.generation === 6)
    expect(serving).toHaveLength(2)
    // Both workers of the last generation took connections (a shared socket, not one favourite).
    const answered = new Set<number>()
    for (let i = 0; i < 200 && answered.size < 2; i++) answered.add(Number((await get({ port })).body))
    expect([...answered].sort()).toEqual(serving.map((w) => w.pid).sort())
    // Old workers drained and exited.
    await waitUntil(() => s.workerPids().filter((pid) => !serving.some((w) => w.pid === pid)).every((pid) => !isAlive(pid)), 10_000, 'old workers to exit')

    process.kill(s.pid, 'SIGTERM')
    expect(await s.exited()).toEqual({ code: 0, signal: null })
    expect(serving.every((w) => !isAlive(w.pid))).toBe(true)
    expect(existsSync(socket)).toBe(false)
  })

  it('a failed generation: every new worker killed, the old one keeps serving, the CLI exits 1 with the code', async () => {
    const port = await freePort()
    const socket = unique('ctl.sock')
    const failFile = unique('fail')
    const s = await Supervised.start(['-w', '2', '--control-socket', socket], 'worker.mjs', { PORT: String(port), FAIL_FILE: failFile })
    const before = s.status(socket)
    writeFileSync(failFile, '')
    const { status, stderr, answer } = cli(['upgrade', '--socket', socket])
    expect(status).toBe(1)
    expect(answer).toMatchObject({ ok: false, code: 'ERR_CHILD_EXITED' })
    expect(stderr).toMatch(/ERR_CHILD_EXITED/)
    const after = s.status(socket)
    expect(after.generation).toBe(1)
    expect(after.workers.map((w) => w.pid).sort()).toEqual(before.workers.map((w) => w.pid).sort())
    expect(before.workers.map((w) => w.pid)).toContain(Number((await get({ port })).body))
    await s.waitForLine(/^handover: upgrade failed: ERR_CHILD_EXITED/)
  })

  it('concurrent upgrades: the second is queued, and answered with the follow-up generation', async () => {
    const port = await freePort()
    const socket = unique('ctl.sock')
    const s = await Supervised.start(['-w', '2', '--control-socket', socket], 'worker.mjs', { PORT: String(port) })
    const { spawn } = await import('node:child_process')
    const { CLI } = await import('./helpers/control.js')
    const run = (): Promise<string> => new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, 'upgrade', '--socket', socket], { stdio: ['ignore', 'pipe', 'ignore'] })
      let out = ''
      child.stdout.on('data', (c: Buffer) => (out += c))
      child.on('exit', () => resolve(out))
    })
    const answers = (await Promise.all([run(), run()])).map((o) => JSON.parse(o) as { ok: boolean; generation?: number })
    expect(answers.map((a) => a.ok)).toEqual([true, true])
    expect(answers.map((a) => a.generation).sort()).toEqual([2, 3])
    await s.waitForLine(/^handover: upgrade requested during generation 2's start: queued \(1 waiting\)/)
  })

  it('a worker that dies is restarted with backoff (100 ms, then 200 ms) while the other keeps serving', async () => {
    const port = await freePort()
    const socket = unique('ctl.sock')
    const s = await Supervised.start(['-w', '2', '--control-socket', socket], 'worker.mjs', { PORT: String(port) })
    const [victim, other] = s.status(socket).workers
    process.kill(victim.pid, 'SIGKILL')
    await s.waitForLine(new RegExp(`^handover: worker ${victim.pid} exited with signal SIGKILL, restarting in 100 ms`))
    await waitUntil(() => s.status(socket).workers.filter((w) => w.state === 'ready').length === 2, 10_000, 'a replacement')
    const replaced = s.status(socket).workers.find((w) => w.pid !== other.pid)!
    expect(replaced).toMatchObject({ generation: 1, restarts: 1 })
    process.kill(replaced.pid, 'SIGKILL')
    await s.waitForLine(new RegExp(`^handover: worker ${replaced.pid} exited with signal SIGKILL, restarting in 200 ms`))
    expect(Number((await get({ port })).body)).toBeGreaterThan(0)
    expect(isAlive(other.pid)).toBe(true)
  })

  it('a SIGKILLed supervisor: every worker sees EOF, drains its requests and exits; no orphan keeps the port', async () => {
    const port = await freePort()
    const socket = unique('ctl.sock')
    const s = await Supervised.start(['-w', '2', '--control-socket', socket], 'worker.mjs', { PORT: String(port), SLOW_MS: '500' })
    const workers = s.status(socket).workers.map((w) => w.pid)
    const slow = get({ port }, '/slow')
    await new Promise((r) => setTimeout(r, 100))
    process.kill(s.pid, 'SIGKILL')
    expect((await slow).status).toBe(200)
    await waitUntil(() => workers.every((pid) => !isAlive(pid)), 10_000, 'orphaned workers to exit')
    await expect(get({ port })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('--rolling: one worker at a time; a failure half-way leaves the replaced ones serving, and status says so', async () => {
    const port = await freePort()
    const socket = unique('ctl.sock')
    const arm = unique('arm')
    const s = await Supervised.start(['-w', '2', '--rolling', '--control-socket', socket], 'worker.mjs', { PORT: String(port), ARM_FILE: arm, MARK_FILE: unique('mark') })
    const fresh = loadLoop({ port }, 4)
    expect(cli(['upgrade', '--socket', socket]).status).toBe(0)
    let st = s.status(socket)
    expect(st.generation).toBe(2)
    expect(st.workers.filter((w) => w.state === 'ready').map((w) => w.generation)).toEqual([2, 2])

    // Armed: the first new worker starts, the second exits.
    writeFileSync(arm, '')
    const failed = cli(['upgrade', '--socket', socket])
    await fresh.stop()
    expect(failed.status).toBe(1)
    expect(failed.answer).toMatchObject({ code: 'ERR_CHILD_EXITED' })
    st = s.status(socket)
    expect(st.workers.filter((w) => w.state === 'ready').map((w) => w.generation)).toEqual([3, 2])
    expect(st.generation).toBe(3)
    expect(fresh.errors).toEqual({})
  })

  it('SIGINT stops gracefully, finishing a request in flight; a second SIGINT forces', async () => {
    const port = await freePort()
    const s = await Supervised.start(['-w', '1'], 'worker.mjs', { PORT: String(port), SLOW_MS: '600' })
    const slow = get({ port }, '/slow')
    await new Promise((r) => setTimeout(r, 100))
    process.kill(s.pid, 'SIGINT')
    expect(await slow).toMatchObject({ status: 200 })
    expect(await s.exited()).toEqual({ code: 0, signal: null })

    const port2 = await freePort()
    const t = await Supervised.start(['-w', '1', '--drain-timeout', '60000'], 'worker.mjs', { PORT: String(port2), SLOW_MS: '30000' })
    const stuck = get({ port: port2 }, '/slow').catch((err: NodeJS.ErrnoException) => err.code)
    await new Promise((r) => setTimeout(r, 100))
    process.kill(t.pid, 'SIGINT')
    await t.waitForLine(/SIGINT: stopping/)
    process.kill(t.pid, 'SIGINT')
    expect(await t.exited()).toEqual({ code: 0, signal: null })
    expect(await stuck).toBe('ECONNRESET')
  })

  it('SIGHUP to the supervisor upgrades; a worker\'s own upg.upgrade() (an API app) asks the supervisor', async () => {
    const port = await freePort()
    const socket = unique('ctl.sock')
    const s = await Supervised.start(['-w', '2', '--control-socket', socket], 'api.mjs', { PORT: String(port) })
    process.kill(s.pid, 'SIGHUP')
    await s.waitForLine(/^handover: generation 2 ready \(2 workers\)/)
    const worker = s.status(socket).workers.find((w) => w.generation === 2)!
    process.kill(worker.pid, 'SIGHUP')
    const [, pid] = await s.waitForLine(/^api upgraded to (\d+)/)
    const st = s.status(socket)
    expect(st.generation).toBe(3)
    expect(st.workers.filter((w) => w.generation === 3).map((w) => w.pid)).toContain(Number(pid))
  })

  it('--pid-file holds the supervisor\'s pid for its whole life and goes at the stop; bad usage exits 2', async () => {
    const pidFile = unique('run.pid')
    const port = await freePort()
    const s = await Supervised.start(['--pid-file', pidFile], 'worker.mjs', { PORT: String(port) })
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(s.pid))
    process.kill(s.pid, 'SIGHUP')
    await s.waitForLine(/^handover: generation 2 ready/)
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(s.pid))
    process.kill(s.pid, 'SIGTERM')
    await s.exited()
    expect(existsSync(pidFile)).toBe(false)

    expect(cli(['run', '--workers', 'lots', 'app.js']).status).toBe(2)
    expect(cli(['run', '--workers', '2']).stderr).toMatch(/no script to run/)
  })
})
