// `handover run`'s operating options, wired (issue 21), with real processes:
// the default control socket and `handover status` without --socket, the
// status figures, /metrics across upgrades and a crash, the probes through
// upgrades and at SIGTERM with --shutdown-delay, the log prefix and JSON
// events, and --node-args. Each test file has its own XDG_RUNTIME_DIR
// (test/helpers/runtime-dir-setup.ts).
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { freePort, get } from './helpers/clients.mjs'
import { handover, scrape, statusOf } from './helpers/ops.js'
import { isAlive, sleep, waitUntil } from './helpers/processes.mjs'
import { killSupervised, Supervised } from './helpers/supervisor.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-ops-'))
let session = 0
// A runtime directory per test: a supervisor killed at a test's end leaves its socket file, which the next test's `handover status` would list.
beforeEach(() => {
  process.env.XDG_RUNTIME_DIR = mkdtempSync(join(dir, `xdg-${session++}-`))
})
afterEach(killSupervised)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const runtime = (): string => join(process.env.XDG_RUNTIME_DIR as string, 'handover')

describe('the control socket handover run always opens', () => {
  it('named after the script, 0600, found by handover status|upgrade without --socket; removed at the stop', async () => {
    const port = await freePort()
    const s = await Supervised.start(['-w', '2'], 'ops.mjs', { PORT: String(port) })
    const path = join(runtime(), 'ops.sock')
    await s.waitForLine(new RegExp(`^handover: control socket ${path.replace(/[.]/g, '\\.')} \\(handover status ops\\)$`))
    const st = lstatSync(path)
    expect(st.isSocket()).toBe(true)
    expect(st.mode & 0o777).toBe(0o600)
    expect(lstatSync(runtime()).mode & 0o777).toBe(0o700)

    const status = await statusOf()
    expect(status).toMatchObject({ ok: true, pid: s.pid, name: 'ops', generation: 1 })
    expect(status.workers.map((w) => w.slot)).toEqual([0, 1])
    const up = await handover(['upgrade'])
    expect(up.status).toBe(0)
    expect(JSON.parse(up.stdout)).toMatchObject({ ok: true, generation: 2 })
    expect((await statusOf('ops')).generation).toBe(2)

    process.kill(s.pid, 'SIGTERM')
    expect(await s.exited()).toEqual({ code: 0, signal: null })
    expect(existsSync(path)).toBe(false)
  })

  it('a live socket of the same --name refuses the start (EADDRINUSE); the default name steps aside (<name>-<pid>); a stale one after SIGKILL is replaced', async () => {
    const [p1, p2, p3, p4] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
    const api = await Supervised.start(['--name', 'api'], 'ops.mjs', { PORT: String(p1) })
    const second = Supervised.launch(['--name', 'api'], 'ops.mjs', { PORT: String(p2) })
    expect(await second.exited()).toEqual({ code: 1, signal: null })
    expect(second.text).toMatch(/could not start: EADDRINUSE: another handover run already answers as api \(.*api\.sock\): give this one another --name/)
    // The first one was not disturbed.
    expect((await statusOf('api')).pid).toBe(api.pid)

    const a = await Supervised.start([], 'ops.mjs', { PORT: String(p2) })
    const b = await Supervised.start([], 'ops.mjs', { PORT: String(p3) })
    await b.waitForLine(new RegExp(`^handover: another handover run already answers as ops: this one is ops-${b.pid} \\(give --name to choose\\)$`))
    expect((await statusOf('ops')).pid).toBe(a.pid)
    expect((await statusOf(`ops-${b.pid}`)).pid).toBe(b.pid)
    // Three services now: a name is needed, and the error lists them.
    const ambiguous = await handover(['status'])
    expect(ambiguous.status).toBe(1)
    expect(ambiguous.stderr).toMatch(new RegExp(`ERR_AMBIGUOUS_SERVER: 3 servers have control sockets in .*\\(api, ops, ops-${b.pid}\\)`))

    // SIGKILL leaves api.sock behind, listened on by nobody: the next start replaces it.
    const workers = (await statusOf('api')).workers.map((w) => w.pid)
    process.kill(api.pid, 'SIGKILL')
    await api.exited()
    await waitUntil(() => workers.every((pid) => !isAlive(pid)), 10_000, 'the killed supervisor\'s workers to exit')
    expect(lstatSync(join(runtime(), 'api.sock')).isSocket()).toBe(true)
    const again = await Supervised.start(['--name', 'api'], 'ops.mjs', { PORT: String(p4) })
    expect((await statusOf('api')).pid).toBe(again.pid)
  })
})

