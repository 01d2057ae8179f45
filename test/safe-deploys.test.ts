// Safe deploys (issue 20): a new generation takes no connection before it is
// ready, a ready probe keeps a sick release out, and a release that dies in
// its probation never takes the service down, under the API's preload and
// the Upgrader itself. (`handover run`'s side: test/safe-deploys-run.test.ts.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { RecordingLoad } from './helpers/probe-load.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-safe-'))
afterEach(killPreloadApps)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function release(file: string, config: Record<string, unknown>): void {
  writeFileSync(file, JSON.stringify(config))
}

async function preloadApp(env: Record<string, string> = {}): Promise<{ app: PreloadApp; port: number; config: string }> {
  const port = await freePort()
  const config = join(dir, `config-${port}.json`)
  release(config, { release: 'r0' })
  const app = await PreloadApp.start('behaving.mjs', { PORT: String(port), CONFIG_FILE: config, ...env }, { wait: /^listening \d+ r0/ })
  return { app, port, config }
}

describe('no traffic before ready, under the preload', () => {
  it('a new generation inside holdReady() for 3 s answers none of the requests sent meanwhile', async () => {
    const { app, port, config } = await preloadApp()
    const load = new RecordingLoad(port)
    try {
      release(config, { release: 'r1', holdMs: 3000 })
      const from = app.lines.length
      process.kill(app.current, 'SIGHUP')
      const [, held] = await app.waitForLine(/^listening (\d+) r1/, 10_000, from)
      const listenedAt = Date.now()
      await app.waitForLine(new RegExp(`^released ${held} r1`), 10_000, from)
      const releasedAt = Date.now()
      await app.waitForLine(/^handover: upgraded to pid \d+/, 10_000, from)
      await new Promise((r) => setTimeout(r, 300))
      const during = load.samples.filter((s) => s.t > listenedAt && s.t < releasedAt - 50)
      expect(during.length).toBeGreaterThan(20)
      expect(during.filter((s) => s.body?.endsWith(' r1'))).toEqual([])
      expect(load.samples.some((s) => s.body?.endsWith(' r1'))).toBe(true)
    } finally {
      await load.stop()
    }
    expect(load.failures).toEqual([])
  })
})

describe('the ready probe, under the preload (HANDOVER_READY_PROBE)', () => {
  it('a release answering 503 there: the upgrade fails with ERR_NOT_HEALTHY and its last answer, and that release answers no request', async () => {
    const { app, port, config } = await preloadApp({ HANDOVER_READY_PROBE: '/healthz', HANDOVER_READY_TIMEOUT: '3000' })
    const first = app.current
    const load = new RecordingLoad(port)
    try {
      release(config, { release: 'sick', health: 503 })
      const from = app.lines.length
      process.kill(first, 'SIGHUP')
      const [line] = await app.waitForLine(/^handover: upgrade failed: .*/, 15_000, from)
      expect(line).toMatch(/^handover: upgrade failed: ERR_NOT_HEALTHY: .*ready probe GET \/healthz did not get a 2xx within 3000 ms; its last answer was 503: "\d+ sick health 503"/)
      const [, sick] = await app.waitForLine(/^listening (\d+) sick/, 1_000, from)
      await waitUntil(() => !isAlive(Number(sick)), 5_000, 'the sick release to be killed')
      // A healthy release after it goes through.
      release(config, { release: 'r2' })
      process.kill(first, 'SIGHUP')
      await app.waitForLine(/^handover: upgraded to pid \d+/, 15_000, from)
      await waitUntil(() => load.samples.some((s) => s.body?.endsWith(' r2')), 5_000, 'the healthy release to answer')
    } finally {
      await load.stop()
    }
    expect(load.releases().sick).toBeUndefined()
    expect(load.releases().r2).toBeGreaterThan(0)
    expect(load.failures).toEqual([])
  })
})

describe('probation, under the preload (HANDOVER_PROBATION)', () => {
  it('a release that crashes 300 ms after ready: the upgrade fails, the old release keeps serving, no gap over 1 s', async () => {
    const { app, port, config } = await preloadApp({ HANDOVER_PROBATION: '2000' })
    const first = app.current
    const load = new RecordingLoad(port)
    try {
      release(config, { release: 'crashy', crashAfterMs: 300 })
      const from = app.lines.length
      process.kill(first, 'SIGHUP')
      const [line] = await app.waitForLine(/^handover: upgrade failed: .*/, 15_000, from)
      expect(line).toMatch(/ERR_CHILD_EXITED: the new process \d+ exited with code 1 during the 2000 ms probation/)
      await new Promise((r) => setTimeout(r, 500))
    } finally {
      await load.stop()
    }
    expect(isAlive(first)).toBe(true)
    expect(load.samples.at(-1)?.body).toBe(`${first} r0`)
    expect(load.longestGap()).toBeLessThan(1_000)
    // Only the crashing process's own in-flight requests may fail: at most 1% of them all.
    expect(load.failures.length).toBeLessThanOrEqual(Math.ceil(load.samples.length / 100))
  })
})
