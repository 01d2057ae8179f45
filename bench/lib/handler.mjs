// The one request handler every scenario serves: 200 and the serving pid.
import { appendFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

export function handler(req, res) {
  res.end(String(process.pid))
}

/** Wall-clock ms with sub-ms resolution, comparable between processes. */
export const now = () => performance.timeOrigin + performance.now()

/**
 * Appends one JSON line to the events file the driver passed in BENCH_EVENTS.
 * Small O_APPEND writes do not interleave, so every generation can share it.
 */
export function emit(event, fields = {}) {
  appendFileSync(process.env.BENCH_EVENTS, `${JSON.stringify({ event, pid: process.pid, at: now(), ...fields })}\n`)
}

/** Every bench server outlives a crashed driver by this much at most. */
export function limitLifetime() {
  setTimeout(() => process.exit(70), Number(process.env.BENCH_MAX_LIFETIME || 900_000)).unref()
}
