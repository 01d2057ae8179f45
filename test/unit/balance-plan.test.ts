// Who sheds how many connections when `handover run` balances its workers
// (src/supervisor/balance-plan.ts), and who takes each one (leastLoaded).
import { describe, expect, it } from 'vitest'
import { leastLoaded, planShedding } from '../../src/supervisor/balance-plan.js'

const loads = (...open: number[]) => open.map((n, i) => ({ id: i, open: n }))

describe('planShedding', () => {
  it('a worker with every connection sheds down to the fair share', () => {
    expect(planShedding(loads(50, 0))).toEqual([{ id: 0, count: 25 }])
    expect(planShedding(loads(0, 50))).toEqual([{ id: 1, count: 25 }])
  })

  it('the fair share is rounded up: an odd total leaves the extra one where it is', () => {
    expect(planShedding(loads(40, 11))).toEqual([{ id: 0, count: 14 }])
    expect(planShedding(loads(26, 25))).toEqual([])
  })

  it('nothing moves within 1.1 times the fair share, or under 2 connections over it', () => {
    // 27.5 is 1.1 x 25: 27 stays, 28 sheds 3.
    expect(planShedding(loads(27, 23))).toEqual([])
    expect(planShedding(loads(28, 22))).toEqual([{ id: 0, count: 3 }])
    // 3 against 1 is 1.5 x the fair share but only 1 over it.
    expect(planShedding(loads(3, 1))).toEqual([])
    expect(planShedding(loads(4, 0))).toEqual([{ id: 0, count: 2 }])
  })

  it('what it leaves is within the 1.2 x bar for any split of 50 over 2 workers', () => {
    for (let a = 0; a <= 50; a++) {
      const plan = planShedding(loads(a, 50 - a))
      const after = [a, 50 - a]
      for (const { id, count } of plan) after[id] -= count
      expect(Math.max(...after), `${a}/${50 - a}`).toBeLessThanOrEqual(30)
    }
  })

  it('with more workers, every one over sheds; those under take', () => {
    expect(planShedding(loads(60, 30, 0, 10))).toEqual([{ id: 0, count: 35 }, { id: 1, count: 5 }])
    expect(planShedding(loads(10, 10, 10))).toEqual([])
  })

  it('one worker, no workers, no connections: nothing', () => {
    expect(planShedding(loads(50))).toEqual([])
    expect(planShedding([])).toEqual([])
    expect(planShedding(loads(0, 0))).toEqual([])
  })
})

describe('leastLoaded', () => {
  it('the taker with the fewest open connections; the first of equals', () => {
    expect(leastLoaded(['a', 'b', 'c'], (t) => ({ a: 5, b: 2, c: 2 })[t])).toBe('b')
  })

  it('undefined when any taker does not say (an older release): the caller goes round-robin', () => {
    expect(leastLoaded(['a', 'b'], (t) => (t === 'a' ? 1 : undefined))).toBeUndefined()
    expect(leastLoaded([], () => 0)).toBeUndefined()
  })
})
