// What one scenario's timeline chart shows, gathered after its run:
// - requests per 100 ms, from the samples every serving process wrote to
//   BENCH_TIMELINE/<pid> (lib/handler.mjs: `<ms> <count so far>` every 100 ms);
// - errors per 100 ms, from the load generator when it can say when
//   (autocannon, lib/autocannon-load.mjs); wrk gives only totals, so with
//   wrk a run with errors shows their total and no timing;
// - a marker per upgrade for its start, the new generation ready and the old
//   one gone, from the servers' events (server.mjs, supervised.mjs, cluster.mjs).
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export const BUCKET_MS = 100
// After the last marker, so that the old generation's drain shows.
const TAIL_MS = 500

/** A fresh folder for one scenario's samples, passed to its server as BENCH_TIMELINE. */
export function timelineDir(dir, id) {
  const path = join(dir, `${id}.timeline`)
  mkdirSync(path, { recursive: true })
  return path
}

/** pid -> [[ms, count so far], ...] in time order. */
function readSamples(dir) {
  const out = new Map()
  for (const name of readdirSync(dir)) {
    if (!/^\d+$/.test(name)) continue
    const samples = readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').map(Number))
    out.set(Number(name), samples.sort((a, b) => a[0] - b[0]))
  }
  return out
}

/**
 * Each process's requests so far, from its last sample (written every
 * 100 ms while it serves): pid -> count. Read 100 ms or more after the load
 * has stopped, it is the final count of a process that is still alive.
 */
export function servedCounts(dir) {
  return new Map([...readSamples(dir)].map(([pid, samples]) => [pid, samples.length ? samples[samples.length - 1][1] : 0]))
}

/**
 * Requests per bucket of [t0, t0 + n * BUCKET_MS): each sample interval's
 * requests are spread over the buckets it overlaps in proportion to time
 * (the process's timer is aligned to the buckets, so most intervals are one).
 */
function bucketize(samples, t0, n) {
  const counts = new Array(n).fill(0)
  for (let k = 1; k < samples.length; k++) {
    const [a, before] = samples[k - 1]
    const [b, after] = samples[k]
    const requests = after - before
    if (requests <= 0) continue
    if (b <= a) {
      add(counts, Math.floor((b - t0) / BUCKET_MS), requests)
      continue
    }
    for (let i = Math.max(0, Math.floor((a - t0) / BUCKET_MS)); i < n && t0 + i * BUCKET_MS < b; i++) {
      const lo = Math.max(a, t0 + i * BUCKET_MS)
      const hi = Math.min(b, t0 + (i + 1) * BUCKET_MS)
      if (hi > lo) counts[i] += (requests * (hi - lo)) / (b - a)
    }
  }
  return counts.map((c) => Math.round(c * 10) / 10)
}

function add(counts, i, v) {
  if (i >= 0 && i < counts.length) counts[i] += v
}

/** Upgrade markers, numbered in the order the upgrades were started; ms relative to t0. */
function markersOf(events, t0) {
  const upgrades = events.filter((e) => e.event === 'upgrade').map((e) => ({ ...e, startAt: e.at - e.ms })).sort((a, b) => a.startAt - b.startAt)
  const out = []
  upgrades.forEach((u, k) => {
    out.push({ kind: 'start', ms: u.startAt - t0, upgrade: k + 1 })
    out.push({ kind: 'ready', ms: u.at - t0, upgrade: k + 1 })
    // The old generation: a process's own pid, the supervisor's first old worker (from), a cluster worker (from).
    const old = u.from ?? u.pid
    const gone = events.find((e) => e.event === 'gone' && e.old === old)
    if (gone) out.push({ kind: 'gone', ms: gone.at - t0, upgrade: k + 1 })
  })
  for (const f of events.filter((e) => e.event === 'upgrade-failed')) out.push({ kind: 'failed', ms: f.at - t0 })
  return out.sort((a, b) => a.ms - b.ms)
}

/**
 * Worker slots: index in its generation (supervisor: ready.workers and
 * upgrade.pids; cluster: a new worker takes the slot of the one it replaces).
 */
function workerSlots(events) {
  const slots = new Map()
  let generation = 0
  for (const e of events) {
    if (e.event !== 'ready' && e.event !== 'upgrade') continue
    const pids = e.workers ?? e.pids
    if (pids) {
      generation = e.generation ?? generation + 1
      pids.forEach((pid, slot) => slots.set(pid, { slot, generation }))
    } else if (e.to !== undefined && slots.has(e.from)) {
      slots.set(e.to, { slot: slots.get(e.from).slot, generation: slots.get(e.from).generation + 1 })
    }
  }
  return slots
}

/**
 * The chart's data (see lib/chart.mjs) for one scenario: `began` and
 * `loadEnded` are the driver's wall-clock ms around the measured load.
 */
export function timelineOf({ id, spec, dir, events, began, loadEnded, load, tool, options, node, date }) {
  const t0 = Math.floor(began / BUCKET_MS) * BUCKET_MS
  const markers = markersOf(events, t0)
  const end = Math.max(loadEnded - t0, ...markers.map((m) => m.ms + TAIL_MS))
  const n = Math.ceil(end / BUCKET_MS)
  const samples = readSamples(dir)
  const perPid = new Map([...samples].map(([pid, s]) => [pid, bucketize(s, t0, n)]))
  const requests = new Array(n).fill(0)
  for (const counts of perPid.values()) counts.forEach((c, i) => (requests[i] += c))

  let workers
  if (spec.workers) {
    const slots = workerSlots(events)
    workers = [...perPid].flatMap(([pid, counts]) => {
      const first = counts.findIndex((c) => c > 0)
      if (first < 0) return []
      const last = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0)
      const where = slots.get(pid) ?? { slot: 0, generation: 0 }
      return [{ pid, ...where, first, counts: counts.slice(first, last + 1) }]
    })
  }

  // wrk counts errors but not when: with none at all, every bucket is known to be 0.
  let errors = null
  if (load.errorBuckets) {
    errors = new Array(n).fill(0)
    for (const [bucket, c] of Object.entries(load.errorBuckets.counts)) add(errors, Math.floor((Number(bucket) * load.errorBuckets.bucketMs - t0) / BUCKET_MS), c)
  } else if (load.failed === 0) {
    errors = new Array(n).fill(0)
  }
  const fmt = (v) => Math.round(v).toLocaleString('en-US')
  const loadShape = `${tool.name}${tool.name === 'wrk' ? ` -t${options.threads}` : ''} -c${options.connections}${spec.close ? ', Connection: close' : ', keep-alive'}`
  const upgrades = `${options.upgrades} upgrade${options.upgrades === 1 ? '' : 's'}`
  const ups = spec.upgrades ? `, ${upgrades} ${options.upgradeInterval.toFixed(1)} s apart` : spec.idleUpgrades ? `, then ${upgrades} without load` : ''
  return {
    title: `${id}: ${spec.title}`,
    date: `${date.slice(0, 10)} ${date.slice(11, 16)} UTC`,
    subtitle: `${loadShape}, ${options.duration} s${ups}; node ${node.version}; ${fmt(load.rps)} req/s, ${fmt(load.failed)} failed`,
    bucketMs: BUCKET_MS,
    requests,
    workers,
    errors,
    errorsTotal: load.failed,
    errorSource: tool.name,
    markers,
  }
}
