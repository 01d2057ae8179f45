// Runs one scenario: start its server, warm up, then load it for the whole
// duration while sampling RSS and (c, d, e, g, h) sending SIGHUP at fixed
// times; wait for every old process to be gone, stop the server, summarize,
// and gather its timeline (lib/timeline.mjs) for the chart.
import http from 'node:http'
import { startLoad } from './load.mjs'
import { BenchServer } from './launch.mjs'
import { freePort, sleep, waitFor } from './proc.mjs'
import { upgradeOnce } from './upgrade.mjs'
import { max, median } from './stats.mjs'
import { servedCounts, timelineDir, timelineOf } from './timeline.mjs'

export const SCENARIOS = {
  a: { title: 'plain http, 1 process', script: 'plain.mjs' },
  // After its load, b also upgrades N times with no load: the same figure as
  // c's upgrade latency, without the CPU contention, beside the idle floor.
  b: { title: 'handover, steady', script: 'server.mjs', idleUpgrades: true },
  c: { title: 'handover, keep-alive, upgrades', script: 'server.mjs', upgrades: true },
  d: { title: 'handover, Connection: close, upgrades', script: 'server.mjs', upgrades: true, close: true },
  // One SIGHUP restarts both workers, one after the other.
  e: { title: 'cluster 2 workers, rolling restarts', script: 'cluster.mjs', upgrades: true, perSignal: 2, workers: 2 },
  // `handover run` (supervised.mjs: Supervisor.start(), the CLI's code) with 2
  // workers of worker.mjs; SIGHUP goes to the supervisor, whose pid stays.
  // One SIGHUP is one new generation of 2 workers.
  f: { title: 'handover run 2 workers, steady', script: 'supervised.mjs', workers: 2, supervisor: true },
  g: { title: 'handover run 2 workers, keep-alive, upgrades', script: 'supervised.mjs', workers: 2, supervisor: true, upgrades: true },
  h: { title: 'handover run 2 workers, Connection: close, upgrades', script: 'supervised.mjs', workers: 2, supervisor: true, upgrades: true, close: true },
  // f's peer: e without its restarts. Its workers' shares come from their
  // timeline samples (cluster.mjs's workers are plain http servers).
  i: { title: 'cluster 2 workers, steady', script: 'cluster.mjs', workers: 2, sharesFromSamples: true },
  // f with the supervisor's --metrics and --probes servers on, each scraped
  // every second (/metrics, /readyz, /livez) as a Prometheus and a kubelet
  // would, much more often: what they cost is m/f (issue 21: >= 0.98).
  m: { title: 'handover run 2 workers, steady, --metrics and --probes scraped every second', script: 'supervised.mjs', workers: 2, supervisor: true, ops: true },
}

/** GETs every path on `port` once a second until stopped; counts answers and failures. */
function scrapeEverySecond(port, paths) {
  const counts = { ok: 0, failed: 0, bytes: 0 }
  const timer = setInterval(() => {
    for (const path of paths) {
      const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 2_000 }, (res) => {
        res.on('data', (chunk) => (counts.bytes += chunk.length))
        res.on('end', () => (res.statusCode === 200 ? counts.ok++ : counts.failed++))
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', () => counts.failed++)
    }
  }, 1_000)
  return { counts, stop: () => clearInterval(timer) }
}

// A generation with fewer requests than this is too small to judge its split.
const MIN_GENERATION_REQUESTS = 1000

