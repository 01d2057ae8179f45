/**
 * When handover/register says "ready" for an unmodified app: once every
 * listen() that went through it has completed, no other is under way, and
 * one more turn of the event loop (a setImmediate) has passed without a new
 * one starting. A server that starts listening in the same turn as another
 * finishes, or in a callback of it (fastify's second address for
 * `localhost`), is waited for; one that starts after an `await` of something
 * slow is not: that is what holdReady() is for.
 */
export class ReadinessGate {
  private pending = 0
  private listened = 0
  private holds = 0
  private scheduled?: NodeJS.Immediate
  private fired = false

  constructor(private readonly onReady: () => void) {}

  /** A listen() started; call the result once it has completed (or failed). */
  listenStarted(): (ok: boolean) => void {
    this.pending++
    this.cancel()
    let done = false
    return (ok) => {
      if (done) return
      done = true
      this.pending--
      if (ok) this.listened++
      this.schedule()
    }
  }

  /** A server listening on a socket handover did not bind (port 0...): it counts, but nothing waits for it. */
  listenedOutside(): void {
    this.listened++
    this.schedule()
  }

  hold(): () => void {
    if (this.fired) return () => {}
    this.holds++
    this.cancel()
    let released = false
    return () => {
      if (released) return
      released = true
      this.holds--
      this.schedule()
    }
  }

  private schedule(): void {
    this.cancel()
    if (this.fired || this.pending > 0 || this.holds > 0 || this.listened === 0) return
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined
      if (this.fired || this.pending > 0 || this.holds > 0) return
      this.fired = true
      this.onReady()
    })
  }

  private cancel(): void {
    if (this.scheduled) clearImmediate(this.scheduled)
    this.scheduled = undefined
  }
}

let gate: ReadinessGate | undefined

/** handover/register installs its gate here; without it, holdReady() has nothing to hold. */
export function installReadinessGate(g: ReadinessGate): void {
  gate = g
}

/**
 * For apps run with handover/register that must finish something after
 * listen() (warm a cache, connect to a database) before the new generation
 * takes over: call it at start-up, before the work, and call the function it
 * returns when the work is done. The process is not ready while any hold is
 * open; the parent's upgradeTimeout still bounds how long that may take.
 * Without handover/register (your code calls ready() itself), or once the
 * process is already ready, it holds nothing.
 */
export function holdReady(): () => void {
  return gate ? gate.hold() : () => {}
}
