// docs/kubernetes.md without a cluster: the Deployment it shows is checked
// against itself (probe paths and ports, the grace period against the
// shutdown delay and the drain timeout), and its container command is run as
// written, with its ports moved to free ones and the script to a test app:
// the probes and metrics answer, an in-pod `handover upgrade` keeps /readyz
// at 200, and SIGTERM fails /readyz while the app still answers, then drains.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { freePort, get } from './helpers/clients.mjs'
import { handover, statusOf } from './helpers/ops.js'
import { sleep } from './helpers/processes.mjs'
import { ROOT } from './helpers/preload-app.js'
import { killSupervised, Supervised } from './helpers/supervisor.js'

afterEach(killSupervised)

interface Probe {
  httpGet: { path: string; port: string | number }
  periodSeconds?: number
  failureThreshold?: number
}
interface Container {
  command: string[]
  ports: Array<{ name: string; containerPort: number }>
  readinessProbe: Probe
  livenessProbe: Probe
}

const doc = readFileSync(join(ROOT, 'docs', 'kubernetes.md'), 'utf8')
const yaml = /^```yaml\n([\s\S]*?)^```$/m.exec(doc)?.[1] ?? ''
const deployment = parse(yaml) as { kind: string; spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: Container[] } } } }
const pod = deployment.spec.template.spec
const [container] = pod.containers

/** The value of `--flag` in the container's command. */
function flag(name: string): string | undefined {
  const i = container.command.indexOf(`--${name}`)
  return i === -1 ? undefined : container.command[i + 1]
}

const portOf = (name: string | number): number => (typeof name === 'number' ? name : container.ports.find((p) => p.name === name)!.containerPort)

describe('docs/kubernetes.md', () => {
  it('the Deployment is consistent: the probes on the --probes port, the grace period covering the delay and the drain, the delay covering readiness', () => {
    expect(deployment.kind).toBe('Deployment')
    // handover itself as PID 1: npx would not pass SIGTERM on.
    expect(container.command.slice(0, 3)).toEqual(['node_modules/.bin/handover', 'run', '-w'])
    expect(container.readinessProbe.httpGet.path).toBe('/readyz')
    expect(container.livenessProbe.httpGet.path).toBe('/livez')
    const probes = Number(flag('probes')!.split(':').pop())
    expect(portOf(container.readinessProbe.httpGet.port)).toBe(probes)
    expect(portOf(container.livenessProbe.httpGet.port)).toBe(probes)
    expect(portOf('metrics')).toBe(Number(flag('metrics')!.split(':').pop()))
    const delay = Number(flag('shutdown-delay'))
    const drain = Number(flag('drain-timeout'))
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(delay + drain + 5_000)
    const { periodSeconds = 10, failureThreshold = 3 } = container.readinessProbe
    expect(delay).toBeGreaterThanOrEqual(periodSeconds * failureThreshold * 1000)
  })

  it("its container command, run: probes and metrics answer, an in-pod upgrade keeps /readyz at 200, SIGTERM fails it while the app answers, and the exit comes within the grace period", async () => {
    const [app, probes, metrics] = await Promise.all([freePort(), freePort(), freePort()])
    // node_modules/.bin/handover is the built CLI here; ports on loopback; the test app for server.js.
    const args = container.command.slice(2, -1).map((a) => (a === ':8081' ? `127.0.0.1:${probes}` : a === ':9090' ? `127.0.0.1:${metrics}` : a))
    expect(args).toContain(`127.0.0.1:${probes}`)
    const s = await Supervised.start(args, 'ops.mjs', { PORT: String(app) })
    expect((await get({ port: probes }, '/livez')).status).toBe(200)
    expect((await get({ port: probes }, '/readyz')).status).toBe(200)
    expect((await get({ port: metrics }, '/metrics')).body).toMatch(/^handover_workers \d+$/m)

    const seen: Array<number | string> = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        seen.push(await get({ port: probes }, '/readyz', 2_000).then((r) => r.status, (err: NodeJS.ErrnoException) => err.code ?? err.message))
        await sleep(100)
      }
    })()
    const upgrade = await handover(['upgrade', 'api'])
    expect(upgrade.status).toBe(0)
    sampling = false
    await sampler
    expect(seen.filter((x) => x !== 200)).toEqual([])

    const stoppedAt = Date.now()
    process.kill(s.pid, 'SIGTERM')
    await s.waitForLine(/^handover: SIGTERM: stopping in 10000 ms/)
    expect((await get({ port: probes }, '/readyz')).status).toBe(503)
    const serving = new Set((await statusOf('api')).workers.map((w) => w.pid))
    for (let i = 0; i < 3; i++) {
      const answer = await get({ port: app })
      expect(answer.status).toBe(200)
      expect(serving.has(Number(answer.body))).toBe(true)
      await sleep(500)
    }
    expect(await s.exited()).toEqual({ code: 0, signal: null })
    expect(Date.now() - stoppedAt).toBeLessThan(pod.terminationGracePeriodSeconds * 1000)
  }, 90_000)
})
