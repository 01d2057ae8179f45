import { describe, expect, it } from 'vitest'

// `npm run bench --runs R` folds each scenario's runs into one result
// (bench/lib/rounds.mjs) and takes ratios within each round. Pure.
const ROUNDS = new URL('../bench/lib/rounds.mjs', import.meta.url).href

interface Run {
  id: string
  title: string
  load: { requests: number; seconds: number; rps: number; p50Ms: number; p99Ms: number; errors: Record<string, number>; failed: number }
  rssKiB: { median: number; peak: number; samples: number }
  upgrades?: object
  drains: object[]
  startupMs: number[]
  phases?: Record<string, number>
  timeline: string
}
interface Rounds {
  combineRuns: (runs: Run[]) => Record<string, any>
  sideBySide: (x: Run[] | undefined, y: Run[] | undefined, get: (r: Run) => number | undefined) => { median: number; all: number[] } | undefined
}

function run(rps: number, upgradeMs: number[], read: number, timeline: string): Run {
  const sorted = [...upgradeMs].sort((a, b) => a - b)
  return {
    id: 'c',
    title: 'handover, keep-alive, upgrades',
    load: { requests: rps * 20, seconds: 20, rps, p50Ms: 1, p99Ms: rps / 1000, errors: { connect: 0, read, write: 0, timeout: 0, non2xx: 0 }, failed: read },
    rssKiB: { median: rps, peak: rps * 2, samples: 40 },
    upgrades: {
      signals: upgradeMs.length, expected: upgradeMs.length, ok: upgradeMs.length, failed: [],
      ms: { median: sorted[(sorted.length - 1) >> 1], max: sorted[sorted.length - 1], all: upgradeMs },
      goneMs: { median: 10, max: 20, all: upgradeMs.map(() => 10), missing: 0 },
      killed: 0, rollingMs: [],
    },
    drains: [{ ms: 1, graceful: 50, forced: 0, via: 'handover' }],
    startupMs: [100],
    phases: { main: rps / 100 },
    timeline,
  }
}

describe('combineRuns', () => {
  it('takes the median of each run\'s figures, the largest max, and sums the counts', async () => {
    const { combineRuns } = (await import(ROUNDS)) as Rounds
    // One noisy run (the 768 ms of issue 17) among two quiet ones.
    const c = combineRuns([run(30_000, [250, 260, 270], 0, 'one'), run(14_000, [760, 768, 800], 2, 'two'), run(33_000, [255, 266, 280], 1, 'three')])
    expect(c.runs).toBe(3)
    expect(c.load.rps).toBe(30_000)
    expect(c.load.p99Ms).toBe(30)
    expect(c.load.requests).toBe(77_000 * 20)
    expect(c.load.failed).toBe(3)
    expect(c.load.errors.read).toBe(3)
    expect(c.upgrades.ms.median).toBe(266)
    expect(c.upgrades.ms.max).toBe(800)
    expect(c.upgrades.ms.all).toHaveLength(9)
    expect(c.upgrades.ok).toBe(9)
    expect(c.rssKiB).toEqual({ median: 30_000, peak: 66_000, samples: 120 })
    expect(c.drains).toHaveLength(3)
    expect(c.phases.main).toBe(300)
    expect(c.startupMedianMs).toBe(100)
    expect(c.perRun.map((r: { rps: number }) => r.rps)).toEqual([30_000, 14_000, 33_000])
    expect(c.perRun.map((r: { upgradeMs: number }) => r.upgradeMs)).toEqual([260, 768, 266])
    // The chart is the median run's.
    expect(c.chartRun).toBe(1)
    expect(c.timeline).toBe('one')
  })

  it('gives one run back as it is, with runs: 1', async () => {
    const { combineRuns } = (await import(ROUNDS)) as Rounds
    const one = run(20_000, [300], 0, 'only')
    const c = combineRuns([one])
    expect(c.runs).toBe(1)
    expect(c.load).toEqual(one.load)
    expect(c.timeline).toBe('only')
  })
})

describe('sideBySide', () => {
  it('divides within each round and takes the median of those ratios', async () => {
    const { sideBySide } = (await import(ROUNDS)) as Rounds
    const f = [run(38_000, [], 0, ''), run(20_000, [], 0, ''), run(30_000, [], 0, '')]
    const i = [run(34_000, [], 0, ''), run(25_000, [], 0, ''), run(30_000, [], 0, '')]
    const r = sideBySide(f, i, (x) => x.load.rps)!
    expect(r.all).toEqual([38 / 34, 0.8, 1])
    expect(r.median).toBe(1)
    // Only the rounds both ran; none: undefined.
    expect(sideBySide(f.slice(0, 1), i, (x) => x.load.rps)!.all).toEqual([38 / 34])
    expect(sideBySide(undefined, i, (x) => x.load.rps)).toBeUndefined()
    expect(sideBySide(f, i, () => undefined)).toBeUndefined()
  })
})
