// The one request handler every scenario serves: 200 and the serving pid.
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'

const timelineDir = process.env.BENCH_TIMELINE
let served = 0
let sampling = false

export function handler(req, res) {
  res.end(String(process.pid))
  served++
  if (!sampling && timelineDir) startSampling()
}

/** Wall-clock ms with sub-ms resolution, comparable between processes. */
export const now = () => performance.timeOrigin + performance.now()

/**
 * For the timeline charts (lib/timeline.mjs): this process's request count,
 * sampled on a timer aligned to 100 ms of wall clock and appended as a
 * `<ms> <count so far>` line to BENCH_TIMELINE/<pid>. A request costs one
 * increment and no clock read (a clock read costs ~150 ns on the dev VM);
 * a sample that a busy event loop delays is split by the reader in
 * proportion to time. One small append every 100 ms, so that a process
 * killed by a signal (a cluster worker) loses at most its last 100 ms.
 */
function startSampling() {
  sampling = true
  const file = join(timelineDir, String(process.pid))
  const sample = () => appendFileSync(file, `${now().toFixed(1)} ${served}\n`)
  // The request that started sampling is counted in the first interval.
  appendFileSync(file, `${now().toFixed(1)} ${served - 1}\n`)
  const tick = () => {
    sample()
    setTimeout(tick, 100 - (now() % 100)).unref()
  }
  setTimeout(tick, 100 - (now() % 100)).unref()
  process.on('exit', sample)
}

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
