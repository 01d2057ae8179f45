// The soak: `count` back-to-back upgrades of the handover server under
// keep-alive load. After every 20th, once the old process is gone, it takes
// a census of the serving process's fds (/proc/<pid>/fd): `base` excludes
// the client connections, which come and go with the load, so a leak of
// listeners, control channels or pipes shows as growth in `base`.
// runSupervisorSoak() does the same for `handover run` (supervised.mjs, 2
// workers): `count` generations, and the census covers the supervisor,
// whose pid stays, and each worker of the current generation.
import { startLoad } from './load.mjs'
import { BenchServer } from './launch.mjs'
import { fdCensus, rssKiB, sleep } from './proc.mjs'
import { upgradeOnce } from './upgrade.mjs'
import { max, min } from './stats.mjs'

const EVERY = 20

/**
 * The loop both soaks share: start `script` under keep-alive load, then
 * `count` upgrades, calling `census(i)` at 0, every 20th and the last.
 * Returns the failed upgrades and the load's result.
 */
async function soakLoop(script, count, extraEnv, { tool, options: o, dir, node }, makeCensus) {
  const server = await BenchServer.start(script === 'server.mjs' ? 'soak' : 'soak-supervisor', script, dir, { BENCH_MAX_LIFETIME: String(3_600_000), ...extraEnv }, node.path)
  const load = startLoad(tool, { url: server.url, seconds: 3600, connections: o.connections, threads: o.threads })
  const census = makeCensus(server)
  const failures = []
  let loadResult
  try {
    await sleep(1000)
    census(0)
    for (let i = 1; i <= count; i++) {
      // On success the old generation has exited, so the fds counted have settled.
      const outcome = await upgradeOnce(server)
      if (outcome.event === 'upgrade-failed') {
        failures.push({ upgrade: i, code: outcome.code, message: outcome.message })
        await sleep(200)
        continue
      }
      if (i % EVERY === 0 || i === count) census(i)
    }
  } finally {
    load.stop()
    loadResult = await load.result.catch((err) => ({ error: err.message }))
    await server.stop()
  }
  return { failures, load: loadResult }
}

/** One fd of slack, for a timer or a log write caught mid-flight. */
function range(list) {
  return { lo: min(list), hi: max(list), flat: max(list) - min(list) <= 1 }
}

const verdict = (r, what) => (r.flat ? 'flat' : `not flat: ${r.lo}..${r.hi} fds ${what}`)

export async function runSoak(count, context) {
  const samples = []
  const { failures, load } = await soakLoop('server.mjs', count, {}, context, (server) => (upgrades) => {
    const pid = server.currentPid()
    const sample = { upgrades, pid, ...fdCensus(pid, server.port), rssKiB: rssKiB(pid) }
    samples.push(sample)
    context.log(`  soak: after ${upgrades} upgrades pid ${pid}: ${sample.total} fds (${sample.base} without ${sample.connections} connections), RSS ${(sample.rssKiB / 1024).toFixed(1)} MiB`)
  })
  const r = range(samples.map((s) => s.base))
  return { upgrades: count, failures, samples, load, verdict: verdict(r, 'besides connections'), flat: r.flat }
}

export async function runSupervisorSoak(count, context) {
  const samples = []
  const { failures, load } = await soakLoop('supervised.mjs', count, { BENCH_WORKERS: '2' }, context, (server) => {
    const currentWorkers = () => {
      const last = [...server.events('ready'), ...server.events('upgrade')].pop()
      return last.workers ?? last.pids
    }
    const one = (pid) => ({ pid, ...fdCensus(pid, server.port), rssKiB: rssKiB(pid) })
    return (upgrades) => {
      const sample = { upgrades, supervisor: one(server.currentPid()), workers: currentWorkers().map(one) }
      samples.push(sample)
      const sv = sample.supervisor
      context.log(`  soak-supervisor: after ${upgrades} generations: supervisor ${sv.pid} ${sv.total} fds (${sv.base} without ${sv.connections} connections); ` +
        `workers ${sample.workers.map((w) => `${w.pid} ${w.total} fds (${w.base} without ${w.connections})`).join(', ')}`)
    }
  })
  const sv = range(samples.map((s) => s.supervisor.base))
  const wk = range(samples.flatMap((s) => s.workers.map((w) => w.base)))
  return {
    upgrades: count,
    failures,
    samples,
    load,
    supervisorVerdict: verdict(sv, 'besides connections'),
    supervisorFlat: sv.flat,
    workersVerdict: verdict(wk, 'besides connections, per worker'),
    workersFlat: wk.flat,
  }
}
