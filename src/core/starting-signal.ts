import { inherited } from './inherited-env.js'
import { ENV, UPGRADE_SIGNALS, type UpgradeSignal } from './options.js'

/**
 * A new generation ignores the upgrade signal (SIGHUP, or the one
 * HANDOVER_UPGRADE_SIGNAL names) from import until its ready(): one meant
 * for the old process (to the process group, or `pkill -HUP -f`, which
 * matches this process's identical command line) would otherwise kill it
 * before the app has installed its own handler. It cannot be ignored
 * earlier: Node resets every inherited signal disposition at start-up, so a
 * parent cannot pass SIG_IGN on. With the app's own handler installed too,
 * both run.
 */
const configured = process.env[ENV.upgradeSignal]
const signal: UpgradeSignal = (UPGRADE_SIGNALS as readonly string[]).includes(configured ?? '') ? (configured as UpgradeSignal) : 'SIGHUP'

function whileStarting(): void {
  if (process.listenerCount(signal) === 1) {
    process.emitWarning(`${signal} ignored: this new generation is still starting`, { type: 'HandoverWarning' })
  }
}
if (inherited.channel !== undefined && process.platform !== 'win32') process.on(signal, whileStarting)

/** At ready() or stop(): the upgrade signal is the app's again (without a handler of its own, it ends the process). */
export function releaseStartingSignal(): void {
  process.removeListener(signal, whileStarting)
}
