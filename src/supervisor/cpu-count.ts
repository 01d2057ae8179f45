// How many CPUs this process may use, for `handover run -w max`: the
// affinity mask, capped by the cgroup CPU quota (cgroup v2 cpu.max, or v1
// cpu.cfs_quota_us / cpu.cfs_period_us), rounded up, at least 1.
//
// Why not os.availableParallelism() alone: it is libuv's
// uv_available_parallelism(), which on Linux counts sched_getaffinity(0)
// (verified in libuv's src/unix/core.c). Since libuv 1.49.1 (Node 22.12) it
// also caps that by the quota, rounded down, reading only /sys/fs/cgroup
// under the path in /proc/self/cgroup; Node 20's libuv does not read the
// quota at all. So the answer depends on the Node version, and a quota of
// 1.5 CPUs gives 1 where a server wants 2 (the second worker gets half a
// CPU; with 1 it gets none). Here: the mask from /proc/self/status (the
// same mask sched_getaffinity returns: the main thread's, which is the
// thread that asks), and the quota of every cgroup level from this
// process's cgroup up to the mount's root, found through
// /proc/self/mountinfo (the hierarchy can be mounted anywhere, and in a
// container the mount's root is the container's cgroup).
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, posix } from 'node:path'

interface Mount {
  /** The hierarchy's path that is mounted (the cgroup namespace's view). */
  root: string
  mountPoint: string
  fstype: string
  superOptions: string[]
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}

/** /proc/self/mountinfo: "id parent maj:min root mountpoint options [optional...] - fstype source superoptions". */
export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = []
  for (const line of text.split('\n')) {
    const fields = line.split(' ')
    const dash = fields.indexOf('-', 6)
    if (dash === -1 || dash + 3 >= fields.length) continue
    mounts.push({
      root: unescape(fields[3]),
      mountPoint: unescape(fields[4]),
      fstype: fields[dash + 1],
      superOptions: (fields[dash + 3] ?? '').split(','),
    })
  }
  return mounts
}

export interface ProcCgroup {
  /** The cgroup v2 path ("0::/path"), if the process is in a v2 hierarchy. */
  v2?: string
  /** v1: controller -> path ("4:cpu,cpuacct:/docker/abc" gives cpu and cpuacct). */
  v1: Map<string, string>
}

/** /proc/self/cgroup: "hierarchy-id:controllers:path" lines. */
export function parseProcCgroup(text: string): ProcCgroup {
  const out: ProcCgroup = { v1: new Map() }
  for (const line of text.split('\n')) {
    const first = line.indexOf(':')
    const second = line.indexOf(':', first + 1)
    if (first === -1 || second === -1) continue
    const id = line.slice(0, first)
    const controllers = line.slice(first + 1, second)
    const path = line.slice(second + 1)
    if (!path.startsWith('/')) continue
    if (id === '0' && controllers === '') out.v2 = path
    else for (const c of controllers.split(',')) if (c !== '') out.v1.set(c, path)
  }
  return out
}

/** cgroup v2 cpu.max: "max 100000" (no limit) or "50000 100000" (half a CPU). */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/)
  if (quota === 'max' || quota === undefined) return undefined
  return ratio(quota, period ?? '100000')
}

/** cgroup v1: cpu.cfs_quota_us (-1: no limit) over cpu.cfs_period_us. */
export function parseCfs(quotaText: string, periodText: string): number | undefined {
  return quotaText.trim() === '-1' ? undefined : ratio(quotaText.trim(), periodText.trim())
}

function ratio(quota: string, period: string): number | undefined {
  if (!/^\d+$/.test(quota) || !/^\d+$/.test(period) || Number(period) === 0 || Number(quota) === 0) return undefined
  return Number(quota) / Number(period)
}

/**
 * The directories from the process's cgroup up to the mount's root, in
 * the mount: the cgroup's own first. Empty if the cgroup is not under the
 * mount's root (then this mount does not show it).
 */
