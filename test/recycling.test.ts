// `handover run --max-rss` and `--watchdog` with real processes: a worker
// leaking 40 MB/s is replaced under load with no failed request (its
// replacement ready before it drains), and a worker whose event loop is
// blocked for good, or that is SIGSTOPped, is killed and replaced within
// 2.5 times the watchdog. status and the metrics say why.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { freePort, loadLoop } from './helpers/clients.mjs'
import { nodeKeepAliveLoop } from './helpers/http-clients.js'
import { handover, scrape, statusOf } from './helpers/ops.js'
import { isAlive, sleep, waitUntil } from './helpers/processes.mjs'
import { killSupervised, Supervised, type Status } from './helpers/supervisor.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-recycle-'))
let session = 0
let marks = ''
beforeEach(() => {
  process.env.XDG_RUNTIME_DIR = mkdtempSync(join(dir, `xdg-${session}-`))
  marks = mkdtempSync(join(dir, `marks-${session++}-`))
})
afterEach(killSupervised)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Waits until slot `slot` holds a ready worker other than `pid`; returns the status then. */
async function replaced(slot: number, pid: number, timeoutMs: number): Promise<Status> {
  let status = await statusOf()
  await waitUntil(async () => {
    status = await statusOf()
    const w = status.workers.find((x) => x.slot === slot && x.state === 'ready')
    return w !== undefined && w.pid !== pid && status.workers.filter((x) => x.slot === slot).every((x) => x.pid !== pid || x.state === 'draining')
  }, timeoutMs, `slot ${slot} to hold a new worker in place of ${pid}`)
  return status
}

describe('--max-rss', () => {
  it('a worker leaking 40 MB/s under --max-rss 200M is replaced, its replacement ready before it drains: 0 failed requests under load', async () => {
    const [port, metrics] = await Promise.all([freePort(), freePort()])
    const s = await Supervised.start(['-w', '2', '--max-rss', '200M', '--metrics', `127.0.0.1:${metrics}`], 'ops.mjs', { PORT: String(port), MARK_DIR: marks })
    const before = await statusOf()
    const [leaky, other] = before.workers
    const fresh = loadLoop({ port }, 4)
    const keepAlive = nodeKeepAliveLoop(port, 4)
    await sleep(300)
    writeFileSync(join(marks, `${leaky.pid}.leak`), '')
    // About 4 s to cross 200M from ~45M, a sample a second, then a start.
    const after = await replaced(leaky.slot, leaky.pid, 20_000)
    await waitUntil(() => !isAlive(leaky.pid), 10_000, 'the leaking worker to drain and exit')
    await sleep(300)
    await Promise.all([fresh.stop(), keepAlive.stop()])
    expect(fresh.errors).toEqual({})
    expect(keepAlive.errors).toEqual({})
    expect(fresh.ok + keepAlive.ok).toBeGreaterThan(100)

    const slot = after.workers.find((w) => w.slot === leaky.slot && w.state === 'ready')!
    expect(slot).toMatchObject({ generation: 1, restarts: 1, restartReason: 'max-rss' })
    expect((await handover(['status'])).stdout).toMatch(new RegExp(`^\\s*${slot.pid}\\s+1\\s+ready\\s+\\S+\\s+1 \\(max-rss\\)\\s`, 'm'))
    // Its own RSS, at the next sample: well under the limit.
    let rss: number | undefined
    await waitUntil(async () => (rss = (await statusOf()).workers.find((w) => w.pid === slot.pid)?.rss) !== undefined, 5_000, 'a sample of the replacement')
    expect(rss).toBeLessThan(200 * 2 ** 20)
    // One worker at a time: the other was never touched.
    expect(after.workers.find((w) => w.slot === other.slot)).toMatchObject({ pid: other.pid, restarts: 0 })
    const over = await s.waitForLine(new RegExp(`^handover: worker ${leaky.pid} uses (\\d+)M, over --max-rss 200M: starting its replacement$`))
    expect(Number(over[1])).toBeGreaterThan(200)
    await s.waitForLine(new RegExp(`^handover: worker ${slot.pid} ready in \\d+ ms in place of ${leaky.pid} \\(max-rss\\), which drains$`))
    const m = await scrape(metrics)
    expect(m.value('handover_worker_restarts_total', { reason: 'max-rss' })).toBe(1)
    expect(m.value('handover_worker_restarts_total', { reason: 'crash' })).toBe(0)
    expect(m.value('handover_drain_duration_seconds_count', { outcome: 'graceful' })).toBe(1)
  })
})

describe('--watchdog', () => {
  for (const how of ['a blocked event loop', 'SIGSTOP'] as const) {
    it(`a worker that stops answering (${how}) is killed and replaced within 2.5 x --watchdog; the other keeps serving`, async () => {
      const [port, metrics] = await Promise.all([freePort(), freePort()])
      const watchdog = 2000
      const s = await Supervised.start(['-w', '2', '--watchdog', String(watchdog), '--metrics', `127.0.0.1:${metrics}`], 'ops.mjs', { PORT: String(port), MARK_DIR: marks })
      const [hung, other] = (await statusOf()).workers
      const started = Date.now()
      if (how === 'SIGSTOP') process.kill(hung.pid, 'SIGSTOP')
      else writeFileSync(join(marks, `${hung.pid}.block`), '')
      const after = await replaced(hung.slot, hung.pid, 2.5 * watchdog + 1_000)
      const elapsed = Date.now() - started
      expect(isAlive(hung.pid)).toBe(false)
      // The bound the issue asks for: found (a ping unanswered for the watchdog), killed, and a new worker ready.
      expect(elapsed).toBeLessThanOrEqual(2.5 * watchdog)
      const silent = await s.waitForLine(new RegExp(`^handover: worker ${hung.pid} has not answered for (\\d+) ms \\(--watchdog\\): killing it$`))
      // The line rounds the wait (2000.4 ms says 2000); the kill itself needs a wait over the watchdog.
      expect(Number(silent[1])).toBeGreaterThanOrEqual(watchdog)
      await s.waitForLine(new RegExp(`^handover: worker ${hung.pid} \\(watchdog\\) exited with signal SIGKILL, restarting in 100 ms$`))
      expect(after.workers.find((w) => w.slot === hung.slot && w.state === 'ready')).toMatchObject({ restarts: 1, restartReason: 'watchdog' })
      expect(after.workers.find((w) => w.slot === other.slot)).toMatchObject({ pid: other.pid, restarts: 0 })
      const m = await scrape(metrics)
      expect(m.value('handover_worker_restarts_total', { reason: 'watchdog' })).toBe(1)
      expect(m.value('handover_worker_restarts_total', { reason: 'crash' })).toBe(0)
    })
  }

  it('healthy workers under a short --watchdog are left alone', async () => {
    const port = await freePort()
    // Every ping is answered within a tick of being sent: 3 s of quiet service, no replacement.
    const s = await Supervised.start(['-w', '2', '--watchdog', '300'], 'ops.mjs', { PORT: String(port), MARK_DIR: marks })
    const before = (await statusOf()).workers.map((w) => w.pid)
    await sleep(3_000)
    expect((await statusOf()).workers.map((w) => [w.pid, w.restarts])).toEqual(before.map((pid) => [pid, 0]))
    expect(s.text).not.toMatch(/has not answered/)
  })
})
