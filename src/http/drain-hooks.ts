/**
 * onDrain(): lets an app end its long-lived connections (WebSockets,
 * server-sent events) itself when its process starts draining, for example
 * with close code 1012 ("service restart"), so that clients reconnect at once
 * and reach the new generation instead of waiting for the drain's deadline.
 *
 * "Starts draining" is the first drain() call in the process. That holds in
 * every mode: an app using the API calls drain() after exit(); handover/register
 * calls it for every server it saw, at a hand-off or a stop.
 */
export type DrainHook = () => void | Promise<void>

const hooks = new Set<DrainHook>()
let announced: Promise<void> | undefined

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
 */
export function announceDrain(): Promise<void> {
  announced ??= Promise.all([...hooks].map(runHook)).then(() => hooks.clear())
  return announced
}

async function runHook(hook: DrainHook): Promise<void> {
  try {
    await hook()
  } catch (err) {
    process.stderr.write(`handover: an onDrain() hook failed: ${(err as Error)?.stack ?? String(err)}\n`)
  }
}
