// A child's output read line by line as it arrives (no polling), for the
// scenarios that time what a process prints: j, and k/l's preload and
// `handover run` modes. Every generation of a preloaded app inherits the
// first one's pipes, so one Lines follows them all.
import { appendFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

/**
 * A child's stdout and stderr, line by line as they arrive, with the time
 * each was read; also appended to `logFile`. next(pattern) resolves on the
 * next line that matches (from now on).
 */
export class Lines {
  constructor(child, logFile, what) {
    this.waiters = []
    this.what = what
    this.tail = []
    for (const stream of [child.stdout, child.stderr]) {
      let rest = ''
      stream.setEncoding('utf8').on('data', (chunk) => {
        const at = performance.now()
        appendFileSync(logFile, chunk)
        const lines = (rest + chunk).split('\n')
        rest = lines.pop()
        for (const line of lines) this.take(line, at)
      })
    }
    child.once('exit', (code, signal) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${what} exited (${signal ?? code}) while waiting for ${w.pattern}:\n${this.tail.join('\n')}`))
    })
  }

  take(line, at) {
    this.tail = [...this.tail.slice(-19), line]
    const w = this.waiters.find((x) => x.pattern.test(line))
    if (!w) return
    this.waiters.splice(this.waiters.indexOf(w), 1)
    clearTimeout(w.timer)
    w.resolve({ line, at, match: w.pattern.exec(line) })
  }

  next(pattern, timeout = 30_000) {
    return new Promise((resolve, reject) => {
      const w = { pattern, resolve, reject }
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        reject(new Error(`timed out after ${timeout} ms waiting for ${this.what} to print ${pattern}:\n${this.tail.join('\n')}`))
      }, timeout)
      this.waiters.push(w)
    })
  }
}
