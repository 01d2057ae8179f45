// Worker output through the supervisor, one whole line at a time, each
// prefixed with the worker it came from (--log-prefix); and the
// supervisor's own events as text or JSON lines (--log-format).
//
// Workers write to pipes the supervisor reads. A line is written out only
// once its newline has arrived, in one write() together with its prefix,
// so lines of different workers never mix mid-line, whatever sizes the
// workers write in. A line longer than maxLine is written in pieces of
// maxLine bytes (each a line with the prefix) so that one worker cannot
// make the supervisor buffer without bound; a last line without a newline
// is written when its stream ends.
import type { Readable, Writable } from 'node:stream'
import type { LogFormat, SupervisorEvent } from '../core/options.js'

/** Longest line held back waiting for its newline, in bytes. */
export const MAX_LINE = 64 * 1024
const NEWLINE = 0x0a

/** `[g3 w1 4211] `: generation, worker slot (from 1, as people count), pid. */
export function workerPrefix(worker: { generation: number; slot: number; pid: number }): string {
  return `[g${worker.generation} w${worker.slot + 1} ${worker.pid}] `
}

/**
 * Where to cut `buf` at or before `at` without splitting a UTF-8 character:
 * back over continuation bytes (10xxxxxx) to the lead byte, at most 3. Bytes
 * that are not UTF-8 are cut where they are.
 */
export function utf8Cut(buf: Buffer, at: number): number {
  if (at >= buf.length) return buf.length
  let cut = at
  while (cut > at - 3 && cut > 0 && (buf[cut] & 0xc0) === 0x80) cut--
  return (buf[cut] & 0xc0) === 0x80 || cut === 0 ? at : cut
}

/** Splits a byte stream into lines (without their newline). Pure; bounded by maxLine. */
export class LineSplitter {
  private pending: Buffer[] = []
  private pendingBytes = 0

  constructor(private readonly maxLine = MAX_LINE) {
    if (!Number.isInteger(maxLine) || maxLine < 4) throw new RangeError(`maxLine must be a whole number of at least 4 bytes, not ${maxLine}`)
  }

  /** The lines (and pieces of overlong lines) that `chunk` completes. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = []
    let start = 0
    while (start <= chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start)
      const end = newline === -1 ? chunk.length : newline
      if (end > start) this.hold(chunk.subarray(start, end), out)
      if (newline === -1) break
      out.push(this.take())
      start = newline + 1
    }
    return out
  }

  /** At EOF: the last line if it had no newline, else nothing. */
  end(): Buffer[] {
    return this.pendingBytes > 0 ? [this.take()] : []
  }

  private hold(part: Buffer, out: Buffer[]): void {
    this.pending.push(part)
    this.pendingBytes += part.length
    // Strictly over: a line of exactly maxLine bytes whose newline comes next stays one line.
    while (this.pendingBytes > this.maxLine) {
      const all = this.take()
      const cut = utf8Cut(all, this.maxLine)
      out.push(all.subarray(0, cut))
      this.pending = [all.subarray(cut)]
      this.pendingBytes = all.length - cut
    }
  }

  private take(): Buffer {
    const line = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes)
    this.pending = []
    this.pendingBytes = 0
    return line
  }
}

/** One write for everything a chunk completed: each piece with its prefix and a newline. */
export function prefixLines(prefix: Buffer, lines: Buffer[]): Buffer {
  const parts: Buffer[] = []
  for (const line of lines) parts.push(prefix, line, NEWLINE_BUFFER)
  return Buffer.concat(parts)
}
const NEWLINE_BUFFER = Buffer.from('\n')

/**
 * Relays any number of worker streams into one output (the supervisor's
 * stdout or stderr). When the output is full, every source is paused until
 * it drains, so a slow reader holds workers back (as a shared pipe would)
 * instead of growing the supervisor's memory.
 */
export class LogRelay {
  private readonly paused = new Set<Readable>()
  private waiting = false
  /** How many times the output was full and the sources were paused (for tests and metrics). */
  pauses = 0

  constructor(private readonly out: Writable, private readonly maxLine = MAX_LINE) {}

  /** Relays `source` line by line with `prefix` ('' for none); resolves once it has ended and its last line is written. */
  attach(source: Readable, prefix: string): Promise<void> {
    const splitter = new LineSplitter(this.maxLine)
    const head = Buffer.from(prefix)
    return new Promise((resolve) => {
      const write = (lines: Buffer[]): void => {
        if (lines.length === 0) return
        if (!this.out.write(prefixLines(head, lines))) this.pause(source)
      }
      source.on('data', (chunk: Buffer | string) => write(splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)))
      const finish = (): void => {
        source.removeAllListeners('data')
        write(splitter.end())
        this.paused.delete(source)
        resolve()
      }
      // 'close' too: a destroyed stream (the worker killed) may never emit 'end'.
      source.once('end', finish)
      source.once('close', () => {
        if (!source.readableEnded) finish()
      })
      source.on('error', () => {})
    })
  }

  private pause(source: Readable): void {
    source.pause()
    this.paused.add(source)
    if (this.waiting) return
    this.waiting = true
    this.pauses++
    this.out.once('drain', () => {
      this.waiting = false
      for (const s of this.paused) s.resume()
      this.paused.clear()
    })
  }
}

export type { LogFormat, LogLevel, SupervisorEvent } from '../core/options.js'

const RESERVED = new Set(['time', 'level', 'event', 'message'])

/** JSON.stringify that never throws: bigints as strings, errors as their code and message, cycles cut. */
function safeJson(value: object): string {
  const seen = new WeakSet<object>()
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Error) return { name: v.name, message: v.message, ...((v as { code?: unknown }).code !== undefined && { code: (v as { code?: unknown }).code }) }
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[circular]'
      seen.add(v)
    }
    return v
  })
}

/** `{"time":…,"level":…,"event":…,"message":…,…fields}` and a newline: one line, whatever the message holds. */
export function formatJsonEvent(e: SupervisorEvent, now: Date): string {
  const out: Record<string, unknown> = { time: now.toISOString(), level: e.level, event: e.event, message: e.message }
  for (const [key, value] of Object.entries(e.fields ?? {})) if (!RESERVED.has(key) && value !== undefined) out[key] = value
  return `${safeJson(out)}\n`
}

/** `handover: <message>`, as the supervisor has always written; one line (newlines in the message become spaces). */
export function formatTextEvent(e: SupervisorEvent): string {
  return `handover: ${e.message.replace(/[\r\n]+/g, ' ')}\n`
}

/** The supervisor's `log`: its events in the chosen format to `write` (default: stderr); text leaves debug events out. */
export function eventLogger(format: LogFormat, write: (line: string) => void = (line) => void process.stderr.write(line), clock: () => Date = () => new Date()): (e: SupervisorEvent) => void {
  // Debug events (a graceful drain) are for machines: JSON only, never a text line.
  return format === 'json' ? (e) => write(formatJsonEvent(e, clock())) : (e) => e.level !== 'debug' && write(formatTextEvent(e))
}
