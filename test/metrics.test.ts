// Prometheus metrics (src/service/metrics.ts): recorded through the typed
// recorder, scraped over HTTP by a real client, parsed as the text format.
import { execFileSync } from 'node:child_process'
import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { MetricsServer, noMetrics } from '../src/service/metrics.js'
import { bundleScript } from './helpers/bundle.js'

interface Scrape { status: number; type: string; body: string }

function scrape(port: number, path = '/metrics'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false, signal: AbortSignal.timeout(10_000) }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }))
    }).on('error', reject)
  })
}

/** The text exposition format: `name{a="x",b="y"} value` lines; # HELP and # TYPE lines kept by metric name. */
function parse(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>()
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) types.set(type[1], type[2])
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not an exposition line: ${line}`)
    // Labels sorted, so that a key does not depend on the order prom-client writes them in.
    const labels = m[2] ? m[2].slice(1, -1).split(',').filter(Boolean).sort().join(',') : ''
    samples.set(labels ? `${m[1]}{${labels}}` : m[1], Number(m[3]))
  }
  return { samples, types }
}

const servers: MetricsServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

async function start(): Promise<{ m: MetricsServer; port: number }> {
  const m = await MetricsServer.start({ host: '127.0.0.1', port: 0 })
  servers.push(m)
  return { m, port: m.address.port }
}

describe('metrics', () => {
  it('before anything happens: every metric is there, the counters at 0', async () => {
    const { port } = await start()
    const r = await scrape(port)
    expect(r.status).toBe(200)
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/)
    const { samples, types } = parse(r.body)
    expect(Object.fromEntries(types)).toEqual({
      handover_upgrades_total: 'counter',
      handover_upgrade_duration_seconds: 'histogram',
      handover_workers: 'gauge',
      handover_worker_restarts_total: 'counter',
      handover_drain_duration_seconds: 'histogram',
      handover_connections_handed_over_total: 'counter',
      handover_connections_closed_total: 'counter',
      handover_worker_resident_memory_bytes: 'gauge',
      handover_worker_cpu_usage_ratio: 'gauge',
      handover_worker_event_loop_delay_seconds: 'gauge',
    })
    expect(samples.get('handover_upgrades_total{result="success"}')).toBe(0)
    expect(samples.get('handover_upgrades_total{result="failure"}')).toBe(0)
    expect(samples.get('handover_worker_restarts_total{reason="crash"}')).toBe(0)
    expect(samples.get('handover_connections_handed_over_total')).toBe(0)
  })

  it('records upgrades, workers, restarts, drains, connections and per-worker gauges as scraped', async () => {
    const { m, port } = await start()
    m.recordUpgrade('success', 0.2)
    m.recordUpgrade('success', 3)
    m.recordUpgrade('failure', 60)
    m.setWorkers(2)
    m.recordWorkerRestart('crash')
    m.recordWorkerRestart('watchdog')
    m.recordWorkerRestart('watchdog')
    m.recordDrain(0.3, 'graceful')
    m.recordDrain(30, 'forced')
    m.addConnectionsHandedOver(5)
    m.addConnectionsClosed(7)
    m.addConnectionsClosed(Number.NaN)
    m.setWorkerSamples([
      { slot: 0, generation: 3, pid: 4211, rss: 64_000_000, cpu: 12.5, eventLoopDelay: 0.004 },
      { slot: 1, generation: 3, pid: 4212, rss: 61_000_000 },
    ])
    const { samples } = parse((await scrape(port)).body)
    expect(samples.get('handover_upgrades_total{result="success"}')).toBe(2)
    expect(samples.get('handover_upgrades_total{result="failure"}')).toBe(1)
    expect(samples.get('handover_upgrade_duration_seconds_count{result="success"}')).toBe(2)
    expect(samples.get('handover_upgrade_duration_seconds_sum{result="success"}')).toBeCloseTo(3.2)
    expect(samples.get('handover_upgrade_duration_seconds_bucket{le="0.25",result="success"}')).toBe(1)
    expect(samples.get('handover_upgrade_duration_seconds_bucket{le="+Inf",result="failure"}')).toBe(1)
    expect(samples.get('handover_workers')).toBe(2)
    expect(samples.get('handover_worker_restarts_total{reason="crash"}')).toBe(1)
    expect(samples.get('handover_worker_restarts_total{reason="watchdog"}')).toBe(2)
    expect(samples.get('handover_worker_restarts_total{reason="max-rss"}')).toBe(0)
    expect(samples.get('handover_drain_duration_seconds_count{outcome="forced"}')).toBe(1)
    expect(samples.get('handover_drain_duration_seconds_bucket{le="0.5",outcome="graceful"}')).toBe(1)
    expect(samples.get('handover_connections_handed_over_total')).toBe(5)
    expect(samples.get('handover_connections_closed_total')).toBe(7)
    expect(samples.get('handover_worker_resident_memory_bytes{generation="3",pid="4211",slot="0"}')).toBe(64_000_000)
    expect(samples.get('handover_worker_resident_memory_bytes{generation="3",pid="4212",slot="1"}')).toBe(61_000_000)
    expect(samples.get('handover_worker_cpu_usage_ratio{generation="3",pid="4211",slot="0"}')).toBe(0.125)
    expect(samples.get('handover_worker_event_loop_delay_seconds{generation="3",pid="4211",slot="0"}')).toBe(0.004)
    // Figures a worker did not report leave no series.
    expect(samples.has('handover_worker_cpu_usage_ratio{generation="3",pid="4212",slot="1"}')).toBe(false)

    // The next sample replaces the last: an exited worker's series go, the counters stay.
    m.setWorkerSamples([{ slot: 0, generation: 4, pid: 5000, rss: 1000 }])
    const next = parse((await scrape(port)).body).samples
    expect([...next.keys()].filter((k) => k.startsWith('handover_worker_resident_memory_bytes'))).toEqual(['handover_worker_resident_memory_bytes{generation="4",pid="5000",slot="0"}'])
    expect(next.get('handover_upgrades_total{result="success"}')).toBe(2)
  })

  it('only /metrics is served, with GET or HEAD; a port in use is a typed error', async () => {
    const { port } = await start()
    expect((await scrape(port, '/')).status).toBe(404)
    expect((await scrape(port, '/metrics?x=1')).status).toBe(200)
    await expect(MetricsServer.start({ host: '127.0.0.1', port })).rejects.toMatchObject({ name: 'HandoverError', code: 'EADDRINUSE', address: `127.0.0.1:${port}` })
  })

  it('noMetrics takes every call and does nothing', () => {
    noMetrics.recordUpgrade('success', 1)
    noMetrics.setWorkerSamples([{ slot: 0, generation: 1, pid: 1 }])
    expect(Object.isFrozen(noMetrics)).toBe(true)
  })

  it('prom-client is loaded only when a metrics server starts, not by importing the module', async () => {
    const script = await bundleScript('src/service/metrics.ts', `
      import { createRequire } from 'node:module'
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/prom-client/'))
      const before = loaded()
      const s = await m.MetricsServer.start({ host: '127.0.0.1', port: 0 })
      const after = loaded()
      await s.close()
      process.stdout.write(JSON.stringify({ before, after }))
    `)
    try {
      expect(JSON.parse(execFileSync(process.execPath, [script.path], { encoding: 'utf8', timeout: 30_000 }))).toEqual({ before: false, after: true })
    } finally {
      script.remove()
    }
  })
})
