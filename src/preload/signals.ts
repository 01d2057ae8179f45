import { constants } from 'node:os'
import type { HandoverError } from '../core/errors.js'
import { withDeadline } from '../core/deadline.js'
import type { Upgrader } from '../api/upgrader.js'
import type { PreloadSettings } from '../core/options.js'

type StopSignal = 'SIGTERM' | 'SIGINT'

/**
 * What signals mean to a process run with handover/register, outside the
 * supervisor. Installed when the first server listens through handover, so
 * a process that never serves (npm, a build step under NODE_OPTIONS) keeps
 * Node's defaults.
 *
 * - SIGHUP (or HANDOVER_UPGRADE_SIGNAL, e.g. SIGUSR2: then SIGHUP stays the
 *   app's) upgrades, and says how it went in one line on stderr. One that
 *   arrives while an upgrade is under way is queued (upgradeSoon()).
 * - SIGTERM and SIGINT stop: no more upgrades, a starting child is killed,
 *   and, unless the app has a handler of its own for that signal, every
 *   server is drained and the process exits 0. A second one exits at once
 *   with 128 + the signal number.
 * - If the app handles SIGTERM/SIGINT itself, its handler owns the shutdown:
 *   handover only stops upgrading and removes its pid file, and drains and
 *   exits nothing, so nothing is cut off under the app's own close().
 */
export class ProcessSignals {
  /** Set when the app's own handler took a stop signal: the exit is the app's. */
  shutdownIsTheApps = false
  private stopping = false
  /** Upgrades asked for by a signal and not settled yet. */
  private readonly inFlight = new Set<Promise<unknown>>()
  private readonly force = new AbortController()

  constructor(
    private readonly upgrader: Upgrader,
    private readonly settings: PreloadSettings,
    private readonly retire: (force: AbortSignal) => Promise<void>,
    private readonly whenReady: Promise<void>,
    /** Why an upgrade must not run now (a worker thread's server), or undefined. */
    private readonly blocker: () => HandoverError | undefined = () => undefined,
  ) {
    process.on(settings.upgradeSignal, this.onUpgradeSignal)
    process.on('SIGTERM', this.onStop)
    process.on('SIGINT', this.onStop)
  }

  /** Resolves once no upgrade asked for by a signal is under way. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
  }

  private readonly onUpgradeSignal = (): void => {
    const started = performance.now()
    const blocked = this.blocker()
    if (blocked) return say(`upgrade failed: ${blocked.code}: ${blocked.message}`)
    const upgrading = this.upgradeSoon().then(
      ({ pid }) => say(`upgraded to pid ${pid} in ${Math.round(performance.now() - started)} ms`),
      (err: HandoverError) => say(`upgrade failed: ${err.code ?? 'ERR_UNKNOWN'}: ${err.message}`),
    ).finally(() => this.inFlight.delete(upgrading))
    this.inFlight.add(upgrading)
  }

  /** Upgrade requests that arrived while this generation was still starting: one upgrade, once it is ready. */
  private afterStart?: Promise<{ pid: number }>

  /**
   * No deploy is lost: one that arrives while an upgrade is under way joins
   * the follow-up generation (the Upgrader's queue, which says so through
   * onEvent); one that arrives while this generation still starts, or while
   * its parent has not handed over yet (its probation), waits for that,
   * bounded, and all such requests make one upgrade.
   */
  private async upgradeSoon(): Promise<{ pid: number }> {
    const { readyTimeout, drainTimeout, exitGrace } = this.settings
    try {
      return await this.upgrader.upgrade({ queue: true })
    } catch (err) {
      const code = (err as HandoverError).code
      if (code === 'ERR_NOT_READY') {
        say('this generation is still starting: the upgrade starts once it is ready')
        this.afterStart ??= withDeadline(this.whenReady, { timeout: readyTimeout }, 'this generation to be ready')
          .then(() => this.upgrader.upgrade({ queue: true, waitForParent: drainTimeout + exitGrace + 5_000 }))
        return this.afterStart
      }
      if (code === 'ERR_PARENT_NOT_EXITED') {
        say('the previous generation has not handed over yet (its probation): the upgrade starts once it has')
        return this.upgrader.upgrade({ queue: true, waitForParent: drainTimeout + exitGrace + 5_000 })
      }
      throw err
    }
  }

  private readonly onStop = (signal: StopSignal): void => {
    if (this.stopping) {
      if (this.shutdownIsTheApps) return
      this.force.abort()
      process.exit(128 + constants.signals[signal])
    }
    this.stopping = true
    this.shutdownIsTheApps = process.listeners(signal).some((listener) => listener !== this.onStop)
    this.upgrader.stop()
    if (!this.shutdownIsTheApps) void this.retire(this.force.signal)
  }
}

function say(line: string): void {
  process.stderr.write(`handover: ${line}\n`)
}
