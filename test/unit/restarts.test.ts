// The restart backoff of a worker slot (src/supervisor/restarts.ts).
import { describe, expect, it } from 'vitest'
import { FIRST_DELAY, HEALTHY_AFTER, MAX_DELAY, RestartPolicy } from '../../src/supervisor/restarts.js'

describe('RestartPolicy', () => {
  it('doubles from 100 ms to a ceiling of 10 s while workers keep crashing before serving long', () => {
    const policy = new RestartPolicy()
    const delays = Array.from({ length: 10 }, () => policy.next(undefined))
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000])
    expect(delays[0]).toBe(FIRST_DELAY)
    expect(Math.max(...delays)).toBe(MAX_DELAY)
    expect(policy.count).toBe(10)
  })

  it('starts over once a worker has served 60 s', () => {
    const policy = new RestartPolicy()
    policy.next(undefined)
    policy.next(Date.now())
    expect(policy.next(Date.now() - 1_000)).toBe(400)
    expect(policy.next(Date.now() - HEALTHY_AFTER)).toBe(FIRST_DELAY)
  })
})
