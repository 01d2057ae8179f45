// Safe deploys under `handover run` (issue 20): no traffic before a new
// worker is ready, the ready probe, probation (and a canary with an
// error-rate guard) in which a bad release is rolled back before it costs
// more than its share, and --keep-old with `handover rollback`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { cli as controlCli } from './helpers/control.js'
import { waitUntil } from './helpers/processes.mjs'
import { RecordingLoad } from './helpers/probe-load.js'
import { killSupervised, Supervised } from './helpers/supervisor.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-safe-run-'))
afterEach(killSupervised)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function release(file: string, config: Record<string, unknown>): void {
  writeFileSync(file, JSON.stringify(config))
}

async function supervised(flags: string[]): Promise<{ s: Supervised; port: number; config: string; socket: string }> {
  const port = await freePort()
  const config = join(dir, `config-${port}.json`)
  const socket = join(dir, `ctl-${port}.sock`)
  release(config, { release: 'r0' })
  const s = await Supervised.start(['-w', '2', '--control-socket', socket, ...flags], 'behaving.mjs', { PORT: String(port), CONFIG_FILE: config })
  return { s, port, config, socket }
}

describe('handover run: no traffic before ready', () => {
  it('a new worker inside holdReady() for 3 s answers none of the requests sent meanwhile', async () => {
    const { s, port, config, socket } = await supervised([])
    const load = new RecordingLoad(port)
    try {
      release(config, { release: 'r1', holdMs: 3000 })
      const upgrade = controlCli('upgrade', '--socket', socket)
      await s.waitForLine(/^listening \d+ r1/, 15_000)
      const listenedAt = Date.now()
      await s.waitForLine(/^released \d+ r1/, 15_000)
      const releasedAt = Date.now()
      expect(await upgrade).toMatchObject({ status: 0, answer: { ok: true, generation: 2 } })
      await waitUntil(() => load.samples.some((x) => x.body?.endsWith(' r1')), 5_000, 'the new release to answer')
      const during = load.samples.filter((x) => x.t > listenedAt && x.t < releasedAt - 50)
      expect(during.length).toBeGreaterThan(20)
      expect(during.filter((x) => x.body?.endsWith(' r1'))).toEqual([])
    } finally {
      await load.stop()
    }
    expect(load.failures).toEqual([])
  })

  it('--ready-probe against a release answering 503 there: the upgrade fails with ERR_NOT_HEALTHY, and that release answers no request', async () => {
    const { port, config, socket } = await supervised(['--ready-probe', '/healthz', '--ready-timeout', '3000'])
    const load = new RecordingLoad(port)
    let failed
    try {
      release(config, { release: 'sick', health: 503 })
      failed = await controlCli('upgrade', '--socket', socket)
      release(config, { release: 'r2' })
      expect(await controlCli('upgrade', '--socket', socket)).toMatchObject({ status: 0 })
      await waitUntil(() => load.samples.some((x) => x.body?.endsWith(' r2')), 5_000, 'the healthy release to answer')
    } finally {
      await load.stop()
    }
    expect(failed.status).toBe(1)
    expect(failed.answer).toMatchObject({ ok: false, code: 'ERR_NOT_HEALTHY' })
    expect(failed.answer?.message).toMatch(/ready probe GET \/healthz did not get a 2xx within 3000 ms; its last answer was 503: "\d+ sick health 503"/)
    expect(load.releases().sick).toBeUndefined()
    expect(load.failures).toEqual([])
  })
})

