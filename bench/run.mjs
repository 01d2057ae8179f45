// npm run bench [-- options]: see bench/README.md, or --help.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, runsOf } from './lib/args.mjs'
import { nginxMissing, runBehindNginx } from './lib/behind-nginx.mjs'
import { timelineSvg } from './lib/chart.mjs'
import { measureFloors } from './lib/floor.mjs'
import { measureLoadedFloor } from './lib/loaded-floor.mjs'
import { pickTool } from './lib/load.mjs'
import { resolveNode } from './lib/node-binary.mjs'
import { runRealApp } from './lib/real-app.mjs'
import { runProxyPool } from './lib/proxy-pool.mjs'
import { nginxLines, poolLines, proxyChecks } from './lib/proxy-report.mjs'
import { checkLines, checks, floors, notes, realAppLines, runLines, soakLines, supervisorSoakLines, table } from './lib/report.mjs'
import { combineRuns, sideBySide } from './lib/rounds.mjs'
import { runScenario, SCENARIOS } from './lib/scenario.mjs'
import { runSoak, runSupervisorSoak } from './lib/soak.mjs'

const log = (message) => process.stderr.write(`${message}\n`)

let options
try {
  options = parseArgs(process.argv.slice(2))
} catch (err) {
  log(err.message)
  process.exit(2)
}
if (options.help) {
  console.log(options.help)
  process.exit(0)
}
if (process.platform !== 'linux') {
  log('the bench reads /proc and runs on Linux only')
  process.exit(2)
}

const handover = await import('../dist/index.js').catch((err) => {
  log(`cannot import dist/index.js (run npm run build:ts): ${err.message}`)
  process.exit(2)
})
if (typeof handover.drain !== 'function') {
  log('dist/index.js exports no drain(): run npm run build:ts')
  process.exit(2)
}
let tool
let node
try {
  tool = pickTool(options.tool)
  node = resolveNode(options.node)
} catch (err) {
  log(err.message)
  process.exit(2)
}
if (node.path !== process.execPath) log(`servers, floors and j run on node ${node.version} (${node.path})`)
const shape = `${tool.name === 'wrk' ? `-t${options.threads} ` : ''}-c${options.connections}`
log(`load tool: ${tool.name} ${tool.version} (${tool.path}), ${shape}, ${options.duration} s a scenario`)
if (options.drain === 'naive') log('control experiment: the handover server drains with bench/lib/naive-drain.mjs, not drain()')
if (options.scenarios.includes('l') && nginxMissing()) {
  log(`l needs nginx: ${nginxMissing()}`)
  process.exit(2)
}
if (options.upgradeInterval !== options.interval) {
  log(`note: ${options.upgrades} upgrades ${options.interval} s apart do not fit in ${options.duration} s; using ${options.upgradeInterval.toFixed(2)} s`)
}

const dir = mkdtempSync(join(os.tmpdir(), 'handover-bench-'))
const machine = () => ({ loadavg: os.loadavg().map((l) => Number(l.toFixed(2))) })
const results = {
  date: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memMiB: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.release(),
    node: process.version,
    serverNode: node,
    atStart: machine(),
  },
  tool,
  options,
  floor: undefined,
  rounds: 0,
  scenarios: {},
  scenarioRuns: {},
  ratios: {},
  pool: undefined,
  nginx: undefined,
  soak: undefined,
  soakSupervisor: undefined,
  realApp: undefined,
  charts: {},
}