function levels(mount: Mount, path: string): string[] {
  const root = mount.root === '/' ? '' : mount.root
  if (path !== root && !path.startsWith(`${root}/`)) return []
  const out: string[] = []
  let rel = path.slice(root.length) || '/'
  for (;;) {
    out.push(join(mount.mountPoint, rel))
    if (rel === '/') return out
    rel = posix.dirname(rel)
  }
}

/** The mount that shows `path` best: the one whose root is the longest prefix of it. */
function bestMount(mounts: Mount[], path: string): Mount | undefined {
  let best: Mount | undefined
  for (const m of mounts) {
    const root = m.root === '/' ? '' : m.root
    const shows = root === '' || path === root || path.startsWith(`${root}/`)
    if (shows && (!best || m.root.length > best.root.length)) best = m
  }
  return best
}

export interface CgroupFiles {
  procCgroup: string
  mountinfo: string
  /** A file's content, or undefined if it cannot be read. */
  read(path: string): string | undefined
}

/**
 * The CPU quota in CPUs (1.5 for "150000 100000"), the smallest of every
 * level of every hierarchy that has one, or undefined if there is none.
 * Pure: everything comes through `files`.
 */
export function cgroupCpuLimit(files: CgroupFiles): number | undefined {
  const mounts = parseMountinfo(files.mountinfo)
  const cgroup = parseProcCgroup(files.procCgroup)
  const limits: number[] = []
  if (cgroup.v2 !== undefined) {
    const mount = bestMount(mounts.filter((m) => m.fstype === 'cgroup2'), cgroup.v2)
    for (const dir of mount ? levels(mount, cgroup.v2) : []) {
      const text = files.read(join(dir, 'cpu.max'))
      const limit = text === undefined ? undefined : parseCpuMax(text)
      if (limit !== undefined) limits.push(limit)
    }
  }
  const v1 = cgroup.v1.get('cpu')
  if (v1 !== undefined) {
    const mount = bestMount(mounts.filter((m) => m.fstype === 'cgroup' && m.superOptions.includes('cpu')), v1)
    for (const dir of mount ? levels(mount, v1) : []) {
      const quota = files.read(join(dir, 'cpu.cfs_quota_us'))
      const period = files.read(join(dir, 'cpu.cfs_period_us'))
      const limit = quota === undefined || period === undefined ? undefined : parseCfs(quota, period)
      if (limit !== undefined) limits.push(limit)
    }
  }
  return limits.length === 0 ? undefined : Math.min(...limits)
}

/** A kernel CPU list, "0-3,8,10-11": how many CPUs it names. */
export function countCpuList(list: string): number | undefined {
  let n = 0
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (!m) return undefined
    const lo = Number(m[1])
    const hi = m[2] === undefined ? lo : Number(m[2])
    if (hi < lo) return undefined
    n += hi - lo + 1
  }
  return n > 0 ? n : undefined
}

/** The affinity mask's size from /proc/<pid>/status ("Cpus_allowed_list:\t0-3"). */
export function affinityFromStatus(status: string): number | undefined {
  const m = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)
  return m ? countCpuList(m[1]) : undefined
}

/** The count: min(affinity, quota rounded up), at least 1. */
export function cpuCount(affinity: number, limit: number | undefined): number {
  const capped = limit === undefined ? affinity : Math.min(affinity, Math.ceil(limit))
  return Math.max(1, capped)
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** What `-w max` means for this process now. Outside Linux: os.availableParallelism(). */
export function availableCpus(): number {
  const status = readOrUndefined('/proc/self/status')
  const affinity = (status === undefined ? undefined : affinityFromStatus(status)) ?? availableParallelism()
  const procCgroup = readOrUndefined('/proc/self/cgroup')
  const mountinfo = readOrUndefined('/proc/self/mountinfo')
  const limit = procCgroup === undefined || mountinfo === undefined ? undefined : cgroupCpuLimit({ procCgroup, mountinfo, read: readOrUndefined })
  return cpuCount(affinity, limit)
}
