import { get } from './clients.mjs'

/** One answer (or failure) of a RecordingLoad, when it came. */
export interface Sample {
  t: number
  status?: number
  /** "<pid> <release>" as the behaving.mjs app answers. */
  body?: string
  error?: string
}

/**
 * A few loops of one request at a time on fresh connections, bounded,
 * recording every answer with its time: what a safe deploy must keep
 * answering (who answered, any gap, any failure).
 */
export class RecordingLoad {
  readonly samples: Sample[] = []
  private running = true
  private readonly loops: Promise<void>[]

  constructor(port: number, loops = 3, private readonly pauseMs = 15) {
    this.loops = Array.from({ length: loops }, () => this.loop(port))
  }

  private async loop(port: number): Promise<void> {
    while (this.running) {
      try {
        const { status, body } = await get({ port }, '/', 5_000)
        this.samples.push({ t: Date.now(), status, body })
      } catch (err) {
        this.samples.push({ t: Date.now(), error: (err as NodeJS.ErrnoException).code ?? (err as Error).message })
      }
      await new Promise((r) => setTimeout(r, this.pauseMs))
    }
  }

  async stop(): Promise<void> {
    this.running = false
    await Promise.all(this.loops)
  }

  get failures(): Sample[] {
    return this.samples.filter((s) => s.error !== undefined || (s.status ?? 0) >= 500)
  }

  /** The releases that answered, by count. */
  releases(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const s of this.samples) if (s.body) out[s.body.split(' ')[1]] = (out[s.body.split(' ')[1]] ?? 0) + 1
    return out
  }

  /** The longest time between two successful answers, in ms. */
  longestGap(): number {
    const ok = this.samples.filter((s) => s.status !== undefined && s.status < 500).map((s) => s.t).sort((a, b) => a - b)
    let gap = 0
    for (let i = 1; i < ok.length; i++) gap = Math.max(gap, ok[i] - ok[i - 1])
    return gap
  }
}
