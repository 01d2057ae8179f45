// `handover status` for people: the control socket's JSON answer as a table.
// Pure: the answer and the clock in, text out. `--json` prints the answer itself.

/**
 * One worker as the supervisor's status lists it. `rss` (bytes), `cpu`
 * (percent of one CPU, over the supervisor's last sample) and `requests`
 * (served by that worker) are optional: a column shows `-` for a worker
 * without the field, and for any value that is not a finite number.
 */
export interface StatusWorker {
  pid: number
  generation: number
  state: string
  /** ISO 8601. */
  startedAt: string
  restarts: number
  /** Why the last restart happened (crash, max-rss, watchdog): shown beside the count. */
  restartReason?: string
  slot?: number
  rss?: number
  cpu?: number
  requests?: number
}

const COLUMNS = ['PID', 'GEN', 'STATE', 'UPTIME', 'RESTARTS', 'RSS', 'CPU%', 'REQUESTS'] as const
/** Numbers read better aligned on the right. */
const RIGHT = new Set<string>(['PID', 'GEN', 'UPTIME', 'RESTARTS', 'RSS', 'CPU%', 'REQUESTS'])
const NONE = '-'

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

/** 2d03h, 5h07m, 12m04s, 9s; `-` for a time in the future or unreadable. */
export function formatUptime(ms: unknown): string {
  if (!finite(ms) || ms < 0) return NONE
  const s = Math.floor(ms / 1000)
  const pad = (n: number): string => String(n).padStart(2, '0')
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`
  return `${Math.floor(s / 86_400)}d${pad(Math.floor(s / 3600) % 24)}h`
}

/** Binary units, as top and ps show memory: 812K, 95.3M, 1.2G. */
export function formatBytes(bytes: unknown): string {
  if (!finite(bytes) || bytes < 0) return NONE
  const units = ['B', 'K', 'M', 'G', 'T']
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v}B` : `${v >= 100 ? Math.round(v) : v.toFixed(1)}${units[i]}`
}

function formatPercent(v: unknown): string {
  return finite(v) && v >= 0 ? v.toFixed(1) : NONE
}

function formatCount(v: unknown): string {
  return finite(v) && v >= 0 ? String(Math.floor(v)) : NONE
}

function text(v: unknown): string {
  return typeof v === 'string' && v !== '' ? v.replace(/[\x00-\x1f\x7f]/g, '?') : finite(v) ? String(v) : NONE
}

function row(w: Partial<Record<keyof StatusWorker, unknown>>, now: number): string[] {
  const started = typeof w.startedAt === 'string' ? Date.parse(w.startedAt) : Number.NaN
  return [
    text(w.pid),
    text(w.generation),
    text(w.state),
    Number.isNaN(started) ? NONE : formatUptime(now - started),
    formatCount(w.restarts) + (typeof w.restartReason === 'string' && /^[a-z-]{1,20}$/.test(w.restartReason) ? ` (${w.restartReason})` : ''),
    formatBytes(w.rss),
    formatPercent(w.cpu),
    formatCount(w.requests),
  ]
}

function layout(rows: string[][]): string[] {
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)))
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (RIGHT.has(COLUMNS[i]) ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd()
  return [line(COLUMNS), ...rows.map(line)]
}

/**
 * The table `handover status` prints. A supervisor's answer (with
 * `workers`) gets a header line and one row per worker; an Upgrader's (one
 * serving process) gets one row. Notes follow for a socket path that no
 * longer leads to the server. Ends with a newline.
 */
export function formatStatusTable(answer: Record<string, unknown>, now: number): string {
  const out: string[] = []
  const notes: string[] = []
  if (answer.socketPathMissing === true) notes.push('note: the control socket\'s path has been deleted; this answer came through another name for it')
  if (answer.socketPathReplaced === true) notes.push('note: the control socket\'s path now leads to something else; this answer came through another name for it')
  if (Array.isArray(answer.workers)) {
    const workers = answer.workers.filter((w): w is Record<string, unknown> => typeof w === 'object' && w !== null)
    const name = typeof answer.name === 'string' ? `${text(answer.name)}: ` : ''
    out.push(`${name}supervisor pid ${text(answer.pid)}, generation ${text(answer.generation)}, ${workers.length} worker${workers.length === 1 ? '' : 's'}`)
    out.push(...layout(workers.map((w) => row(w, now))))
  } else {
    // The API's or the preload's control socket: the generation serving, nothing more known.
    out.push(...layout([row({ pid: answer.pid, state: 'serving', ...pick(answer) }, now)]))
  }
  return `${[...out, ...notes].join('\n')}\n`
}

/** Fields an Upgrader's status may carry one day (startedAt, rss...): shown if present. */
function pick(answer: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of ['generation', 'startedAt', 'restarts', 'rss', 'cpu', 'requests']) if (key in answer) out[key] = answer[key]
  return out
}