/** `round` (1, 2, ...) keeps each run's files apart: the rounds of --runs. */
export async function runScenario(id, { tool, options: o, dir, log, node, date }, round = 1) {
  const spec = SCENARIOS[id]
  let result
  let began
  let loadEnded
  const name = `${id}-r${round}`
  const samples = timelineDir(dir, name)
  const ops = spec.ops ? { metrics: await freePort(), probes: await freePort() } : undefined
  const server = await BenchServer.start(name, spec.script, dir, {
    ...(ops && { BENCH_METRICS_PORT: String(ops.metrics), BENCH_PROBES_PORT: String(ops.probes) }),
    BENCH_KILL_AFTER: String(o.clusterKillAfter),
    BENCH_DRAIN: o.drain,
    BENCH_MAX_LIFETIME: String((o.warmup + o.duration + 120) * 1000),
    BENCH_WORKERS: String(spec.workers ?? 1),
    BENCH_TIMELINE: samples,
  }, node.path)
  const loadOptions = { url: server.url, connections: o.connections, threads: o.threads, close: spec.close }
  try {
    if (o.warmup > 0) await startLoad(tool, { ...loadOptions, seconds: o.warmup }).result
    const load = startLoad(tool, { ...loadOptions, seconds: o.duration })
    const scrapes = ops && [scrapeEverySecond(ops.metrics, ['/metrics']), scrapeEverySecond(ops.probes, ['/readyz', '/livez'])]
    began = Date.now()
    const rss = []
    const split = []
    const sampler = setInterval(() => {
      if (!spec.workers) return void rss.push(server.rssKiB())
      const parts = server.rssSplitKiB()
      split.push(parts)
      rss.push(parts.main + parts.children)
    }, 500)
    const signals = []
    if (spec.upgrades) {
      for (let k = 1; k <= o.upgrades; k++) {
        await sleep(began + k * o.upgradeInterval * 1000 - Date.now())
        const pid = server.currentPid()
        process.kill(pid, 'SIGHUP')
        signals.push(pid)
        log(`  ${id}: SIGHUP ${k}/${o.upgrades} to ${pid}`)
      }
    }
    const load$ = await load.result
    loadEnded = Date.now()
    clearInterval(sampler)
    for (const scrape of scrapes ?? []) scrape.stop()
    // An upgrade signalled late in the load may still be under way: wait for each to settle,
    // as an upgrade or a failure (a cluster SIGHUP is perSignal upgrades, or one failure).
    const per = spec.perSignal ?? 1
    const settled = () => server.events('upgrade').length + per * server.events('upgrade-failed').length >= per * signals.length
    await waitFor('the upgrades to settle', settled, 40_000, 100).catch((err) => log(`  ${id}: ${err.message}`))
    // Old processes drain after the load has ended too; wait for all of them.
    const expectGone = () => server.events('gone').length >= server.events('upgrade').length
    await waitFor('the old processes to exit', expectGone, 40_000, 100).catch((err) => log(`  ${id}: ${err.message}`))
    const idle = []
    if (spec.idleUpgrades) {
      for (let k = 0; k < o.upgrades; k++) idle.push(await upgradeOnce(server))
      log(`  ${id}: ${idle.length} upgrades without load`)
    }
    result = summarize(id, spec, server, load$, rss, signals, idle)
    if (scrapes) {
      const [metrics, probes] = scrapes.map((x) => x.counts)
      result.scrapes = { metrics, probes }
    }
    if (spec.sharesFromSamples) {
      // The workers sample every 100 ms: wait for one more sample after the load.
      await sleep(250)
      const counts = servedCounts(samples)
      const ready = server.events('ready')[0]
      result.workerShares = sharesOf([{ generation: 1, pids: ready.workers, counts }], spec.workers)
    }
    if (split.length) {
      const part = (k) => ({ median: median(split.map((p) => p[k])), peak: max(split.map((p) => p[k])) })
      result.rssSplitKiB = { main: part('main'), workers: part('children'), mainIs: spec.supervisor ? 'supervisor' : 'primary' }
    }
  } finally {
    if (!(await server.stop())) log(`  ${id}: had to SIGKILL leftover processes; log tail:\n${server.logTail()}`)
  }
  // The last generation reports its count as it exits, so only after stop().
  if (spec.supervisor) result.workerShares = workerShares(server, spec.workers)
  result.timeline = timelineOf({ id, spec, dir: samples, events: server.events(), began, loadEnded, load: result.load, tool, options: o, node, date })
  return result
}

