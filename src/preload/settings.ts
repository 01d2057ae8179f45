import { resolve } from 'node:path'
import { invalidOption, MAX_TIMEOUT, parseMs } from '../core/options.js'

/**
 * handover/register takes its few settings from the environment, since the
 * app's code does not change. They stay in the environment on purpose: the
 * next generation is started with it and must read the same values.
 */
export interface PreloadSettings {
  /** HANDOVER_PID_FILE: written on ready(), as the pidFile option does. */
  pidFile?: string
  /** HANDOVER_UPGRADE_TIMEOUT, ms: how long a new generation has to become ready. Default 60 000. */
  upgradeTimeout: number
  /** HANDOVER_DRAIN_TIMEOUT, ms: after this, connections still open are destroyed. Default 30 000. */
  drainTimeout: number
  /** HANDOVER_EXIT_GRACE, ms: how long after the drain a process that is still alive is made to exit. Default 5 000. */
  exitGrace: number
  // --- issue 19 (long-lived connections): HANDOVER_LEAVE_WINDOW; moves to core/options.ts with the rest ---
  /**
   * HANDOVER_LEAVE_WINDOW, ms, or `off` (undefined here): long-lived
   * connections are asked to leave within it, each at its own moment.
   * Default 10 000; drain() clamps it to 3/4 of the drain timeout.
   */
  leaveWindow?: number
  /** True if HANDOVER_LEAVE_WINDOW was set (a clamp is then worth a word on stderr). */
  leaveWindowSet: boolean
}

export const DEFAULT_LEAVE_WINDOW = 10_000

export function readPreloadSettings(env: NodeJS.ProcessEnv = process.env): PreloadSettings {
  const ms = (name: string, fallback: number, min: number): number => {
    const text = env[name]
    if (text === undefined || text === '') return fallback
    const value = parseMs(text, min)
    if (value === undefined) throw invalidOption(name, text, `a number of ms from ${min} to ${MAX_TIMEOUT}`)
    return value
  }
  const pidFile = env.HANDOVER_PID_FILE
  return {
    pidFile: pidFile ? resolve(pidFile) : undefined,
    upgradeTimeout: ms('HANDOVER_UPGRADE_TIMEOUT', 60_000, 1),
    drainTimeout: ms('HANDOVER_DRAIN_TIMEOUT', 30_000, 0),
    exitGrace: ms('HANDOVER_EXIT_GRACE', 5_000, 0),
    // issue 19: 'off' keeps every long-lived connection until the drain timeout, as before.
    leaveWindow: env.HANDOVER_LEAVE_WINDOW === 'off' ? undefined : ms('HANDOVER_LEAVE_WINDOW', DEFAULT_LEAVE_WINDOW, 0),
    leaveWindowSet: env.HANDOVER_LEAVE_WINDOW !== undefined && env.HANDOVER_LEAVE_WINDOW !== '',
  }
}
