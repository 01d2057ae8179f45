// Scenarios b, c, d and the soak: the handover server, written as the README
// tells an application to be. SIGHUP upgrades it; SIGTERM stops the last
// generation. Each generation appends its events (see lib/handler.mjs):
//   ready    {startupMs, phases} serving; ms since this process started
//   upgrade  {to, ms}            upgrade() resolved, ms after it was called
//   upgrade-failed {code, message}
//   gone     {old}               the previous generation has exited (seen by its successor)
//   draining {}                  exit() resolved: this process stops accepting and drains (k, l:
//                                the moment of the hand-off)
//   drained  {ms, graceful, forced, via}  drain() resolved, ms after exit() did
// The intended application code is exactly: await upg.exit(); await drain(server); process.exit(0)
// BENCH_HAND_OFF=0 (k and l's "hand-off off") calls drain(server, { handOff: false }).
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { emit, handler, limitLifetime } from './lib/handler.mjs'
import { naiveDrain } from './lib/naive-drain.mjs'

limitLifetime()
// Where a new generation's start-up time goes, ms since the process started.
const phases = { main: performance.now() }
// Our parent is the previous generation until it exits; read it before then.
const parentPid = process.ppid
// Imported here, not statically, so that its cost shows in `phases`.
const handover = await import('../dist/index.js')
phases.imported = performance.now()
const upg = await handover.Upgrader.create({ pidFile: process.env.BENCH_PID_FILE })
phases.created = performance.now()

process.on('SIGHUP', () => {
  const start = performance.now()
  upg.upgrade().then(
    ({ pid }) => emit('upgrade', { to: pid, ms: performance.now() - start }),
    (err) => emit('upgrade-failed', { code: err.code, message: err.message }),
  )
})
process.on('SIGTERM', () => upg.stop())

const server = http.createServer(handler)
await new Promise((resolve) => server.listen(upg.listen('tcp4', `127.0.0.1:${process.env.BENCH_PORT}`), resolve))
phases.listening = performance.now()
await upg.ready()
emit('ready', { startupMs: performance.now(), phases, hasParent: upg.hasParent })
if (upg.hasParent) void upg.waitForParent().then(() => emit('gone', { old: parentPid }))

await upg.exit()
const exited = performance.now()
emit('draining')
// BENCH_DRAIN=naive (run.mjs --drain naive) is the control experiment.
const naive = process.env.BENCH_DRAIN === 'naive'
const drainOptions = process.env.BENCH_HAND_OFF === '0' ? { handOff: false } : {}
const counts = naive ? await naiveDrain(server) : await handover.drain(server, drainOptions)
emit('drained', { ms: performance.now() - exited, ...counts, via: naive ? 'naive' : 'handover' })
process.exit(0)
