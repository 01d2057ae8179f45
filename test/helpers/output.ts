import type { ChildProcess } from 'node:child_process'

/**
 * The lines a process (and every process that inherits its stdout and
 * stderr, such as later generations or workers) writes, collected as they
 * arrive, and a wait for the first line that matches.
 */
export class OutputLines {
  readonly lines: string[] = []
  /** True once both pipes are closed: no more lines can come. */
  closed = false
  private waiters: Array<() => void> = []

  constructor(child: ChildProcess, onLine?: (line: string) => void) {
    const collect = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue
        this.lines.push(line)
        onLine?.(line)
      }
      this.wake()
    }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    child.once('close', () => {
      this.closed = true
      this.wake()
    })
  }

  /**
   * The first line from index `from` on that matches; rejects after
   * `timeoutMs`, or at once when `givenUp()` names a reason to stop waiting.
   */
  async waitFor(pattern: RegExp, timeoutMs: number, from: number, givenUp: () => string | undefined): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      for (let i = from; i < this.lines.length; i++) {
        const match = pattern.exec(this.lines[i])
        if (match) return match
      }
      const left = deadline - Date.now()
      const reason = left <= 0 ? 'timed out' : givenUp()
      if (reason) throw new Error(`no line matching ${pattern} (${reason}); output:\n${this.lines.join('\n')}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake()
  }
}
