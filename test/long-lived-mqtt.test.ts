// An aedes MQTT broker on a plain node:net server (examples/long-lived/mqtt.mjs), unmodified, under
// handover/register: at each hand-off every client connection is ended
// (FIN) at its own moment in the leave window, while the clients publish
// (QoS 1). mqtt.js clients reconnect (and resubscribe) to the new process,
// with no error on the way. aedes's own timers keep an old process alive
// after its drain, until HANDOVER_EXIT_GRACE (300 ms here) has passed.
import mqtt from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { EXAMPLES, LEAVE_ENV, spreadOf, tally, timedUpgrade, WINDOW, type TimedUpgrade } from './helpers/long-lived.js'

afterEach(killPreloadApps)

const CLIENTS = 100
const UPGRADES = 3

class MqttClient {
  pid = 0
  closes = 0
  readonly errors: string[] = []
  readonly arrivals: Array<[number, number]> = []
  /** Client-side times of each close: when handover asked it to leave. */
  readonly closedAt: number[] = []
  published = 0
  private readonly client: mqtt.MqttClient
  private readonly timer: NodeJS.Timeout

  constructor(port: number, i: number) {
    // A short reconnect period: the broker's spread is what is measured, not mqtt.js's 1 s default.
    this.client = mqtt.connect({ host: '127.0.0.1', port, clientId: `client-${i}`, reconnectPeriod: 50, connectTimeout: 10_000 })
    this.client.on('connect', () => this.client.subscribe('pid'))
    this.client.on('message', (_topic, payload) => {
      const pid = Number(String(payload))
      if (pid !== this.pid) this.arrivals.push([Date.now(), pid])
      this.pid = pid
    })
    this.client.on('close', () => {
      this.closes++
      this.closedAt.push(Date.now())
    })
    this.client.on('error', (err: Error & { code?: string | number }) => this.errors.push(String(err.code ?? err.message)))
    // QoS 1 traffic in both directions while connections are ended: a PUBACK lost with one is resent after the reconnect.
    this.timer = setInterval(() => {
      if (this.client.connected) this.client.publish(`load/${i}`, 'x'.repeat(100), { qos: 1 }, (err) => (err ? this.errors.push(`publish: ${err.message}`) : this.published++))
    }, 250)
  }

  end(): Promise<void> {
    clearInterval(this.timer)
    return new Promise((resolve) => this.client.end(true, {}, () => resolve()))
  }
}

describe('MQTT (aedes on net), unmodified, under the preload', () => {
  it(`${CLIENTS} mqtt.js clients through ${UPGRADES} upgrades: closed cleanly, resubscribed on the newest pid`, async () => {
    const port = await freePort()
    const app = await PreloadApp.start(`${EXAMPLES}mqtt.mjs`, { PORT: String(port), ...LEAVE_ENV, HANDOVER_EXIT_GRACE: '300' })
    const clients = Array.from({ length: CLIENTS }, (_, i) => new MqttClient(port, i))
    try {
      await waitUntil(() => clients.every((c) => c.pid === app.current), 20_000, 'every client on the first pid')
      const upgrades: TimedUpgrade[] = []
      for (let i = 0; i < UPGRADES; i++) {
        upgrades.push(await timedUpgrade(app))
        await waitUntil(() => clients.every((c) => c.pid === app.current), 10_000, `every client on pid ${app.current}`)
      }
      // The departures, as the clients saw them (their reconnects follow, through the new process's start-up).
      const spreads = upgrades.map(({ handedOver }, i) => {
        const until = upgrades[i + 1]?.handedOver ?? Infinity
        return spreadOf(clients.flatMap((c) => c.closedAt.filter((t) => t >= handedOver - 500 && t < until)))
      })
      const arrivals = upgrades.map(({ newPid }) => spreadOf(clients.flatMap((c) => c.arrivals.filter(([, pid]) => pid === newPid).map(([t]) => t))))
      const closes = clients.reduce((n, c) => n + c.closes, 0)
      console.log(`mqtt: ${closes} closes, errors ${JSON.stringify(tally(clients.flatMap((c) => c.errors)))}, ${clients.reduce((n, c) => n + c.published, 0)} QoS 1 publishes acknowledged; ` +
        `old processes gone after ${upgrades.map((u) => u.oldLived).join(', ')} ms; ` +
        `closes per tenth of the window ${spreads.map((s) => `[${s.buckets.join(' ')}] peak/mean ${s.peakToMean.toFixed(2)}`).join('; ')}; ` +
        `reconnects ${arrivals.map((s) => `[${s.buckets.join(' ')}] peak/mean ${s.peakToMean.toFixed(2)}`).join('; ')}`)

      expect(clients.flatMap((c) => c.errors)).toEqual([])
      expect(closes).toBe(UPGRADES * CLIENTS)
      for (const u of upgrades) expect(u.oldLived).toBeLessThanOrEqual(WINDOW + 2_000)
      for (const s of spreads) {
        expect(s.buckets.reduce((a, b) => a + b, 0)).toBe(CLIENTS)
        expect(s.peakToMean).toBeLessThanOrEqual(3)
      }
    } finally {
      await Promise.all(clients.map((c) => c.end()))
    }
  })
})
