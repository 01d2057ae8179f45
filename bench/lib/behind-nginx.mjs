// Scenario l: a real nginx in front of each mode (lib/nginx.mjs: upstream
// keepalive 32, HTTP/1.1), --nginx-upgrades upgrades one at a time, with
// connection hand-off on and off one after the other. The load goes through
// nginx with the bench's tool, paced like k's pool: 150 connections, each
// waiting 350-650 ms before its next request. Under a saturating load
// nginx's upstream connections are never idle, and only an idle connection
// can be closed under a request; paced, nginx keeps idle ones in its cache.
// Counted from nginx's own logs: 502 and 504 answers (what a client sees),
// requests nginx retried on another upstream connection (what it hid: a
// GET that failed on a cached connection is retried), and its error log.
import { handOffSwitches, ModeServer, upgradeFigures } from './modes.mjs'
import { Nginx, nginxBinary, nginxVersion, UPSTREAM_KEEPALIVE } from './nginx.mjs'
import { gatewayErrors } from './nginx-log.mjs'
import { startLoad } from './load.mjs'
import { sleep } from './proc.mjs'
import { POOL } from './proxy-pool.mjs'

const WARM_MS = 2000
// After each upgrade: longer than the drain's idle grace (500 ms), so that
// nginx's idle upstream connections meet it.
const HOLD_MS = 700

/** Why l cannot run here, or undefined. */
export function nginxMissing() {
  return nginxBinary() ? undefined : 'nginx is not installed (apt-get install nginx)'
}

export async function runBehindNginx(context, runs) {
  const { options: o, log, node } = context
  const binary = nginxBinary()
  if (!binary) throw new Error(nginxMissing())
  const switches = handOffSwitches(node.path)
  const list = []
  for (let round = 1; round <= runs; round++) {
    for (const mode of o.modeList) {
      for (const setting of o.handOffList) {
        log(`  l: nginx in front of ${mode}, hand-off ${setting}${runs > 1 ? `, round ${round}/${runs}` : ''}`)
        list.push(await nginxOnce(binary, mode, setting, round, context, switches))
      }
    }
  }
  const { tool } = context
  const loadShape = tool.name === 'wrk' ? `wrk -t${o.threads} -c${POOL.connections}` : `autocannon -c${POOL.connections} (a fixed ${(2000 / (POOL.gapMs[0] + POOL.gapMs[1])).toFixed(1)} req/s per connection)`
  return {
    version: nginxVersion(binary), keepalive: UPSTREAM_KEEPALIVE, loadShape, load: { connections: POOL.connections, gapMs: POOL.gapMs },
    upgradesPerRun: o.nginxUpgrades, runs, switches, rows: combine(list), all: list,
  }
}

async function nginxOnce(binary, mode, setting, round, { options: o, dir, node, tool }, switches) {
  const name = `l-${mode}-${setting}-r${round}`
  const server = await ModeServer.start(mode, {
    name, dir, handOff: setting === 'on', switches, node: node.path,
    env: { BENCH_MAX_LIFETIME: String((o.nginxUpgrades * 50 + 60) * 1000) },
  })
  let nginx
  let load
  let loadResult
  let logs
  const upgrades = []
  try {
    nginx = await Nginx.start(binary, server.port)
    load = startLoad(tool, { url: nginx.url, seconds: 3600, connections: POOL.connections, threads: o.threads, gapMs: POOL.gapMs })
    await sleep(WARM_MS)
    for (let k = 0; k < o.nginxUpgrades; k++) {
      upgrades.push(await server.upgrade())
      await sleep(HOLD_MS)
    }
  } finally {
    load?.stop()
    loadResult = await load?.result.catch((err) => ({ error: err.message }))
    logs = await nginx?.stop()
    await server.stop()
  }
  return { mode, handOff: setting, round, load: loadResult, nginx: logs, upgrades }
}

function combine(list) {
  const rows = []
  for (const run of list) {
    let row = rows.find((r) => r.mode === run.mode && r.handOff === run.handOff)
    if (!row) {
      row = { mode: run.mode, handOff: run.handOff, runs: 0, requests: 0, byStatus: {}, retried: 0, errorLog: {}, clientFailed: 0, clientErrors: {}, upgradeList: [] }
      rows.push(row)
    }
    row.runs++
    const a = run.nginx.access
    row.requests += a.requests
    row.retried += a.retried
    for (const [s, n] of Object.entries(a.byStatus)) row.byStatus[s] = (row.byStatus[s] ?? 0) + n
    for (const [k, n] of Object.entries(run.nginx.errors.byKind)) row.errorLog[k] = (row.errorLog[k] ?? 0) + n
    // The load generator's own count, beside nginx's: they should agree.
    row.clientFailed += run.load.error ? Number.NaN : run.load.failed
    if (run.load.errors) for (const [k, n] of Object.entries(run.load.errors)) row.clientErrors[k] = (row.clientErrors[k] ?? 0) + n
    row.upgradeList.push(...run.upgrades)
  }
  return rows.map(({ upgradeList, ...row }) => ({ ...row, gateway: gatewayErrors(row.byStatus), upgrades: upgradeFigures(upgradeList) }))
}
