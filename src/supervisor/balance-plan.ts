/**
 * Who sheds how many connections, for balancing the workers of `handover
 * run` (balancer.ts). Pure, so that it is tested alone (test/unit).
 *
 * A worker is told to shed only when it is clearly over its fair share:
 * more than SLACK times it, and at least MIN_EXCESS connections over it.
 * The slack keeps a worker from being told to move a connection back and
 * forth around the fair share as clients come and go; the bar is
 * 1.2 times the fair share, so 1.1 leaves room for the counts being a
 * moment old. It sheds down to the fair share rounded up: the others,
 * being under it, take them (the router gives each to the least loaded).
 */

/** Over this many times its fair share, a worker sheds. */
export const SLACK = 1.1
/** ... and only if that is at least this many connections over it: 3 against 1 is no imbalance worth a move. */
export const MIN_EXCESS = 2

export interface Load<Id> {
  id: Id
  /** Its open connections that can be handed over. */
  open: number
}

export interface Shed<Id> {
  id: Id
  count: number
}

/** The workers over their fair share of `loads`, and how many each hands over to get down to it. */
export function planShedding<Id>(loads: ReadonlyArray<Load<Id>>): Array<Shed<Id>> {
  if (loads.length < 2) return []
  const total = loads.reduce((sum, l) => sum + l.open, 0)
  const fair = total / loads.length
  const target = Math.ceil(fair)
  const plan: Array<Shed<Id>> = []
  for (const { id, open } of loads) {
    if (open > fair * SLACK && open - fair >= MIN_EXCESS && open > target) plan.push({ id, count: open - target })
  }
  return plan
}

/**
 * Which of `takers` gets the next connection: the one with the fewest open
 * (`load`); undefined if any of them does not say (an older release), so
 * that the caller goes round-robin as before.
 */
export function leastLoaded<T>(takers: readonly T[], load: (taker: T) => number | undefined): T | undefined {
  let best: T | undefined
  let bestLoad = Number.POSITIVE_INFINITY
  for (const taker of takers) {
    const l = load(taker)
    if (l === undefined) return undefined
    if (l < bestLoad) {
      best = taker
      bestLoad = l
    }
  }
  return best
}
