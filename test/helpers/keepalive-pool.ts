import http from 'node:http'
import { Pool } from 'undici'
import { exitTimes, startDeployment, type Mode } from './deployments.js'
import { sleep } from './processes.mjs'

/**
 * A client shaped like a reverse proxy's pool of upstream connections
 * (nginx `keepalive`, an ALB): `size` keep-alive connections, each sending
 * its next request after an idle gap drawn from [minGap, maxGap] ms, and no
 * retry of a request that fails. With gaps straddling drain()'s idleGrace
 * (500 ms), an upgrade that closes idle connections races some of their next
 * requests (issue 18); one that hands them over does not.
 *
 * Counted client-side: answers by pid, failures by code, and the
 * connections opened (the first `size` of them are the pool itself; the rest
 * replaced ones the server closed).
 */
export interface PoolLoad {
  readonly size: number
  readonly ok: number
  readonly errors: Record<string, number>
  readonly byPid: Map<number, number>
  /** Connections opened so far, the pool's own first ones included. */
  readonly connections: number
  /** Resolves once `count` more answers arrived (rejects after `timeoutMs`). */
  served(count: number, timeoutMs?: number): Promise<void>
  /** Resolves once every connection has sent a request since the call, and had its outcome (rejects after `timeoutMs`). */
  cycled(timeoutMs?: number): Promise<void>
  stop(): Promise<void>
}

export interface PoolOptions {
  minGap?: number
  maxGap?: number
}

/** One connection's loop: request, idle gap, request; failures counted, never retried. */
function poolLoad(size: number, request: (slot: number) => Promise<number>, connections: () => number, close: () => Promise<void>, { minGap = 350, maxGap = 650 }: PoolOptions): PoolLoad {
  let running = true
  let ok = 0
  const errors: Record<string, number> = {}
  const byPid = new Map<number, number>()
  /** Requests each loop finished, answered or failed. */
  const finished = new Array<number>(size).fill(0)
  const gap = (): number => minGap + Math.random() * (maxGap - minGap)
  const loops = Array.from({ length: size }, async (_, slot) => {
    // Spread over one gap, so the requests do not come in waves.
    await sleep(Math.random() * maxGap)
    while (running) {
      try {
        const pid = await request(slot)
        ok++
        byPid.set(pid, (byPid.get(pid) ?? 0) + 1)
      } catch (err) {
        const { code, message } = err as NodeJS.ErrnoException
        const key = code ?? message
        errors[key] = (errors[key] ?? 0) + 1
      }
      finished[slot]++
      if (running) await sleep(gap())
    }
  })
  return {
    size,
    get ok() {
      return ok
    },
    errors,
    byPid,
    get connections() {
      return connections()
    },
    async served(count, timeoutMs = 30_000) {
      const target = ok + count
      const deadline = Date.now() + timeoutMs
      while (ok < target) {
        if (Date.now() > deadline) throw new Error(`the pool stalled at ${ok} answers; errors ${JSON.stringify(errors)}`)
        await sleep(20)
      }
    },
    async cycled(timeoutMs = 30_000) {
      // Two: the one in flight now may have been sent before the call.
      const target = finished.map((n) => n + 2)
      const deadline = Date.now() + timeoutMs
      while (finished.some((n, slot) => n < target[slot])) {
        if (Date.now() > deadline) throw new Error(`the pool stalled: ${finished.filter((n, slot) => n < target[slot]).length} connections without a request; errors ${JSON.stringify(errors)}`)
        await sleep(20)
      }
    },
    async stop() {
      running = false
      await Promise.all(loops)
      await close()
    },
  }
}

/** `size` loops, each with an http.Agent of its own (keepAlive, maxSockets 1): one socket per loop. */
export function agentPool(port: number, size: number, options: PoolOptions = {}): PoolLoad {
  let opened = 0
  const agents = Array.from({ length: size }, () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    // Agent#createConnection is how the agent opens each socket: counted here.
    const create = agent.createConnection.bind(agent) as (...args: unknown[]) => unknown
    ;(agent as unknown as { createConnection: (...args: unknown[]) => unknown }).createConnection = (...args: unknown[]) => {
      opened++
      return create(...args)
    }
    return agent
  })
  const request = (slot: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: agents[slot], timeout: 10_000 }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('error', reject)
        res.on('end', () => (res.statusCode === 200 ? resolve(Number(body)) : reject(new Error(`status ${res.statusCode}`))))
      })
      req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })))
      req.on('error', reject)
    })
  return poolLoad(size, request, () => opened, async () => {
    for (const agent of agents) agent.destroy()
  }, options)
}

/**
 * `size` loops, each with an undici Pool of one connection of its own
 * (pipelining 1, keep-alive): one Pool shared by all loops would open only
 * as many connections as requests overlap, and leave the rest unused.
 * undici retries nothing here (nodejs/undici #3492).
 */
export function undiciPool(port: number, size: number, options: PoolOptions = {}): PoolLoad {
  let opened = 0
  const pools = Array.from({ length: size }, () => {
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1, pipelining: 1, keepAliveTimeout: 30_000 })
    pool.on('connect', () => opened++)
    return pool
  })
  const request = async (slot: number): Promise<number> => {
    const { statusCode, body } = await pools[slot].request({ path: '/', method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 })
    const text = await body.text()
    if (statusCode !== 200) throw new Error(`status ${statusCode}`)
    return Number(text)
  }
  return poolLoad(size, request, () => opened, async () => {
    await Promise.all(pools.map((pool) => pool.close()))
  }, options)
}

export interface PoolRun {
  ok: number
  errors: Record<string, number>
  connections: number
  /** Per upgrade: ms from the hand-off until each old process was gone. */
  exits: number[][]
  handedOver: unknown[]
  pids: number
}

/**
 * Starts `mode`, runs `makeLoad` on its port, and upgrades `upgrades` times:
 * each time, waits until every old process has exited, then until each
 * connection has sent a request to the new generation.
 */
export async function poolThroughUpgrades(mode: Mode, makeLoad: (port: number) => PoolLoad, handOff: boolean, upgrades: number): Promise<PoolRun> {
  const d = await startDeployment(mode, { handOff })
  const load = makeLoad(d.port)
  const exits: number[][] = []
  try {
    // Every connection of the pool open and used.
    await load.cycled()
    for (let i = 0; i < upgrades; i++) {
      const { old, at } = await d.upgrade()
      exits.push(await exitTimes(old, at))
      // Each connection used on the new generation before the next upgrade.
      await load.cycled()
    }
  } finally {
    await load.stop()
  }
  const run = { ok: load.ok, errors: load.errors, connections: load.connections, exits, handedOver: d.drained.map((e) => e.handedOver), pids: load.byPid.size }
  console.log(`keepalive-pool ${mode} hand-off ${handOff ? 'on' : 'off'}: ${JSON.stringify(run)}`)
  return run
}
