import { inherited } from './inherited-env.js'

/**
 * A new generation ignores SIGHUP from import until its ready(): a SIGHUP
 * for the old process (to the process group, or `pkill -HUP -f`, which
 * matches this process's identical command line) would otherwise kill it
 * before the app has installed its own handler. It cannot be ignored
 * earlier: Node resets every inherited signal disposition at start-up, so a
 * parent cannot pass SIG_IGN on. With the app's own handler installed too,
 * both run.
 */
function startingSighup(): void {
  if (process.listenerCount('SIGHUP') === 1) {
    process.emitWarning('SIGHUP ignored: this new generation is still starting', { type: 'HandoverWarning' })
  }
}
if (inherited.channel !== undefined && process.platform !== 'win32') process.on('SIGHUP', startingSighup)

/** At ready() or stop(): SIGHUP is the app's again (without a handler of its own, it ends the process). */
export function releaseStartingSighup(): void {
  process.removeListener('SIGHUP', startingSighup)
}
