/**
 * onDrain(): lets an app end its long-lived connections (WebSockets,
 * server-sent events) itself when its process starts draining, for example
 * with close code 1012 ("service restart"), so that clients reconnect at once
 * and reach the new generation instead of waiting for the drain's deadline.
 *
 * "Starts draining" is the first drain() call in the process. That holds in
 * every mode: an app using the API calls drain() after exit(); handover/register
 * calls it for every server it saw, at a hand-off or a stop.
 *
 * An app with a hook owns its long-lived connections: drain() then asks none
 * of them to leave itself (long-lived.ts), and tells the hooks the window it
 * would have spread them over, so that they can spread their own closes.
 */
export interface DrainInfo {
  /**
   * Milliseconds over which long-lived connections should leave, so that
   * their clients do not all reconnect at once: `drain()`'s `leaveWindow`
   * (clamped), under the preload `HANDOVER_LEAVE_WINDOW`. 0 when the drain
   * spreads nothing: close them now.
   */
  leaveWindow: number
}

export type DrainHook = (info: DrainInfo) => void | Promise<void>

const hooks = new Set<DrainHook>()
let announced: Promise<void> | undefined
let info: DrainInfo = { leaveWindow: 0 }
/** How many hooks there were when draining started. */
let announcedTo = 0

/** Runs `hook` when this process starts draining (at once if it already has). Returns a function that unregisters it. */
export function onDrain(hook: DrainHook): () => void {
  if (typeof hook !== 'function') throw new TypeError('onDrain() needs a function')
  if (announced) {
    void runHook(hook)
    return () => {}
  }
  hooks.add(hook)
  return () => void hooks.delete(hook)
}

/**
 * Runs every hook once, concurrently; resolves when all have settled. A hook
 * that throws or rejects is reported on stderr and does not stop the others.
 * The first call's `drainInfo` is what every hook gets.
 */
export function announceDrain(drainInfo: DrainInfo = { leaveWindow: 0 }): Promise<void> {
  if (!announced) {
    info = { leaveWindow: drainInfo.leaveWindow }
    announcedTo = hooks.size
    announced = Promise.all([...hooks].map(runHook)).then(() => hooks.clear())
  }
  return announced
}

/** True once draining has started with at least one hook: the app ends its long-lived connections itself. */
export function hooksOwnLongLived(): boolean {
  return announcedTo > 0
}

async function runHook(hook: DrainHook): Promise<void> {
  try {
    await hook({ ...info })
  } catch (err) {
    process.stderr.write(`handover: an onDrain() hook failed: ${(err as Error)?.stack ?? String(err)}\n`)
  }
}