let failed = false
try {
  log(`start-up floor: ${options.floorRuns} runs each`)
  results.floor = await measureFloors(options.floorRuns, node.path)
  const context = { tool, options, dir, log, node, date: results.date }
  if (options.scenarios.some((id) => SCENARIOS[id]?.upgrades)) {
    results.floor.listenUnderLoad = await measureLoadedFloor(options.floorRuns, context)
  }
  // Round r runs every scenario that has r runs or more, in order.
  const loadIds = options.scenarios.filter((s) => SCENARIOS[s])
  results.rounds = Math.max(0, ...loadIds.map((id) => runsOf(options, id)))
  for (let round = 1; round <= results.rounds; round++) {
    for (const id of loadIds.filter((s) => runsOf(options, s) >= round)) {
      log(`${id}: ${SCENARIOS[id].title}${results.rounds > 1 ? ` (round ${round}/${results.rounds})` : ''}`)
      ;(results.scenarioRuns[id] ??= []).push(await runScenario(id, context, round))
    }
  }
  if (options.scenarios.includes('j')) {
    log('j: a real application (express), cold start against an upgrade, no load')
    results.realApp = await runRealApp(context)
  }
  if (options.scenarios.includes('k')) {
    log(`k: a proxy-like keep-alive pool through upgrades, in ${options.modeList.join(', ')}, hand-off ${options.handOffList.join(' and ')}`)
    results.pool = await runProxyPool(context, runsOf(options, 'k'))
  }
  if (options.scenarios.includes('l')) {
    log(`l: nginx in front of ${options.modeList.join(', ')}, hand-off ${options.handOffList.join(' and ')}`)
    results.nginx = await runBehindNginx(context, runsOf(options, 'l'))
  }
  if (options.soak) {
    log(`soak: ${options.soak} upgrades under keep-alive load`)
    results.soak = await runSoak(options.soak, context)
  }
  if (options.soakSupervisor) {
    log(`soak-supervisor: ${options.soakSupervisor} generations of handover run (2 workers) under keep-alive load`)
    results.soakSupervisor = await runSupervisorSoak(options.soakSupervisor, context)
  }
} catch (err) {
  failed = true
  log(`bench failed: ${err.stack}\nserver logs kept in ${dir}`)
}
results.machine.atEnd = machine()
// What ran, also when a later round failed.
for (const [id, runs] of Object.entries(results.scenarioRuns)) results.scenarios[id] = combineRuns(runs)
results.ratios = roundRatios(results.scenarioRuns)
results.checks = results.floor ? [...checks(results), ...proxyChecks(results)] : []
if (results.scenarios && results.floor) {
  const used = [...new Set(Object.values(results.scenarios).flatMap((s) => s.drains.map((d) => d.via)))]
  // j alone puts no load on anything: no load tool, duration or drain to name.
  const loaded = options.scenarios.some((id) => SCENARIOS[id] || id === 'l') || options.soak || options.soakSupervisor
  console.log(`\nhandover bench ${results.date.slice(0, 16)}Z  node ${node.version}  ${results.machine.cpus} cpus` +
    (loaded ? `  load tool: ${tool.name} ${tool.version} ${shape}` : '') +
    (options.scenarios.some((id) => SCENARIOS[id]) ? ` -d${options.duration}s  upgrades: ${options.upgrades} every ${options.upgradeInterval.toFixed(1)} s` : '') +
    (loaded ? `  drain: ${used.join('+') || options.drain}` : '') +
    (results.rounds > 1 ? `  runs: ${results.rounds}, interleaved (medians across runs, ratios within a round, counts summed)` : '') + '\n')
  if (Object.keys(results.scenarios).length) console.log(table(results))
  const remarks = notes(results)
  if (remarks) console.log(`\n${remarks}`)
  const spread = runLines(results)
  if (spread) console.log(`\neach run (${results.rounds} rounds, in order ${Object.keys(results.scenarioRuns).join(' ')}; a chart shows the run with the median req/s):\n${spread}`)
  if (results.pool) console.log(`\nproxy-like keep-alive pool (k):\n${poolLines(results.pool)}`)
  if (results.nginx) console.log(`\nnginx in front (l):\n${nginxLines(results.nginx)}`)
  console.log(`\nstart-up floor:\n${floors(results)}`)
  if (results.realApp) console.log(`\nreal application (j), no load:\n${realAppLines(results.realApp)}`)
  if (results.soak) console.log(`\nsoak:\n${soakLines(results.soak)}`)
  if (results.soakSupervisor) console.log(`\nsupervisor soak (handover run, 2 workers):\n${supervisorSoakLines(results.soakSupervisor)}`)
  if (results.checks.length) console.log(`\ntargets:\n${checkLines(results.checks)}`)
  console.log(`\nload average: ${results.machine.atStart.loadavg.join(' ')} at start, ${results.machine.atEnd.loadavg.join(' ')} at end`)
}
const resultsDir = options.out ? resolve(options.out) : fileURLToPath(new URL('./results/', import.meta.url))
const out = join(resultsDir, `${results.date.slice(0, 10)}.json`)
mkdirSync(resultsDir, { recursive: true })
writeCharts(join(resultsDir, `${results.date.slice(0, 10)}-${results.date.slice(11, 19).replaceAll(':', '')}`, 'charts'))
keepEarlierRun(out)
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`)
log(`results: ${out}`)
if (!failed) rmSync(dir, { recursive: true, force: true })
process.exit(failed ? 1 : 0)

/**
 * Ratios between scenarios taken within each round, so that both saw the
 * same machine: every scenario's req/s and RSS over a's (the table's
 * /plain column), and the pairs the targets and the README compare.
 */
function roundRatios(runs) {
  const out = {}
  const rps = (r) => r.load.rps
  for (const id of Object.keys(runs)) {
    if (id === 'a' || !runs.a) continue
    out[`${id}/a`] = { rps: sideBySide(runs[id], runs.a, rps), rss: sideBySide(runs[id], runs.a, (r) => r.rssKiB.median) }
  }
  for (const [x, y] of [['f', 'i'], ['c', 'e'], ['g', 'e'], ['m', 'f']]) {
    if (runs[x] && runs[y]) out[`${x}/${y}`] = { rps: sideBySide(runs[x], runs[y], rps) }
  }
  return out
}

/** One timeline per scenario that ran, <id>.svg; their paths go into the results. */
function writeCharts(chartsDir) {
  const done = Object.values(results.scenarios).filter((s) => s.timeline)
  if (!done.length) return
  mkdirSync(chartsDir, { recursive: true })
  for (const s of done) {
    const path = join(chartsDir, `${s.id}.svg`)
    writeFileSync(path, timelineSvg(s.timeline))
    results.charts[s.id] = path
  }
  log(`charts: ${chartsDir}/{${done.map((s) => s.id).join(',')}}.svg`)
}

/** <date>.json is the day's latest run; an earlier one moves to <date>-<HHMMSS>.json. */
function keepEarlierRun(path) {
  if (!existsSync(path)) return
  let time = 'earlier'
  try {
    time = JSON.parse(readFileSync(path, 'utf8')).date.slice(11, 19).replaceAll(':', '')
  } catch {}
  renameSync(path, path.replace(/\.json$/, `-${time}.json`))
}
