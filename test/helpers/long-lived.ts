// Shared by test/long-lived-*.test.ts: an upgrade that times how long the
// old process lives on after the hand-off, and the spread of reconnects.
import { isAlive, sleep } from './processes.mjs'
import type { PreloadApp } from './preload-app.js'

/** examples/long-lived/, as PreloadApp and Supervised name a script (relative to test/fixtures/apps/). */
export const EXAMPLES = '../../../examples/long-lived/'

/** The leave window and drain timeout the long-lived tests run with (short, to keep them fast). */
export const WINDOW = 2_000
export const DRAIN_TIMEOUT = 6_000
export const LEAVE_ENV = { HANDOVER_LEAVE_WINDOW: String(WINDOW), HANDOVER_DRAIN_TIMEOUT: String(DRAIN_TIMEOUT) }

export interface TimedUpgrade {
  oldPid: number
  newPid: number
  /** Date.now() when the old process's "upgraded to pid" line arrived: its drain starts then. */
  handedOver: number
  /** ms from then until the old process was gone. */
  oldLived: number
}

/**
 * SIGHUP to the serving pid, then waits (up to the drain timeout + 5 s) for
 * the old process to be gone, and says how long that took after the hand-off.
 */
export async function timedUpgrade(app: PreloadApp): Promise<TimedUpgrade> {
  const oldPid = app.current
  const from = app.lines.length
  process.kill(oldPid, 'SIGHUP')
  const match = await app.waitForLine(/^handover: (upgraded to pid (\d+) in \d+ ms|upgrade failed: .*)$/, 30_000, from)
  const handedOver = Date.now()
  if (!match[2]) throw new Error(match[0])
  const newPid = Number(match[2])
  app.current = newPid
  while (isAlive(oldPid)) {
    if (Date.now() - handedOver > DRAIN_TIMEOUT + 5_000) throw new Error(`old process ${oldPid} still alive ${DRAIN_TIMEOUT + 5_000} ms after the hand-off`)
    await sleep(10)
  }
  return { oldPid, newPid, handedOver, oldLived: Date.now() - handedOver }
}

export interface Spread {
  /** Events per tenth of the window, from the first event on. */
  buckets: number[]
  /** The busiest bucket against the mean over the window (events / 10): 10 if all came at once. */
  peakToMean: number
  /** ms from the first event to the last. */
  span: number
}

/**
 * How evenly events (reconnects, client-side Date.now() times) spread over
 * the window. The measure is "no second holds more than 3x the mean
 * rate over the window" for a 10 s window; for another window the bucket
 * is a tenth of it, so the measure means the same for the short test window.
 */
export function spreadOf(times: number[], window = WINDOW): Spread {
  if (times.length === 0) return { buckets: [], peakToMean: 0, span: 0 }
  const first = Math.min(...times)
  const width = window / 10
  const buckets: number[] = []
  for (const t of times) {
    const i = Math.floor((t - first) / width)
    buckets[i] = (buckets[i] ?? 0) + 1
  }
  for (let i = 0; i < buckets.length; i++) buckets[i] ??= 0
  const mean = times.length / 10
  return { buckets, peakToMean: Math.max(...buckets) / mean, span: Math.max(...times) - first }
}

/** Counts of each value: close codes, error codes. */
export function tally<T extends string | number>(values: T[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1
  return out
}