/**
 * Each generation's requests split by worker, from the workers' own counts
 * (worker.mjs: at exit, else when it began draining). A worker's share is
 * its count over the fair share, its generation's total / N: 1 is fair, 2
 * with 2 workers means one worker served everything. Generations with fewer
 * than MIN_GENERATION_REQUESTS requests are listed but not judged.
 */
function workerShares(server, n) {
  const counts = new Map()
  for (const e of server.events('draining')) counts.set(e.pid, e.requests)
  for (const e of server.events('served')) counts.set(e.pid, e.requests)
  const generations = [...server.events('ready'), ...server.events('upgrade')].map((e) => ({ generation: e.generation, pids: e.workers ?? e.pids, counts }))
  return sharesOf(generations, n)
}

/** The share figures of [{ generation, pids, counts: Map pid -> requests }]. */
function sharesOf(list, n) {
  const generations = list.map(({ generation, pids, counts }) => {
    const requests = pids.map((pid) => counts.get(pid))
    if (requests.some((r) => r === undefined)) return { generation, pids, requests, missing: true }
    const total = requests.reduce((a, b) => a + b, 0)
    const shares = requests.map((r) => (total ? r / (total / n) : 0))
    return { generation, pids, requests, total, maxShare: Math.max(...shares), judged: total >= MIN_GENERATION_REQUESTS }
  })
  const judged = generations.filter((g) => g.judged)
  const worst = judged.reduce((w, g) => (w && w.maxShare >= g.maxShare ? w : g), undefined)
  return {
    workers: n,
    minRequests: MIN_GENERATION_REQUESTS,
    generations,
    judged: judged.length,
    maxShare: worst?.maxShare,
    worst: worst && { generation: worst.generation, requests: worst.requests, total: worst.total },
  }
}

function summarize(id, spec, server, load, rss, signals, idle) {
  const idleMs = idle.filter((e) => e.event === 'upgrade').map((e) => e.ms)
  const upgrades = server.events('upgrade')
  const gone = server.events('gone')
  const goneMs = []
  for (const u of upgrades) {
    const g = gone.find((e) => e.old === (u.from ?? u.pid))
    if (g) goneMs.push(g.at - u.at)
  }
  const drains = server.events('drained')
  return {
    id,
    title: spec.title,
    load,
    rssKiB: { median: median(rss), peak: max(rss), samples: rss.length },
    upgrades: spec.upgrades
      ? {
          signals: signals.length,
          expected: signals.length * (spec.perSignal ?? 1),
          ok: upgrades.length,
          failed: server.events('upgrade-failed').map((e) => e.code),
          ms: { median: median(upgrades.map((u) => u.ms)), max: max(upgrades.map((u) => u.ms)), all: upgrades.map((u) => u.ms) },
          goneMs: { median: median(goneMs), max: max(goneMs), all: goneMs, missing: upgrades.length - goneMs.length },
          killed: gone.filter((g) => g.killed).length,
          rollingMs: server.events('rolled').map((e) => e.ms),
        }
      : undefined,
    idleUpgrades: spec.idleUpgrades
      ? { ok: idleMs.length, failed: idle.filter((e) => e.event !== 'upgrade').map((e) => e.code), ms: { median: median(idleMs), max: max(idleMs), all: idleMs } }
      : undefined,
    drains: drains.map(({ ms, graceful, forced, via }) => ({ ms, graceful, forced, via })),
    // Of the processes an upgrade started (not the first): their own start to ready, and its phases.
    startupMs: server.events('ready').slice(1).map((e) => e.startupMs).filter((v) => v !== undefined),
    phases: phaseMedians(server.events('ready').slice(1).map((e) => e.phases).filter(Boolean)),
  }
}

function phaseMedians(list) {
  if (!list.length) return undefined
  return Object.fromEntries(Object.keys(list[0]).map((k) => [k, median(list.map((p) => p[k]))]))
}
