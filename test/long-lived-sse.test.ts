// Server-sent events from an unmodified node:http app
// (examples/long-lived/sse.mjs) under handover/register: at each hand-off
// every event stream gets a `retry:` hint and its terminating chunk at its
// own moment in the leave window, so the EventSource (the `eventsource`
// package, on Node's fetch) sees a clean end, not an abort, and reconnects to
// the new process. An app that writes once more right after the end
// (test/fixtures/apps/sse.mjs) must not crash.
import { EventSource } from 'eventsource'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { EXAMPLES, LEAVE_ENV, spreadOf, tally, timedUpgrade, WINDOW, type TimedUpgrade } from './helpers/long-lived.js'

afterEach(killPreloadApps)

const CLIENTS = 100
const UPGRADES = 3

class EventClient {
  pid = 0
  /** One entry per 'error' event: its message, or 'clean' for the end of a stream that was not an abort. */
  readonly ends: string[] = []
  readonly bad: string[] = []
  /** The first event from each pid: [Date.now(), pid]. */
  readonly arrivals: Array<[number, number]> = []
  /** ms from each end to the first event of the next stream. */
  readonly gaps: number[] = []
  private endedAt = 0
  private readonly source: EventSource

  constructor(url: string) {
    this.source = new EventSource(url)
    this.source.onmessage = (event) => {
      const pid = Number(event.data)
      if (!Number.isInteger(pid)) return void this.bad.push(String(event.data))
      if (pid !== this.pid) {
        this.arrivals.push([Date.now(), pid])
        if (this.endedAt) this.gaps.push(Date.now() - this.endedAt)
      }
      this.pid = pid
    }
    this.source.onerror = (event) => {
      this.ends.push(event.message ?? 'clean')
      this.endedAt = Date.now()
    }
  }

  close(): void {
    this.source.close()
  }
}

describe('server-sent events, unmodified, under the preload', () => {
  it(`${CLIENTS} EventSource clients through ${UPGRADES} upgrades: clean ends, reconnects to the newest pid`, async () => {
    const port = await freePort()
    const app = await PreloadApp.start(`${EXAMPLES}sse.mjs`, { PORT: String(port), ...LEAVE_ENV })
    const clients = Array.from({ length: CLIENTS }, () => new EventClient(`http://127.0.0.1:${port}/events`))
    try {
      await waitUntil(() => clients.every((c) => c.pid === app.current), 20_000, 'every client on the first pid')
      const upgrades: TimedUpgrade[] = []
      for (let i = 0; i < UPGRADES; i++) {
        upgrades.push(await timedUpgrade(app))
        await waitUntil(() => clients.every((c) => c.pid === app.current), 10_000, `every client on pid ${app.current}`)
      }
      const ends = tally(clients.flatMap((c) => c.ends))
      const spreads = upgrades.map(({ newPid }) => spreadOf(clients.flatMap((c) => c.arrivals.filter(([, pid]) => pid === newPid).map(([t]) => t))))
      const gaps = clients.flatMap((c) => c.gaps).sort((a, b) => a - b)
      console.log(`sse: stream ends ${JSON.stringify(ends)}; reconnect after an end: ${gaps[0]} to ${gaps.at(-1)} ms (the retry hint says 1000); ` +
        `old processes gone after ${upgrades.map((u) => u.oldLived).join(', ')} ms; ` +
        `reconnects per tenth of the window ${spreads.map((s) => `[${s.buckets.join(' ')}] peak/mean ${s.peakToMean.toFixed(2)}`).join('; ')}`)

      expect(ends).toEqual({ clean: UPGRADES * CLIENTS })
      expect(clients.flatMap((c) => c.bad)).toEqual([])
      // The retry hint was read: the default reconnection time is 3 s.
      expect(gaps.at(-1)).toBeLessThan(3_000)
      for (const u of upgrades) expect(u.oldLived).toBeLessThanOrEqual(WINDOW + 2_000)
      for (const s of spreads) expect(s.peakToMean).toBeLessThanOrEqual(3)
    } finally {
      for (const c of clients) c.close()
    }
  })

  it('an app that writes right after handover ended its stream: no crash, clean ends', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('sse.mjs', { PORT: String(port), ...LEAVE_ENV })
    const clients = Array.from({ length: 20 }, () => new EventClient(`http://127.0.0.1:${port}/events`))
    try {
      await waitUntil(() => clients.every((c) => c.pid === app.current), 20_000, 'every client on the first pid')
      const upgrade = await timedUpgrade(app)
      await waitUntil(() => clients.every((c) => c.pid === app.current), 10_000, `every client on pid ${app.current}`)
      const ends = tally(clients.flatMap((c) => c.ends))
      console.log(`sse, writing after the end: stream ends ${JSON.stringify(ends)}; old process gone after ${upgrade.oldLived} ms`)
      // Without the guard the old process dies of the uncaught ERR_STREAM_WRITE_AFTER_END, and its streams end in aborts.
      expect(ends).toEqual({ clean: clients.length })
      expect(clients.flatMap((c) => c.bad)).toEqual([])
      expect(app.text).not.toMatch(/ERR_STREAM_WRITE_AFTER_END|Error/)
    } finally {
      for (const c of clients) c.close()
    }
  })
})
