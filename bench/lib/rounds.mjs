// --runs R: scenarios a to i run R times, interleaved (round 1 runs each
// once, in order, then round 2...), so that the tools compared in one round
// saw the same machine. combineRuns() folds a scenario's runs into one
// result of the same shape as a single run, which the table, the notes and
// the targets read as before:
// - a figure of a run (req/s, p99, RSS median, upgrade and old-gone
//   medians) is the median of the runs' figures; a max or a peak is the
//   largest of any run;
// - a count (requests, errors, failed, upgrades) is the total over the runs;
// - `perRun` keeps each run's headline figures, for the spread.
// sideBySide() gives the ratios between two scenarios taken within each
// round (b/a, f/i, ...), and their median. Pure (test/bench-rounds.test.ts).
import { max, median } from './stats.mjs'

const sum = (xs) => xs.reduce((a, b) => a + b, 0)
const medianOf = (list, get) => median(list.map(get).filter((v) => v !== undefined))
const maxOf = (list, get) => max(list.map(get).filter((v) => v !== undefined))

export function combineRuns(runs) {
  if (runs.length === 1) return { ...runs[0], runs: 1, perRun: [perRunFigures(runs[0])] }
  const first = runs[0]
  const errors = Object.fromEntries(Object.keys(first.load.errors).map((k) => [k, sum(runs.map((r) => r.load.errors[k]))]))
  const out = {
    id: first.id,
    title: first.title,
    runs: runs.length,
    load: {
      requests: sum(runs.map((r) => r.load.requests)),
      seconds: sum(runs.map((r) => r.load.seconds)),
      rps: medianOf(runs, (r) => r.load.rps),
      p50Ms: medianOf(runs, (r) => r.load.p50Ms),
      p99Ms: medianOf(runs, (r) => r.load.p99Ms),
      errors,
      failed: sum(runs.map((r) => r.load.failed)),
    },
    rssKiB: { median: medianOf(runs, (r) => r.rssKiB.median), peak: maxOf(runs, (r) => r.rssKiB.peak), samples: sum(runs.map((r) => r.rssKiB.samples)) },
    upgrades: first.upgrades && {
      signals: sum(runs.map((r) => r.upgrades.signals)),
      expected: sum(runs.map((r) => r.upgrades.expected)),
      ok: sum(runs.map((r) => r.upgrades.ok)),
      failed: runs.flatMap((r) => r.upgrades.failed),
      ms: spread(runs.map((r) => r.upgrades.ms)),
      goneMs: { ...spread(runs.map((r) => r.upgrades.goneMs)), missing: sum(runs.map((r) => r.upgrades.goneMs.missing)) },
      killed: sum(runs.map((r) => r.upgrades.killed)),
      rollingMs: runs.flatMap((r) => r.upgrades.rollingMs),
    },
    idleUpgrades: first.idleUpgrades && {
      ok: sum(runs.map((r) => r.idleUpgrades.ok)),
      failed: runs.flatMap((r) => r.idleUpgrades.failed),
      ms: spread(runs.map((r) => r.idleUpgrades.ms)),
    },
    drains: runs.flatMap((r) => r.drains),
    startupMs: runs.flatMap((r) => r.startupMs),
    // As the phases: the median of the runs' medians, so that ready is never before listening.
    startupMedianMs: medianOf(runs, (r) => median(r.startupMs)),
    phases: phases(runs.map((r) => r.phases).filter(Boolean)),
    rssSplitKiB: first.rssSplitKiB && {
      main: { median: medianOf(runs, (r) => r.rssSplitKiB?.main.median), peak: maxOf(runs, (r) => r.rssSplitKiB?.main.peak) },
      workers: { median: medianOf(runs, (r) => r.rssSplitKiB?.workers.median), peak: maxOf(runs, (r) => r.rssSplitKiB?.workers.peak) },
      mainIs: first.rssSplitKiB.mainIs,
    },
    workerShares: first.workerShares && shares(runs.map((r) => r.workerShares)),
    // m: the scrapes of its metrics and probes servers, counted over the runs.
    scrapes: first.scrapes && Object.fromEntries(['metrics', 'probes'].map((k) => [k, {
      ok: sum(runs.map((r) => r.scrapes[k].ok)), failed: sum(runs.map((r) => r.scrapes[k].failed)), bytes: sum(runs.map((r) => r.scrapes[k].bytes)),
    }])),
    perRun: runs.map(perRunFigures),
    // The chart is drawn from the run whose req/s is the median one.
    chartRun: medianRun(runs) + 1,
    timeline: runs[medianRun(runs)].timeline,
  }
  return out
}

/** The index of the run with the median req/s (the lower one of an even count). */
function medianRun(runs) {
  const order = runs.map((r, i) => [r.load.rps, i]).sort((a, b) => a[0] - b[0])
  return order[(order.length - 1) >> 1][1]
}

/** The median of the runs' medians, the largest max, every value. */
function spread(list) {
  return { median: medianOf(list, (m) => m.median), max: maxOf(list, (m) => m.max), all: list.flatMap((m) => m.all) }
}

function phases(list) {
  if (!list.length) return undefined
  return Object.fromEntries(Object.keys(list[0]).map((k) => [k, median(list.map((p) => p[k]))]))
}

/** Every run's generations, each tagged with its run; the worst judged one of any run. */
function shares(list) {
  const generations = list.flatMap((w, i) => w.generations.map((g) => ({ ...g, run: i + 1 })))
  let worst
  list.forEach((w, i) => {
    if (w.maxShare !== undefined && (!worst || w.maxShare > worst.maxShare)) worst = { maxShare: w.maxShare, worst: { ...w.worst, run: i + 1 } }
  })
  return {
    workers: list[0].workers,
    minRequests: list[0].minRequests,
    generations,
    judged: sum(list.map((w) => w.judged)),
    maxShare: worst?.maxShare,
    worst: worst?.worst,
    maxSharePerRun: list.map((w) => w.maxShare),
  }
}

function perRunFigures(r) {
  return {
    rps: r.load.rps,
    p99Ms: r.load.p99Ms,
    failed: r.load.failed,
    upgradeMs: r.upgrades?.ms.median,
    goneMs: r.upgrades?.goneMs.median,
    idleUpgradeMs: r.idleUpgrades?.ms.median,
    maxShare: r.workerShares?.maxShare,
  }
}

/**
 * `get(x) / get(y)` in each round where both x and y ran (lists of runs,
 * index = round - 1): { median, all }, or undefined if no round had both.
 */
export function sideBySide(xRuns, yRuns, get) {
  const all = []
  for (let i = 0; i < Math.min(xRuns?.length ?? 0, yRuns?.length ?? 0); i++) {
    const a = get(xRuns[i])
    const b = get(yRuns[i])
    if (a !== undefined && b) all.push(a / b)
  }
  return all.length ? { median: median(all), all } : undefined
}
