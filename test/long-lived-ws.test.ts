// An unmodified ws app (examples/long-lived/ws.mjs, no onDrain()) under handover/register: at each
// hand-off handover closes every WebSocket with 1012 through ws's own
// object, each at its own moment in the leave window. 200 reconnecting
// clients through 3 SIGHUP upgrades: no abnormal close (1006), every client
// on the newest pid, every old process gone within the window + 2 s, and
// the reconnects spread over the window.
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { freePort } from './helpers/clients.mjs'
import { waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { EXAMPLES, LEAVE_ENV, spreadOf, tally, timedUpgrade, WINDOW, type TimedUpgrade } from './helpers/long-lived.js'

afterEach(killPreloadApps)

const CLIENTS = 200
const UPGRADES = 3

class ReconnectingClient {
  pid = 0
  readonly closeCodes: number[] = []
  readonly errors: string[] = []
  /** When each connection was told its pid: [Date.now(), pid]. */
  readonly arrivals: Array<[number, number]> = []
  private socket?: WebSocket
  private running = true

  constructor(private readonly port: number) {
    this.connect()
  }

  private connect(): void {
    const socket = (this.socket = new WebSocket(`ws://127.0.0.1:${this.port}`))
    socket.on('message', (data) => {
      this.pid = Number(String(data))
      this.arrivals.push([Date.now(), this.pid])
    })
    socket.on('error', (err: NodeJS.ErrnoException) => this.errors.push(err.code ?? err.message))
    socket.on('close', (code) => {
      this.closeCodes.push(code)
      if (this.running) setImmediate(() => this.connect())
    })
  }

  close(): void {
    this.running = false
    this.socket?.close(1000)
  }
}

describe('ws, unmodified, under the preload', () => {
  it(`${CLIENTS} reconnecting clients through ${UPGRADES} upgrades: 1012 closes only, spread over the window`, async () => {
    const port = await freePort()
    const app = await PreloadApp.start(`${EXAMPLES}ws.mjs`, { PORT: String(port), ...LEAVE_ENV })
    const clients = Array.from({ length: CLIENTS }, () => new ReconnectingClient(port))
    await waitUntil(() => clients.every((c) => c.pid === app.current), 20_000, 'every client on the first pid')
    const upgrades: TimedUpgrade[] = []
    for (let i = 0; i < UPGRADES; i++) {
      upgrades.push(await timedUpgrade(app))
      await waitUntil(() => clients.every((c) => c.pid === app.current), 10_000, `every client on pid ${app.current}`)
    }
    for (const c of clients) c.close()

    const codes = tally(clients.flatMap((c) => c.closeCodes))
    const spreads = upgrades.map(({ newPid }) => spreadOf(clients.flatMap((c) => c.arrivals.filter(([, pid]) => pid === newPid).map(([t]) => t))))
    console.log(`ws: closes by code ${JSON.stringify(codes)}; old processes gone after ${upgrades.map((u) => u.oldLived).join(', ')} ms; ` +
      `reconnects per tenth of the window ${spreads.map((s) => `[${s.buckets.join(' ')}] peak/mean ${s.peakToMean.toFixed(2)} span ${s.span} ms`).join('; ')}`)

    expect(clients.flatMap((c) => c.errors)).toEqual([])
    expect(codes['1006']).toBeUndefined()
    // Told "service restart" once per upgrade; the last close is the client's own (1000) or its echo (1005).
    expect(codes['1012']).toBe(UPGRADES * CLIENTS)
    for (const u of upgrades) expect(u.oldLived).toBeLessThanOrEqual(WINDOW + 2_000)
    for (const s of spreads) {
      // Every client reconnected once to each new process.
      expect(s.buckets.reduce((a, b) => a + b, 0)).toBe(CLIENTS)
      expect(s.peakToMean).toBeLessThanOrEqual(3)
      // Not all at once: the reconnects take most of the window.
      expect(s.span).toBeGreaterThan(WINDOW / 2)
    }
  })
})
