import { constants } from 'node:os'
import type { HandoverError } from '../core/errors.js'
import { withDeadline } from '../core/deadline.js'
import type { Upgrader } from '../core/upgrader.js'
import type { PreloadSettings } from './settings.js'

type StopSignal = 'SIGTERM' | 'SIGINT'

/**
 * What signals mean to a process run with handover/register, outside the
 * supervisor. Installed when the first server listens through handover, so
 * a process that never serves (npm, a build step under NODE_OPTIONS) keeps
 * Node's defaults.
 *
 * - SIGHUP upgrades, and says how it went in one line on stderr. While the
 *   previous generation is still draining, it waits for it to exit first.
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
  /** The upgrade under way, if any. */
  private upgrading?: Promise<unknown>
  private readonly force = new AbortController()

  constructor(
    private readonly upgrader: Upgrader,
    private readonly settings: PreloadSettings,
    private readonly retire: (force: AbortSignal) => Promise<void>,
    private readonly whenReady: Promise<void>,
    /** Why an upgrade must not run now (a worker thread's server), or undefined. */
    private readonly blocker: () => HandoverError | undefined = () => undefined,
  ) {
    process.on('SIGHUP', this.onHangUp)
    process.on('SIGTERM', this.onStop)
    process.on('SIGINT', this.onStop)
  }

  /** Resolves once no upgrade is under way. */
  async idle(): Promise<void> {
    while (this.upgrading) await this.upgrading
  }

  private readonly onHangUp = (): void => {
    const started = performance.now()
    if (this.upgrading) return say('upgrade failed: ERR_UPGRADE_IN_PROGRESS: an upgrade is already in progress')
    const blocked = this.blocker()
    if (blocked) return say(`upgrade failed: ${blocked.code}: ${blocked.message}`)
    const upgrading = this.upgradeAfterParent().then(
      ({ pid }) => say(`upgraded to pid ${pid} in ${Math.round(performance.now() - started)} ms`),
      (err: HandoverError) => say(`upgrade failed: ${err.code ?? 'ERR_UNKNOWN'}: ${err.message}`),
    ).finally(() => {
      if (this.upgrading === upgrading) this.upgrading = undefined
    })
    this.upgrading = upgrading
  }

  /**
   * A deploy right after the last one must not be lost: while this
   * generation is still starting, or the previous one still draining, the
   * upgrade waits for that (bounded) instead of failing.
   */
  private async upgradeAfterParent(): Promise<{ pid: number }> {
    const { upgradeTimeout, drainTimeout, exitGrace } = this.settings
    try {
      return await this.upgrader.upgrade()
    } catch (err) {
      const code = (err as HandoverError).code
      if (code === 'ERR_NOT_READY') {
        say('waiting for this generation to be ready before upgrading')
        await withDeadline(this.whenReady, { timeout: upgradeTimeout }, 'this generation to be ready')
      } else if (code === 'ERR_PARENT_NOT_EXITED') {
        say('waiting for the previous generation to finish draining before upgrading')
      } else {
        throw err
      }
      // The Upgrader's own bounded wait for a parent that is still draining.
      return this.upgrader.upgrade({ waitForParent: drainTimeout + exitGrace + 5_000 })
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
