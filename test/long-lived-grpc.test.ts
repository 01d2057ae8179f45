// @grpc/grpc-js server streaming under handover/register. handover sends
// the HTTP/2 GOAWAY (new calls go to the new process) but cannot end a call
// cleanly: the status is grpc-js's to send. With the app's one onDrain()
// line, every call ends with OK at its own moment in the leave window and
// the clients call again, on the new process. Without it the calls stay on
// the old process until the drain timeout, then fail with UNAVAILABLE.
import { createRequire } from 'node:module'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { DRAIN_TIMEOUT, EXAMPLES, LEAVE_ENV, spreadOf, tally, timedUpgrade, WINDOW, type TimedUpgrade } from './helpers/long-lived.js'

// grpc-js is CommonJS; its types come with it.
const grpc = createRequire(import.meta.url)('@grpc/grpc-js') as typeof import('@grpc/grpc-js')

afterEach(killPreloadApps)

const UPGRADES = 3

const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(String(b)) as { pid: number } }
/** The same service as examples/long-lived/grpc.mjs. */
const service = {
  watch: {
    path: '/pids.Pids/Watch', requestStream: false, responseStream: true,
    requestSerialize: json.serialize, requestDeserialize: json.deserialize,
    responseSerialize: json.serialize, responseDeserialize: json.deserialize,
  },
}
const Pids = grpc.makeGenericClientConstructor(service, 'Pids')
type WatchCall = import('@grpc/grpc-js').ClientReadableStream<{ pid: number }>

/** One client with its own connection, calling Watch again whenever a call ends. */
class Watcher {
  pid = 0
  /** The status of every call that ended: 'OK', or the code's name and details. */
  readonly statuses: string[] = []
  readonly arrivals: Array<[number, number]> = []
  readonly endedAt: number[] = []
  private readonly client: InstanceType<typeof Pids>
  private call?: WatchCall
  private running = true

  constructor(port: number) {
    // Its own subchannel: grpc-js would otherwise share one connection between clients of the same target.
    this.client = new Pids(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 })
    this.watch()
  }

  private watch(): void {
    const call = (this.call = (this.client as unknown as { watch: (req: object) => WatchCall }).watch({}))
    call.on('data', ({ pid }: { pid: number }) => {
      if (pid !== this.pid) this.arrivals.push([Date.now(), pid])
      this.pid = pid
    })
    // The status follows 'error' for a failed call; it is what counts here.
    call.on('error', () => {})
    call.on('status', ({ code, details }: import('@grpc/grpc-js').StatusObject) => {
      this.statuses.push(code === grpc.status.OK ? 'OK' : `${grpc.status[code]}: ${details}`)
      this.endedAt.push(Date.now())
      if (this.running) setTimeout(() => this.watch(), 10)
    })
  }

  close(): void {
    this.running = false
    this.call?.cancel()
    this.client.close()
  }
}

describe('gRPC server streaming under the preload', () => {
  it(`with the onDrain() line: 50 watchers through ${UPGRADES} upgrades, every call ends OK, spread over the window`, async () => {
    const port = await freePort()
    const app = await PreloadApp.start(`${EXAMPLES}grpc.mjs`, { PORT: String(port), ...LEAVE_ENV })
    const watchers = Array.from({ length: 50 }, () => new Watcher(port))
    try {
      await waitUntil(() => watchers.every((w) => w.pid === app.current), 20_000, 'every watcher on the first pid')
      const upgrades: TimedUpgrade[] = []
      for (let i = 0; i < UPGRADES; i++) {
        upgrades.push(await timedUpgrade(app))
        await waitUntil(() => watchers.every((w) => w.pid === app.current), 10_000, `every watcher on pid ${app.current}`)
      }
      const statuses = tally(watchers.flatMap((w) => w.statuses))
      const spreads = upgrades.map(({ newPid }) => spreadOf(watchers.flatMap((w) => w.arrivals.filter(([, pid]) => pid === newPid).map(([t]) => t))))
      console.log(`grpc with onDrain(): call statuses ${JSON.stringify(statuses)}; old processes gone after ${upgrades.map((u) => u.oldLived).join(', ')} ms; ` +
        `reconnects per tenth of the window ${spreads.map((s) => `[${s.buckets.join(' ')}] peak/mean ${s.peakToMean.toFixed(2)}`).join('; ')}`)
      expect(statuses).toEqual({ OK: UPGRADES * watchers.length })
      for (const u of upgrades) expect(u.oldLived).toBeLessThanOrEqual(WINDOW + 2_000)
      for (const s of spreads) expect(s.peakToMean).toBeLessThanOrEqual(3)
    } finally {
      for (const w of watchers) w.close()
    }
  })

  it('unmodified: the calls stay on the old process until the drain timeout, then fail with UNAVAILABLE, all at once', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('grpc-unmodified.mjs', { PORT: String(port), ...LEAVE_ENV })
    const watchers = Array.from({ length: 10 }, () => new Watcher(port))
    try {
      await waitUntil(() => watchers.every((w) => w.pid === app.current), 20_000, 'every watcher on the first pid')
      const upgrade = await timedUpgrade(app)
      await waitUntil(() => watchers.every((w) => w.pid === app.current), 10_000, `every watcher on pid ${app.current}`)
      const ends = watchers.flatMap((w) => w.endedAt)
      console.log(`grpc unmodified: call statuses ${JSON.stringify(tally(watchers.flatMap((w) => w.statuses)))}; old process gone after ${upgrade.oldLived} ms; ` +
        `the calls ended within ${Math.max(...ends) - Math.min(...ends)} ms of each other`)
      expect(tally(watchers.flatMap((w) => w.statuses))).toEqual({ 'UNAVAILABLE: Connection dropped': watchers.length })
      // Held to the drain's deadline (the GOAWAY moved no running call).
      expect(upgrade.oldLived).toBeGreaterThan(DRAIN_TIMEOUT - 1_000)
    } finally {
      for (const w of watchers) w.close()
    }
  })
})
