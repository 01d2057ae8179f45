// Kubernetes probes (src/service/probes.ts) with a real HTTP client: readiness
// flips, the shutdown delay with an app still answering, and a real stalled
// event loop in a child process, seen as a probe would see it.
import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { delayedShutdown, ProbeServer } from '../src/service/probes.js'
import { bundleScript } from './helpers/bundle.js'
import { isAlive } from './helpers/processes.mjs'

interface Reply { status: number; body: string }

/** One request on a fresh connection; rejects after `timeoutMs`, as a kubelet probe with timeoutSeconds does. */
function get(port: number, path: string, timeoutMs = 10_000, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const servers: Array<{ close(): unknown }> = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

async function probes(): Promise<{ p: ProbeServer; port: number }> {
  const p = await ProbeServer.start({ host: '127.0.0.1', port: 0 })
  servers.push(p)
  return { p, port: p.address.port }
}

describe('the probe server', () => {
  it('/readyz is 503 until a generation serves, 200 while one does, 503 again once stopping; /livez 200 throughout', async () => {
    const { p, port } = await probes()
    expect(await get(port, '/readyz')).toEqual({ status: 503, body: 'not ready: starting: no generation is ready yet\n' })
    expect(await get(port, '/livez')).toEqual({ status: 200, body: 'ok\n' })
    p.setReady(true)
    expect(await get(port, '/readyz')).toEqual({ status: 200, body: 'ok\n' })
    expect(await get(port, '/readyz?verbose')).toMatchObject({ status: 200 })
    p.setReady(false, 'SIGTERM')
    expect(await get(port, '/readyz')).toEqual({ status: 503, body: 'not ready: SIGTERM\n' })
    expect(await get(port, '/livez')).toMatchObject({ status: 200 })
  })

  it('HEAD answers without a body; other paths 404, other methods 405', async () => {
    const { p, port } = await probes()
    p.setReady(true)
    expect(await get(port, '/readyz', 10_000, 'HEAD')).toEqual({ status: 200, body: '' })
    expect(await get(port, '/metrics')).toMatchObject({ status: 404 })
    expect(await get(port, '/livez', 10_000, 'POST')).toMatchObject({ status: 405 })
  })

  it('a port in use is a typed error naming the address', async () => {
    const { port } = await probes()
    await expect(ProbeServer.start({ host: '127.0.0.1', port })).rejects.toMatchObject({ name: 'HandoverError', code: 'EADDRINUSE', address: `127.0.0.1:${port}` })
    await expect(ProbeServer.start({ host: '127.0.0.1', port: 0, livenessThreshold: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' })
  })

  it('close() ends kept-alive connections too', async () => {
    const { p, port } = await probes()
    const agent = new http.Agent({ keepAlive: true })
    await new Promise<void>((resolve) => http.get({ host: '127.0.0.1', port, path: '/livez', agent }, (res) => res.resume().on('end', resolve)))
    servers.length = 0
    await p.close()
    await expect(get(port, '/livez', 2_000)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    agent.destroy()
  })
})

describe('--shutdown-delay', () => {
  it('readyz fails at once while the app still answers; the drain starts only after the delay', async () => {
    const { p, port } = await probes()
    p.setReady(true)
    const app = http.createServer((_req, res) => res.end('app'))
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
    const appPort = (app.address() as AddressInfo).port
    let drainedAfter: number | undefined
    const started = Date.now()
    const shutdown = delayedShutdown(p, 1_500, async () => {
      drainedAfter = Date.now() - started
      await new Promise((resolve) => app.close(resolve))
    })
    // Sampled through the delay: not ready, and the app answers every time.
    for (let i = 0; i < 5; i++) {
      expect(await get(port, '/readyz')).toMatchObject({ status: 503 })
      expect(await get(appPort, '/')).toEqual({ status: 200, body: 'app' })
      expect(drainedAfter).toBeUndefined()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await shutdown
    expect(drainedAfter).toBeGreaterThanOrEqual(1_500)
    await expect(get(appPort, '/', 2_000)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('a second signal (abort) cuts the delay short; without probes or with 0 it drains at once', async () => {
    const { p } = await probes()
    p.setReady(true)
    const abort = new AbortController()
    let drained = false
    const shutdown = delayedShutdown(p, 60_000, async () => void (drained = true), abort.signal)
    expect(p.ready).toBe(false)
    setTimeout(() => abort.abort(), 100)
    await shutdown
    expect(drained).toBe(true)
    let again = false
    await delayedShutdown(undefined, 0, async () => void (again = true))
    expect(again).toBe(true)
  }, 10_000)
})

/** A child serving probes (threshold 500 ms) that busy-waits on "stall <ms>". */
const CHILD = `
const p = await m.ProbeServer.start({ host: '127.0.0.1', port: 0, livenessThreshold: 500 })
p.setReady(true)
process.stdout.write(JSON.stringify(p.address) + '\\n')
process.stdin.setEncoding('utf8')
process.stdin.on('data', (line) => {
  const ms = Number(line.trim().split(' ')[1])
  process.stdout.write('stalling\\n')
  const end = Date.now() + ms
  while (Date.now() < end) {}
})
`

describe('a real stalled event loop', () => {
  let script: { path: string; remove: () => void }
  let child: ChildProcess | undefined
  beforeAll(async () => {
    script = await bundleScript('src/service/probes.ts', CHILD)
  })
  afterAll(() => script?.remove())
  afterEach(() => {
    if (child?.pid && isAlive(child.pid)) child.kill('SIGKILL')
  })

  it('a probe sent during the stall times out (the kubelet\'s failure); one that waits is answered 503; after it, 200', async () => {
    child = spawn(process.execPath, [script.path], { stdio: ['pipe', 'pipe', 'inherit'] })
    const lines: string[] = []
    const waiters: Array<() => void> = []
    child.stdout!.setEncoding('utf8')
    child.stdout!.on('data', (d: string) => {
      lines.push(...d.split('\n').filter(Boolean))
      for (const w of waiters.splice(0)) w()
    })
    const line = async (n: number): Promise<string> => {
      while (lines.length <= n) await new Promise<void>((resolve) => waiters.push(resolve))
      return lines[n]
    }
    const { port } = JSON.parse(await line(0)) as { port: number }
    expect(await get(port, '/livez')).toEqual({ status: 200, body: 'ok\n' })

    child.stdin!.write('stall 2500\n')
    expect(await line(1)).toBe('stalling')
    const patient = get(port, '/livez', 20_000)
    const kubelet = get(port, '/livez', 500)
    // node's http client reports its signal's timeout as an AbortError.
    await expect(kubelet).rejects.toMatchObject({ name: 'AbortError' })
    const late = await patient
    expect(late.status).toBe(503)
    expect(late.body).toMatch(/^event loop stalled for \d+ ms\n$/)
    expect(Number(/(\d+) ms/.exec(late.body)![1])).toBeGreaterThanOrEqual(500)
    // The loop runs again: the next probe passes (within a tick or two).
    let next = await get(port, '/livez')
    for (let i = 0; i < 10 && next.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      next = await get(port, '/livez')
    }
    expect(next).toEqual({ status: 200, body: 'ok\n' })
    expect(await get(port, '/readyz')).toMatchObject({ status: 200 })
  }, 30_000)
})
