// socket.io 4 over WebSocket only (examples/long-lived/socketio.mjs), unmodified
// otherwise: engine.io's websocket transport is ws, so handover closes each
// connection with 1012 at its moment in the leave window. Clients configured
// as documented (retries with an ack timeout) reconnect to the new
// process and lose no acknowledgement, under handover/register and under
// `handover run -w 2` (no sticky sessions needed).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { io, type Socket } from 'socket.io-client'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { isAlive, sleep, waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { cli, killSupervised, Supervised } from './helpers/supervisor.js'
import { EXAMPLES, LEAVE_ENV, spreadOf, tally, timedUpgrade, WINDOW, type TimedUpgrade } from './helpers/long-lived.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-sio-'))
afterEach(killPreloadApps)
afterEach(killSupervised)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const CLIENTS = 50
const UPGRADES = 3

/** A client as docs/long-lived.md shows it, emitting one acknowledged event after another. */
class Worker {
  pid = 0
  acked = 0
  readonly failed: string[] = []
  readonly errors: string[] = []
  readonly disconnects: string[] = []
  readonly arrivals: Array<[number, number]> = []
  private readonly socket: Socket
  private running = true
  private readonly done: Promise<void>

  constructor(port: number) {
    this.socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], retries: 3, ackTimeout: 10_000, forceNew: true })
    this.socket.on('pid', (pid: number) => {
      if (pid !== this.pid) this.arrivals.push([Date.now(), pid])
      this.pid = pid
    })
    this.socket.on('connect_error', (err) => this.errors.push(err.message))
    this.socket.on('disconnect', (reason) => this.disconnects.push(reason))
    this.done = this.loop()
  }

  private async loop(): Promise<void> {
    for (let n = 0; this.running; n++) {
      try {
        const answer = (await this.socket.emitWithAck('work', n)) as { n: number }
        if (answer.n === n) this.acked++
        else this.failed.push(`answer ${answer.n} to ${n}`)
      } catch (err) {
        this.failed.push((err as Error).message)
      }
      await sleep(50)
    }
  }

  async close(): Promise<void> {
    this.running = false
    await this.done
    this.socket.close()
  }
}

async function closeAll(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.close()))
}

function report(what: string, workers: Worker[], upgrades: Array<{ newPids: number[]; oldLived: number }>): void {
  const spreads = upgrades.map(({ newPids }) => spreadOf(workers.flatMap((w) => w.arrivals.filter(([, pid]) => newPids.includes(pid)).map(([t]) => t))))
  console.log(`socket.io ${what}: ${workers.reduce((n, w) => n + w.acked, 0)} acks, failed ${JSON.stringify(tally(workers.flatMap((w) => w.failed)))}, ` +
    `connect errors ${JSON.stringify(tally(workers.flatMap((w) => w.errors)))}, disconnects ${JSON.stringify(tally(workers.flatMap((w) => w.disconnects)))}; ` +
    `old processes gone after ${upgrades.map((u) => u.oldLived).join(', ')} ms; ` +
    `reconnects per tenth of the window ${spreads.map((s) => `[${s.buckets.join(' ')}] peak/mean ${s.peakToMean.toFixed(2)}`).join('; ')}`)
}

function expectCleanRun(workers: Worker[]): void {
  expect(workers.flatMap((w) => w.failed)).toEqual([])
  expect(workers.flatMap((w) => w.errors)).toEqual([])
  // One planned reconnect per upgrade: the server closed the transport (1012).
  expect(tally(workers.flatMap((w) => w.disconnects))).toEqual({ 'transport close': UPGRADES * CLIENTS, 'io client disconnect': CLIENTS })
  expect(workers.every((w) => w.acked > 0)).toBe(true)
}

describe('socket.io over WebSocket', () => {
  it(`under the preload: ${CLIENTS} clients through ${UPGRADES} upgrades, no failed ack`, async () => {
    const port = await freePort()
    const app = await PreloadApp.start(`${EXAMPLES}socketio.mjs`, { PORT: String(port), ...LEAVE_ENV })
    const workers = Array.from({ length: CLIENTS }, () => new Worker(port))
    try {
      await waitUntil(() => workers.every((w) => w.pid === app.current), 20_000, 'every client on the first pid')
      const upgrades: TimedUpgrade[] = []
      for (let i = 0; i < UPGRADES; i++) {
        upgrades.push(await timedUpgrade(app))
        await waitUntil(() => workers.every((w) => w.pid === app.current), 10_000, `every client on pid ${app.current}`)
      }
      await sleep(200)
      await closeAll(workers)
      report('preload', workers, upgrades.map((u) => ({ newPids: [u.newPid], oldLived: u.oldLived })))
      expectCleanRun(workers)
      for (const u of upgrades) expect(u.oldLived).toBeLessThanOrEqual(WINDOW + 2_000)
    } finally {
      await closeAll(workers)
    }
  })

  it(`under handover run -w 2: ${CLIENTS} clients through ${UPGRADES} upgrades, no failed ack, no sticky sessions`, async () => {
    const port = await freePort()
    const control = join(dir, `ctl-${Math.random().toString(36).slice(2)}.sock`)
    const s = await Supervised.start(['-w', '2', '--control-socket', control], `${EXAMPLES}socketio.mjs`, { PORT: String(port), ...LEAVE_ENV })
    const current = (): number[] => {
      const status = s.status(control)
      return status.workers.filter((w) => w.generation === status.generation).map((w) => w.pid)
    }
    let serving = current()
    const workers = Array.from({ length: CLIENTS }, () => new Worker(port))
    try {
      await waitUntil(() => workers.every((w) => serving.includes(w.pid)), 20_000, 'every client on a first-generation worker')
      const upgrades: Array<{ newPids: number[]; oldLived: number }> = []
      for (let i = 0; i < UPGRADES; i++) {
        const old = serving
        const { status, answer } = cli(['upgrade', '--socket', control])
        const handedOver = Date.now()
        expect(status).toBe(0)
        expect(answer).toMatchObject({ ok: true, generation: i + 2 })
        serving = current()
        expect(serving).toHaveLength(2)
        await waitUntil(() => old.every((pid) => !isAlive(pid)), 15_000, `old workers ${old} to exit`)
        upgrades.push({ newPids: serving, oldLived: Date.now() - handedOver })
        await waitUntil(() => workers.every((w) => serving.includes(w.pid)), 10_000, `every client on a worker of generation ${i + 2}`)
      }
      await sleep(200)
      await closeAll(workers)
      report('run -w 2', workers, upgrades)
      expectCleanRun(workers)
      // Both workers of the last generation took clients: one shared socket, no stickiness needed.
      expect(new Set(workers.map((w) => w.pid)).size).toBe(2)
      for (const u of upgrades) expect(u.oldLived).toBeLessThanOrEqual(WINDOW + 2_000)
    } finally {
      await closeAll(workers)
    }
  })
})
