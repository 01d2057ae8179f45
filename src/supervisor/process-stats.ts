// Memory and CPU of a process, read from Linux's /proc, for `handover status`
// (RSS, CPU%), the metrics' per-worker gauges and --max-rss. The parsers are
// pure; the readers return undefined where /proc is missing (other
// systems) or the process has gone.
import { readFileSync } from 'node:fs'
import { arch, endianness } from 'node:os'

/** What /proc/<pid>/stat says that we use. */
export interface ProcStat {
  /** R, S, D, Z, T (stopped: SIGSTOP), t, X, I... */
  state: string
  /** Time on a CPU, user + system, in clock ticks. */
  cpuTicks: number
  /** When the process started, in clock ticks after boot. */
  startTicks: number
}

/**
 * /proc/<pid>/stat: "pid (comm) state ppid ..." where comm may hold spaces
 * and parentheses, so fields are counted from the last ')'. utime and stime
 * are fields 14 and 15, starttime 22 (proc(5), counted from 1).
 */
export function parseStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')')
  if (close === -1) return undefined
  // Field 3 (state) is the first after ") ".
  const fields = text.slice(close + 2).trim().split(/\s+/)
  const field = (n: number): number => Number(fields[n - 3])
  const utime = field(14)
  const stime = field(15)
  const start = field(22)
  if (fields.length < 20 || !/^[A-Za-z]$/.test(fields[0]) || ![utime, stime, start].every(Number.isSafeInteger)) return undefined
  return { state: fields[0], cpuTicks: utime + stime, startTicks: start }
}

/** /proc/<pid>/status: the resident set size, from "VmRSS:   123456 kB", in bytes. A zombie has no VmRSS line. */
export function parseStatusRss(text: string): number | undefined {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(text)
  return m ? Number(m[1]) * 1024 : undefined
}

const AT_CLKTCK = 17n
const USER_HZ = 100

/**
 * The kernel's clock tick (USER_HZ, what /proc counts CPU time in). It is
 * 100 on every Linux architecture Node runs on, but the auxiliary vector
 * says it exactly (AT_CLKTCK, what sysconf(_SC_CLK_TCK) returns), and Node
 * has no sysconf. /proc/self/auxv is (type, value) pairs of native words.
 */
export function parseAuxvClockTicks(auxv: Buffer, wordBytes: 4 | 8, littleEndian: boolean): number | undefined {
  const read = (offset: number): bigint => wordBytes === 8
    ? (littleEndian ? auxv.readBigUInt64LE(offset) : auxv.readBigUInt64BE(offset))
    : BigInt(littleEndian ? auxv.readUInt32LE(offset) : auxv.readUInt32BE(offset))
  for (let offset = 0; offset + 2 * wordBytes <= auxv.length; offset += 2 * wordBytes) {
    const type = read(offset)
    if (type === 0n) break // AT_NULL ends the vector.
    if (type === AT_CLKTCK) {
      const value = Number(read(offset + wordBytes))
      return value > 0 ? value : undefined
    }
  }
  return undefined
}

let ticks: number | undefined

export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      const word = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'].includes(arch()) ? 8 : 4
      ticks = parseAuxvClockTicks(readFileSync('/proc/self/auxv'), word, endianness() === 'LE') ?? USER_HZ
    } catch {
      ticks = USER_HZ
    }
  }
  return ticks
}

export interface ProcessStats {
  /** Resident set size in bytes; undefined for a zombie. */
  rss?: number
  /** CPU time used so far, in seconds. */
  cpuSeconds: number
  state: string
}

/** One process's figures now, or undefined if it has gone or there is no /proc. */
export function readProcessStats(pid: number): ProcessStats | undefined {
  try {
    const stat = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
    if (!stat) return undefined
    let rss: number | undefined
    try {
      rss = parseStatusRss(readFileSync(`/proc/${pid}/status`, 'utf8'))
    } catch {
      rss = undefined // Exited between the two reads.
    }
    return { rss, cpuSeconds: stat.cpuTicks / clockTicks(), state: stat.state }
  } catch {
    return undefined
  }
}

/**
 * CPU% per process between one sample and the next, as top shows it: 100 is
 * one CPU's worth (a process with busy threads may show more). The first
 * sample of a pid has no CPU% yet. Pids not sampled in a round are forgotten.
 */
export class CpuSampler {
  private last = new Map<number, { cpuSeconds: number; at: bigint }>()

  constructor(private readonly now: () => bigint = process.hrtime.bigint) {}

  sample(pids: Iterable<number>): Map<number, ProcessStats & { cpu?: number }> {
    const out = new Map<number, ProcessStats & { cpu?: number }>()
    const next = new Map<number, { cpuSeconds: number; at: bigint }>()
    for (const pid of pids) {
      const stats = readProcessStats(pid)
      if (!stats) continue
      const at = this.now()
      const before = this.last.get(pid)
      let cpu: number | undefined
      if (before && at > before.at) {
        cpu = Math.max(0, ((stats.cpuSeconds - before.cpuSeconds) / (Number(at - before.at) / 1e9)) * 100)
      }
      next.set(pid, { cpuSeconds: stats.cpuSeconds, at })
      out.set(pid, cpu === undefined ? stats : { ...stats, cpu })
    }
    this.last = next
    return out
  }
}
