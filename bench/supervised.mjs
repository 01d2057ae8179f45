// Scenarios f, g, h, m and the supervisor soak: `handover run` with BENCH_WORKERS
// (2) workers running worker.mjs, started through the programmatic
// Supervisor.start(), the code the CLI runs. Its pid is stable: SIGHUP to it
// starts a new generation (all workers at once, the old ones drain once every
// new one is ready); SIGTERM stops it. Events, as in server.mjs and
// cluster.mjs, all from the supervisor (the workers add theirs, worker.mjs):
//   ready   {generation, workers}          the first generation is serving
//   upgrade {generation, from, to, pids, old, ms}  upgrade() resolved, ms after it was called;
//                                          from/old: the previous generation's pids, to: the first new one
//   upgrade-failed {code, message}
//   gone    {old, workers, generation}     every worker of that generation has exited
//                                          (old = its first pid, as `from` above; polled every 10 ms)
import { emit, limitLifetime } from './lib/handler.mjs'

limitLifetime()
const { Supervisor } = await import('../dist/supervisor/supervisor.js')
const workers = Number(process.env.BENCH_WORKERS || 2)

// Scenario m: the metrics and probes servers on (their ports chosen by the driver, which scrapes them).
const port = (name) => (process.env[name] ? { host: '127.0.0.1', port: Number(process.env[name]) } : undefined)
const supervisor = await Supervisor.start({
  script: new URL('./worker.mjs', import.meta.url).pathname,
  workers,
  pidFile: process.env.BENCH_PID_FILE,
  metrics: port('BENCH_METRICS_PORT'),
  probes: port('BENCH_PROBES_PORT'),
})
const pidsOf = (generation) => supervisor.status().workers.filter((w) => w.generation === generation).map((w) => w.pid)
let generation = supervisor.status().generation
emit('ready', { generation, workers: pidsOf(generation) })

/** Emits 'gone' once none of `old` is among the supervisor's workers any more. */
function watchGone(oldGeneration, old) {
  const timer = setInterval(() => {
    const alive = new Set(supervisor.status().workers.map((w) => w.pid))
    if (old.some((pid) => alive.has(pid))) return
    clearInterval(timer)
    emit('gone', { old: old[0], workers: old, generation: oldGeneration })
  }, 10)
}

process.on('SIGHUP', () => {
  const start = performance.now()
  const before = generation
  const old = pidsOf(before)
  supervisor.upgrade().then(
    (r) => {
      generation = r.generation
      emit('upgrade', { generation: r.generation, from: old[0], old, to: r.pids[0], pids: r.pids, ms: performance.now() - start })
      watchGone(before, old)
    },
    (err) => emit('upgrade-failed', { code: err.code, message: err.message }),
  )
})
process.on('SIGTERM', () => void supervisor.stop().then(() => process.exit(0)))
