// Scenario e, the in-Node peer: node:cluster with 2 workers and the usual
// rolling restart on SIGHUP. For each old worker: fork a new one, wait for
// 'listening', disconnect the old one, and SIGTERM it if it still lingers
// after BENCH_KILL_AFTER ms (a disconnected worker keeps serving its busy
// keep-alive connections). Events, as in server.mjs, all from the primary:
//   ready {workers}, upgrade {to, ms: fork -> 'listening'}, gone {old, killed},
//   rolled {ms: the whole rolling restart}
import cluster from 'node:cluster'
import http from 'node:http'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { emit, handler, limitLifetime, now } from './lib/handler.mjs'

const WORKERS = 2
limitLifetime()
// Node's default on Linux, said here because f's comparison depends on it:
// the primary accepts and hands connections to the workers in turn.
cluster.schedulingPolicy = cluster.SCHED_RR

if (cluster.isWorker) {
  http.createServer(handler).listen(Number(process.env.BENCH_PORT), '127.0.0.1')
} else {
  const killAfter = Number(process.env.BENCH_KILL_AFTER || 5000)
  const startWorker = async () => {
    const worker = cluster.fork()
    await once(worker, 'listening')
    return worker
  }
  const retire = (worker) => {
    const pid = worker.process.pid
    const timer = setTimeout(() => worker.process.kill('SIGTERM'), killAfter)
    worker.once('exit', () => {
      clearTimeout(timer)
      emit('gone', { old: pid, killed: worker.process.signalCode === 'SIGTERM' })
    })
    worker.disconnect()
  }

  let current = await Promise.all(Array.from({ length: WORKERS }, startWorker))
  writeFileSync(process.env.BENCH_PID_FILE, `${process.pid}\n`)
  emit('ready', { workers: current.map((w) => w.process.pid) })

  let rolling = false
  process.on('SIGHUP', async () => {
    if (rolling) return emit('upgrade-failed', { code: 'BUSY', message: 'a rolling restart is in progress' })
    rolling = true
    const began = now()
    const next = []
    for (const old of current) {
      const start = now()
      const worker = await startWorker()
      emit('upgrade', { from: old.process.pid, to: worker.process.pid, ms: now() - start })
      next.push(worker)
      retire(old)
    }
    current = next
    emit('rolled', { ms: now() - began })
    rolling = false
  })
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM')
    process.exit(0)
  })
}
