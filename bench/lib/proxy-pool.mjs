// Scenario k: a client shaped like a reverse proxy's keep-alive pool
// (lib/pool-client.mjs: 150 connections, one http.Agent socket each, an idle
// gap of 350-650 ms before each next request, no retries) through
// --upgrades upgrades of each mode (lib/modes.mjs), with connection hand-off
// on and off one after the other, so that both see the same machine.
// The upgrades go one at a time: SIGHUP, the new generation ready, every
// old process gone, then HOLD_MS for every connection to send again.
// Each new connection the client opens after the first SIGHUP is counted
// against the upgrade whose window it falls in: a connection replaced.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { handOffSwitches, ModeServer, upgradeFigures } from './modes.mjs'
import { sleep } from './proc.mjs'

export const POOL = { connections: 150, gapMs: [350, 650] }
// Before the first upgrade: every loop has connected (its start is delayed
// up to gapMs[1]) and sent a request or more.
const WARM_MS = 2000
// After each upgrade: longer than the longest gap.
const HOLD_MS = 1000

export async function runProxyPool(context, runs) {
  const { options: o, log, node } = context
  const switches = handOffSwitches(node.path)
  const list = []
  for (let round = 1; round <= runs; round++) {
    for (const mode of o.modeList) {
      for (const setting of o.handOffList) {
        log(`  k: ${mode}, hand-off ${setting}${runs > 1 ? `, round ${round}/${runs}` : ''}`)
        list.push(await poolOnce(mode, setting, round, context, switches))
      }
    }
  }
  return { pool: POOL, upgradesPerRun: o.upgrades, runs, switches, rows: combine(list), all: list }
}

async function poolOnce(mode, setting, round, { options: o, dir, node }, switches) {
  const name = `k-${mode}-${setting}-r${round}`
  const server = await ModeServer.start(mode, {
    name, dir, handOff: setting === 'on', switches, node: node.path,
    env: { BENCH_MAX_LIFETIME: String((o.upgrades * 50 + 60) * 1000) },
  })
  let client
  const upgrades = []
  let result
  try {
    client = startPool({ url: server.url, ...POOL, seconds: o.upgrades * 50 + 30 })
    await sleep(WARM_MS)
    for (let k = 0; k < o.upgrades; k++) {
      upgrades.push(await server.upgrade())
      await sleep(HOLD_MS)
    }
  } finally {
    client?.stop()
    result = await client?.result.catch((err) => ({ error: err.message }))
    await server.stop()
  }
  if (!result || result.error) throw new Error(`k: the pool client failed: ${result?.error}`)
  return { mode, handOff: setting, round, client: result, upgrades, ...attribute(result.newConnections, upgrades) }
}

/** New connections: before the first SIGHUP (the pool filling), and per upgrade window. */
function attribute(times, upgrades) {
  const signals = upgrades.map((u) => u.signalAt)
  const perUpgrade = signals.map(() => 0)
  let before = 0
  for (const t of times) {
    let k = signals.length - 1
    while (k >= 0 && signals[k] > t) k--
    if (k < 0) before++
    else perUpgrade[k]++
  }
  return { before, perUpgrade }
}

/** One row per mode and hand-off setting, summed (counts) or pooled (times) over the rounds. */
function combine(list) {
  const rows = []
  for (const run of list) {
    let row = rows.find((r) => r.mode === run.mode && r.handOff === run.handOff)
    if (!row) {
      row = { mode: run.mode, handOff: run.handOff, runs: 0, requests: 0, failed: 0, errors: {}, before: 0, perUpgrade: [], upgradeList: [] }
      rows.push(row)
    }
    row.runs++
    row.requests += run.client.requests
    row.failed += run.client.failed
    for (const [kind, n] of Object.entries(run.client.errors)) row.errors[kind] = (row.errors[kind] ?? 0) + n
    row.before += run.before
    row.perUpgrade.push(...run.perUpgrade)
    row.upgradeList.push(...run.upgrades)
  }
  return rows.map(({ upgradeList, ...row }) => ({
    ...row,
    replaced: row.perUpgrade.reduce((a, b) => a + b, 0),
    upgrades: upgradeFigures(upgradeList),
  }))
}

function startPool(args) {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./pool-client.mjs', import.meta.url)), JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  const result = new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => {
      const json = stdout.split('\n').filter((l) => l.startsWith('{')).pop()
      if (!json) return reject(new Error(`exited with ${signal ?? code} and no result:\n${stderr}`))
      resolve(JSON.parse(json))
    })
  })
  return { result, stop: () => child.kill('SIGINT') }
}