describe('handover run: probation', () => {
  it('--probation: a release crashing 300 ms after ready fails the upgrade (exit 1 with the code), the old release serves throughout', async () => {
    const { port, config, socket } = await supervised(['--probation', '2000'])
    const load = new RecordingLoad(port)
    let failed
    try {
      release(config, { release: 'crashy', crashAfterMs: 300 })
      failed = await controlCli('upgrade', '--socket', socket)
      await new Promise((r) => setTimeout(r, 500))
    } finally {
      await load.stop()
    }
    expect(failed.status).toBe(1)
    expect(failed.answer).toMatchObject({ ok: false, code: 'ERR_CHILD_EXITED' })
    expect(failed.answer?.message).toMatch(/during the 2000 ms probation/)
    expect(load.samples.at(-1)?.body).toMatch(/ r0$/)
    console.log(`safe-deploys crash in probation: ${load.samples.length} requests, ${load.failures.length} failed, longest gap ${load.longestGap()} ms`)
    expect(load.longestGap()).toBeLessThan(1_000)
    expect(load.failures.length).toBeLessThanOrEqual(Math.ceil(load.samples.length / 100))
  })

  it('--canary 1 --probation 5000 --max-error-rate 0.05: a release answering 500 on 20% is rolled back within the probation and 1 s; clients see under 5% 5xx', async () => {
    const { s, port, config, socket } = await supervised(['--canary', '1', '--probation', '5000', '--max-error-rate', '0.05'])
    const load = new RecordingLoad(port)
    let failed
    let took = 0
    try {
      await new Promise((r) => setTimeout(r, 300))
      release(config, { release: 'flaky', errorRate: 0.2 })
      const started = Date.now()
      const upgrade = controlCli('upgrade', '--socket', socket)
      // The canary alone is started, and shows as in its probation.
      await s.waitForLine(/^listening \d+ flaky/, 15_000)
      await waitUntil(() => s.status(socket).workers.some((w) => w.state === 'probation'), 5_000, 'the canary in its probation')
      failed = await upgrade
      took = Date.now() - started
      await new Promise((r) => setTimeout(r, 300))
    } finally {
      await load.stop()
    }
    expect(failed.status).toBe(1)
    expect(failed.answer).toMatchObject({ ok: false, code: 'ERR_NOT_HEALTHY' })
    expect(failed.answer?.message).toMatch(/the new workers answered \d+\.\d% of their requests with 5xx during the 5000 ms probation .* over the 5\.0% allowed/)
    expect(took).toBeLessThan(5_000 + 1_000 + 3_000)
    // One canary of two new workers: only it answered for the flaky release.
    expect(s.lines.filter((l) => /^listening \d+ flaky/.test(l))).toHaveLength(1)
    const serverErrors = load.samples.filter((x) => x.status === 500).length
    console.log(`safe-deploys canary: rolled back ${took} ms after the upgrade was asked; the client saw ${serverErrors} 5xx of ${load.samples.length} requests (${(100 * serverErrors / load.samples.length).toFixed(2)}%); ${failed.answer?.message}`)
    expect(serverErrors / load.samples.length).toBeLessThan(0.05)
    expect(load.samples.filter((x) => x.error !== undefined)).toEqual([])
    expect(load.samples.at(-1)?.body).toMatch(/ r0$/)
    // The first generation had nothing to fall back to: no canary, no probation.
    expect(Number(/^handover: generation 1 ready \(2 workers\) in (\d+) ms/m.exec(s.lines.join('\n'))?.[1])).toBeLessThan(5_000)
    // A healthy release passes the same guard: the canary's probation, then the rest.
    release(config, { release: 'r2' })
    const healthy = await controlCli('upgrade', '--socket', socket)
    expect(healthy).toMatchObject({ status: 0, answer: { ok: true, generation: 3 } })
    expect(s.status(socket).workers.filter((w) => w.state === 'ready').map((w) => w.generation)).toEqual([3, 3])
  })
})

describe('handover run: --keep-old and handover rollback', () => {
  it('the kept release serves again within 1 s, with 0 failed requests, and the newer one serves nothing 500 ms later', async () => {
    const { s, port, config, socket } = await supervised(['--keep-old', '20000'])
    const load = new RecordingLoad(port)
    try {
      release(config, { release: 'r1' })
      expect(await controlCli('upgrade', '--socket', socket)).toMatchObject({ status: 0, answer: { generation: 2 } })
      await waitUntil(() => load.samples.some((x) => x.body?.endsWith(' r1')), 5_000, 'r1 to answer')
      const st = s.status(socket)
      expect(st.workers.filter((w) => w.state === 'kept').map((w) => w.generation)).toEqual([1, 1])
      const asked = Date.now()
      const back = await controlCli('rollback', '--socket', socket)
      expect(back).toMatchObject({ status: 0, answer: { ok: true, generation: 1 } })
      await waitUntil(() => load.samples.some((x) => x.t > asked && x.body?.endsWith(' r0')), 1_000, 'r0 to answer again')
      const firstBack = load.samples.find((x) => x.t > asked && x.body?.endsWith(' r0'))
      console.log(`safe-deploys rollback: handover rollback exited after ${back.elapsed} ms; the kept release answered a client ${firstBack ? firstBack.t - asked : '?'} ms after the command started`)
      await new Promise((r) => setTimeout(r, 500))
      const settled = Date.now()
      await new Promise((r) => setTimeout(r, 700))
      expect(load.samples.filter((x) => x.t > settled && x.body?.endsWith(' r1'))).toEqual([])
      // Nothing kept any more: a second rollback is refused.
      expect(await controlCli('rollback', '--socket', socket)).toMatchObject({ status: 1, answer: { code: 'ERR_NO_ROLLBACK' } })
    } finally {
      await load.stop()
    }
    expect(load.failures).toEqual([])
  })

  it('without --keep-old there is nothing to roll back to: ERR_NO_ROLLBACK', async () => {
    const { socket } = await supervised([])
    expect(await controlCli('upgrade', '--socket', socket)).toMatchObject({ status: 0 })
    const r = await controlCli('rollback', '--socket', socket)
    expect(r).toMatchObject({ status: 1, answer: { ok: false, code: 'ERR_NO_ROLLBACK' } })
  })
})