describe('status, metrics and probes', () => {
  it('the status table and --json carry real figures: slot, RSS, CPU% and requests per worker', async () => {
    const port = await freePort()
    await Supervised.start(['-w', '2'], 'ops.mjs', { PORT: String(port) })
    for (let i = 0; i < 30; i++) expect((await get({ port })).status).toBe(200)
    // Requests come with the workers' pongs, sampled every second.
    let status = await statusOf()
    await waitUntil(async () => {
      status = await statusOf()
      return status.workers.every((w) => w.rss !== undefined && w.cpu !== undefined) && status.workers.reduce((n, w) => n + (w.requests ?? 0), 0) === 30
    }, 10_000, 'the figures of 30 requests in the status')
    for (const w of status.workers) {
      expect(w.rss).toBeGreaterThan(10 * 2 ** 20)
      expect(w.rss).toBeLessThan(2 ** 30)
      expect(w.cpu).toBeGreaterThanOrEqual(0)
      expect(w.restarts).toBe(0)
    }
    const table = await handover(['status'])
    expect(table.status).toBe(0)
    const lines = table.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^ops: supervisor pid \d+, generation 1, 2 workers$/)
    expect(lines[1]).toMatch(/^\s*PID\s+GEN\s+STATE\s+UPTIME\s+RESTARTS\s+RSS\s+CPU%\s+REQUESTS$/)
    const rows = lines.slice(2).map((l) => l.trim().split(/\s+/))
    expect(rows.map((r) => Number(r[0])).sort()).toEqual(status.workers.map((w) => w.pid).sort())
    for (const [, gen, state, uptime, restarts, rss, cpu, requests] of rows) {
      expect([gen, state, restarts]).toEqual(['1', 'ready', '0'])
      expect(uptime).toMatch(/^\d+s$/)
      expect(rss).toMatch(/^\d+(\.\d)?M$/)
      expect(cpu).toMatch(/^\d+\.\d$/)
      expect(Number(requests)).toBeGreaterThanOrEqual(0)
    }
    expect(rows.reduce((n, r) => n + Number(r[7]), 0)).toBe(30)
  })

  it('/metrics after 2 upgrades and a killed worker: upgrades 2, restarts at least 1, workers 2; status says why', async () => {
    const [port, metrics] = await Promise.all([freePort(), freePort()])
    const s = await Supervised.start(['-w', '2', '--metrics', `127.0.0.1:${metrics}`], 'ops.mjs', { PORT: String(port) })
    for (let i = 0; i < 2; i++) expect((await handover(['upgrade'])).status).toBe(0)
    const victim = (await statusOf()).workers[0]
    process.kill(victim.pid, 'SIGKILL')
    await s.waitForLine(new RegExp(`^handover: worker ${victim.pid} exited with signal SIGKILL, restarting in 100 ms$`))
    let status = await statusOf()
    await waitUntil(async () => {
      status = await statusOf()
      return status.workers.filter((w) => w.generation === 3 && w.state === 'ready').length === 2
    }, 10_000, 'the slot to be refilled')
    expect(status.workers[0]).toMatchObject({ slot: 0, restarts: 1, restartReason: 'crash' })
    expect(status.workers[1]).toMatchObject({ slot: 1, restarts: 0 })
    expect(status.workers[1].restartReason).toBeUndefined()

    // handover_workers follows the samples (every second).
    let m = await scrape(metrics)
    await waitUntil(async () => {
      m = await scrape(metrics)
      const pids = status.workers.map((w) => String(w.pid))
      // A worker's loop delay comes with its first pong, a sample after its start.
      return m.value('handover_workers') === 2 &&
        pids.every((pid) => m.value('handover_worker_resident_memory_bytes', { pid }) !== undefined && m.value('handover_worker_event_loop_delay_seconds', { pid }) !== undefined)
    }, 10_000, 'the sample after the restart')
    expect(m.value('handover_upgrades_total', { result: 'success' })).toBe(2)
    expect(m.value('handover_upgrades_total', { result: 'failure' })).toBe(0)
    expect(m.value('handover_upgrade_duration_seconds_count', { result: 'success' })).toBe(2)
    expect(m.value('handover_worker_restarts_total', { reason: 'crash' })).toBeGreaterThanOrEqual(1)
    expect(m.value('handover_worker_restarts_total', { reason: 'watchdog' })).toBe(0)
    // The two old generations drained (4 workers) by themselves.
    await waitUntil(async () => ((await scrape(metrics)).value('handover_drain_duration_seconds_count', { outcome: 'graceful' }) ?? 0) >= 4, 10_000, '4 graceful drains')
    // Only live workers have per-worker series, labelled with their slot and generation.
    const rss = m.samples.filter((x) => x.name === 'handover_worker_resident_memory_bytes')
    expect(rss.map((x) => Number(x.labels.pid)).sort()).toEqual(status.workers.map((w) => w.pid).sort())
    expect(rss.map((x) => x.labels.slot).sort()).toEqual(['0', '1'])
    expect(rss.every((x) => x.labels.generation === '3' && x.value > 10 * 2 ** 20)).toBe(true)
    expect(m.samples.filter((x) => x.name === 'handover_worker_event_loop_delay_seconds')).toHaveLength(2)

    process.kill(s.pid, 'SIGTERM')
    expect(await s.exited()).toEqual({ code: 0, signal: null })
    // The metrics server went with it.
    await expect(get({ port: metrics }, '/metrics', 2_000)).rejects.toThrow()
  })

  it('/readyz sampled every 30 ms through 3 upgrades is always 200; at SIGTERM with --shutdown-delay 1500 it is 503 while the app still answers', async () => {
    const [port, probes] = await Promise.all([freePort(), freePort()])
    const s = await Supervised.start(['-w', '2', '--probes', `127.0.0.1:${probes}`, '--shutdown-delay', '1500'], 'ops.mjs', { PORT: String(port) })
    expect(await get({ port: probes }, '/livez')).toEqual({ status: 200, body: 'ok\n' })

    const seen: Array<number | string> = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        seen.push(await get({ port: probes }, '/readyz', 2_000).then((r) => r.status, (err: NodeJS.ErrnoException) => err.code ?? err.message))
        await sleep(30)
      }
    })()
    for (let i = 0; i < 3; i++) expect((await handover(['upgrade'])).status).toBe(0)
    sampling = false
    await sampler
    expect((await statusOf()).generation).toBe(4)
    expect(seen.length).toBeGreaterThan(10)
    expect(seen.filter((x) => x !== 200)).toEqual([])

    const sigterm = s.lines.length
    process.kill(s.pid, 'SIGTERM')
    await s.waitForLine(/^handover: SIGTERM: stopping in 1500 ms, \/readyz failing meanwhile/, 5_000, sigterm)
    const ready = await get({ port: probes }, '/readyz')
    expect(ready).toEqual({ status: 503, body: 'not ready: shutting down\n' })
    // The app keeps serving while the endpoints go (fresh connections, answered by the last generation).
    const serving = new Set((await statusOf()).workers.map((w) => w.pid))
    for (let i = 0; i < 5; i++) {
      const answer = await get({ port })
      expect(answer.status).toBe(200)
      expect(serving.has(Number(answer.body))).toBe(true)
      await sleep(100)
    }
    expect((await get({ port: probes }, '/readyz')).status).toBe(503)
    expect(s.text).not.toMatch(/handover: stopped/)
    expect(await s.exited()).toEqual({ code: 0, signal: null })
    await expect(get({ port: probes }, '/readyz', 2_000)).rejects.toThrow()
  })

  it('a second SIGTERM during --shutdown-delay cuts it short and kills the workers', async () => {
    const [port, probes] = await Promise.all([freePort(), freePort()])
    const s = await Supervised.start(['-w', '2', '--probes', `127.0.0.1:${probes}`, '--shutdown-delay', '60000'], 'ops.mjs', { PORT: String(port) })
    const workers = (await statusOf()).workers.map((w) => w.pid)
    process.kill(s.pid, 'SIGTERM')
    await s.waitForLine(/^handover: SIGTERM: stopping in 60000 ms/)
    expect((await get({ port: probes }, '/readyz')).status).toBe(503)
    process.kill(s.pid, 'SIGTERM')
    await s.waitForLine(/^handover: SIGTERM again: killing the workers$/)
    expect(await s.exited()).toEqual({ code: 0, signal: null })
    expect(workers.filter(isAlive)).toEqual([])
    await s.waitForLine(/"?worker \d+ was killed \d+ ms into its drain|^handover: stopped$/)
  })
})

describe('logs and Node flags', () => {
  it('--log-prefix: each worker line as [g<generation> w<slot> <pid>] ...; --log-format json: the events as JSON lines', async () => {
    const port = await freePort()
    const s = Supervised.launch(['-w', '2', '--log-prefix', '--log-format', 'json'], 'ops.mjs', { PORT: String(port) })
    await s.waitForLine(/"event":"generation-ready"/)
    expect((await handover(['upgrade'])).status).toBe(0)
    await s.waitForLine(/"event":"generation-ready".*"generation":2/)
    const status = await statusOf()
    for (const w of status.workers) await s.waitForLine(new RegExp(`^\\[g2 w${w.slot + 1} ${w.pid}\\] listening ${w.pid}$`))
    await s.waitForLine(/^\[g1 w1 \d+\] listening \d+$/)
    await s.waitForLine(/^\[g1 w2 \d+\] listening \d+$/)
    // No unprefixed worker line, no text event line.
    expect(s.lines.filter((l) => /^(listening|args) /.test(l))).toEqual([])
    expect(s.lines.filter((l) => l.startsWith('handover: generation'))).toEqual([])
    const events = s.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(events.filter((e) => e.event === 'generation-ready').map((e) => [e.level, e.generation, (e.pids as number[]).length])).toEqual([['info', 1, 2], ['info', 2, 2]])
    for (const e of events) expect(Number.isNaN(Date.parse(e.time as string))).toBe(false)
    // The first generation's graceful drains: debug events, in JSON only.
    await s.waitForLine(/"event":"worker-drained".*"outcome":"graceful"/)
  })

  it('--node-args reaches every worker of every generation, split as a shell would', async () => {
    const port = await freePort()
    const s = await Supervised.start(['-w', '2', '--node-args', '--max-old-space-size=96 --title="ops worker"'], 'ops.mjs', { PORT: String(port) })
    expect((await handover(['upgrade'])).status).toBe(0)
    const pids = [...(await statusOf()).workers.map((w) => w.pid), ...s.workerPids()]
    expect(new Set(pids).size).toBe(4)
    for (const pid of new Set(pids)) {
      const [, args] = await s.waitForLine(new RegExp(`^args ${pid} (.*)$`))
      const execArgv = JSON.parse(args) as string[]
      expect(execArgv.slice(0, 2)).toEqual(['--max-old-space-size=96', '--title=ops worker'])
      expect(execArgv[2]).toBe('--import')
    }
  })
})
