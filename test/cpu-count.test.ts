// `-w max` (src/supervisor/cpu-count.ts): the pure parts on file contents as
// the kernel writes them, then real processes in a real cgroup with a CPU
// quota, and under `taskset -c 0`.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { affinityFromStatus, cgroupCpuLimit, countCpuList, cpuCount, parseCfs, parseCpuMax, parseMountinfo, parseProcCgroup } from '../src/supervisor/cpu-count.js'
import { bundleScript } from './helpers/bundle.js'

const V2_MOUNTINFO = [
  '22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
  '25 30 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
].join('\n')

function files(procCgroup: string, mountinfo: string, contents: Record<string, string>) {
  return { procCgroup, mountinfo, read: (path: string) => contents[path] }
}

describe('parsing', () => {
  it('mountinfo: optional fields, escaped paths, the fstype and super options after the dash', () => {
    const mounts = parseMountinfo([
      '31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct',
      '40 30 0:37 /docker/abc /sys/fs/cgroup/my\\040dir rw,relatime shared:5 master:1 - cgroup2 cgroup2 rw',
      'garbage',
    ].join('\n'))
    expect(mounts).toEqual([
      { root: '/', mountPoint: '/sys/fs/cgroup/cpu', fstype: 'cgroup', superOptions: ['rw', 'cpu', 'cpuacct'] },
      { root: '/docker/abc', mountPoint: '/sys/fs/cgroup/my dir', fstype: 'cgroup2', superOptions: ['rw'] },
    ])
  })

  it('/proc/self/cgroup: the v2 line and each v1 controller', () => {
    const c = parseProcCgroup('12:cpu,cpuacct:/docker/abc\n4:memory:/x\n1:name=systemd:/init.scope\n0::/user.slice/app.service\n')
    expect(c.v2).toBe('/user.slice/app.service')
    expect(c.v1.get('cpu')).toBe('/docker/abc')
    expect(c.v1.get('cpuacct')).toBe('/docker/abc')
    expect(c.v1.get('memory')).toBe('/x')
  })

  it('cpu.max and the cfs files: no limit, a fraction, garbage', () => {
    expect(parseCpuMax('max 100000\n')).toBeUndefined()
    expect(parseCpuMax('150000 100000\n')).toBe(1.5)
    expect(parseCpuMax('50000\n')).toBe(0.5)
    expect(parseCpuMax('x 100000')).toBeUndefined()
    expect(parseCpuMax('100 0')).toBeUndefined()
    expect(parseCfs('-1\n', '100000\n')).toBeUndefined()
    expect(parseCfs('250000\n', '100000\n')).toBe(2.5)
  })

  it('CPU lists and the affinity line of /proc/<pid>/status', () => {
    expect(countCpuList('0-3,8,10-11')).toBe(7)
    expect(countCpuList('0')).toBe(1)
    expect(countCpuList('3-1')).toBeUndefined()
    expect(countCpuList('')).toBeUndefined()
    expect(affinityFromStatus('Name:\tnode\nCpus_allowed:\tff\nCpus_allowed_list:\t0-1,4\nMems_allowed:\t1\n')).toBe(3)
    expect(affinityFromStatus('Name:\tnode\n')).toBeUndefined()
  })

  it('the count: the quota rounded up, never above the mask, at least 1', () => {
    expect(cpuCount(8, undefined)).toBe(8)
    expect(cpuCount(8, 1.5)).toBe(2)
    expect(cpuCount(8, 0.1)).toBe(1)
    expect(cpuCount(2, 6)).toBe(2)
    expect(cpuCount(0, undefined)).toBe(1)
  })
})

describe('the quota of a cgroup hierarchy', () => {
  it('v2: the process\'s own cpu.max, and the smallest of its ancestors up to the mount\'s root', () => {
    const procCgroup = '0::/kubepods/pod1/ctr\n'
    expect(cgroupCpuLimit(files(procCgroup, V2_MOUNTINFO, {
      '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': '150000 100000\n',
      '/sys/fs/cgroup/kubepods/pod1/cpu.max': 'max 100000\n',
      '/sys/fs/cgroup/kubepods/cpu.max': '400000 100000\n',
    }))).toBe(1.5)
    expect(cgroupCpuLimit(files(procCgroup, V2_MOUNTINFO, {
      '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000\n',
      '/sys/fs/cgroup/kubepods/pod1/cpu.max': '50000 100000\n',
    }))).toBe(0.5)
    expect(cgroupCpuLimit(files(procCgroup, V2_MOUNTINFO, { '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000\n' }))).toBeUndefined()
  })

  it('v2 in a container with a cgroup namespace: the path is "/" and the mount shows the container\'s cgroup', () => {
    expect(cgroupCpuLimit(files('0::/\n', V2_MOUNTINFO, { '/sys/fs/cgroup/cpu.max': '200000 100000\n' }))).toBe(2)
  })

  it('v1 without a namespace: the mount\'s root is the container\'s cgroup, the path names it in full', () => {
    const mountinfo = '31 30 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,relatime - cgroup cgroup rw,cpu,cpuacct'
    expect(cgroupCpuLimit(files('5:cpu,cpuacct:/docker/abc\n', mountinfo, {
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '300000\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    }))).toBe(3)
  })

  it('hybrid (v1 controllers, a v2 hierarchy without cpu): the v1 cpu controller\'s quota counts', () => {
    const mountinfo = [
      '31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
      '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n')
    expect(cgroupCpuLimit(files('1:cpu:/svc\n0::/svc\n', mountinfo, {
      '/sys/fs/cgroup/cpu/svc/cpu.cfs_quota_us': '50000\n',
      '/sys/fs/cgroup/cpu/svc/cpu.cfs_period_us': '100000\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
    }))).toBe(0.5)
  })

  it('no cgroup files, or a cgroup outside what is mounted: no limit', () => {
    expect(cgroupCpuLimit(files('', '', {}))).toBeUndefined()
    const mountinfo = '25 30 0:23 /a /sys/fs/cgroup rw - cgroup2 cgroup2 rw'
    expect(cgroupCpuLimit(files('0::/b\n', mountinfo, { '/sys/fs/cgroup/cpu.max': '100000 100000' }))).toBeUndefined()
  })
})

// Real processes: the module bundled into one file, run by a shell that first moves itself into the cgroup.
const MAIN = 'process.stdout.write(JSON.stringify({ ours: m.availableCpus(), node: (await import("node:os")).availableParallelism() }))'
let script: { path: string; remove: () => void }
beforeAll(async () => {
  script = await bundleScript('src/supervisor/cpu-count.ts', MAIN)
})
afterAll(() => script?.remove())

function runIn(cgroupProcs: string | undefined, prefix: string[] = []): { ours: number; node: number } {
  const node = `exec ${[...prefix, process.execPath, script.path].map((a) => `'${a}'`).join(' ')}`
  const shell = cgroupProcs === undefined ? node : `echo $$ > '${cgroupProcs}' && ${node}`
  return JSON.parse(execFileSync('sh', ['-c', shell], { encoding: 'utf8', timeout: 30_000 })) as { ours: number; node: number }
}

/** A writable hierarchy with the cpu controller, or why there is none (the test is then skipped, loudly). */
function findHierarchy(version: 1 | 2): { base: string } | { skip: string } {
  if (process.platform !== 'linux') return { skip: 'not Linux' }
  if (process.geteuid?.() !== 0) return { skip: 'not root: cannot make a cgroup' }
  const mounts = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
  if (version === 2) {
    const m = mounts.find((x) => x.fstype === 'cgroup2')
    if (!m) return { skip: 'no cgroup2 hierarchy is mounted' }
    const controllers = readFileSync(join(m.mountPoint, 'cgroup.controllers'), 'utf8').trim().split(/\s+/)
    if (!controllers.includes('cpu')) return { skip: `the cgroup2 hierarchy at ${m.mountPoint} has no cpu controller (controllers: "${controllers.join(' ')}"; cpu is bound to a v1 hierarchy here)` }
    // The root cgroup may have processes and still enable controllers for its children.
    const subtree = readFileSync(join(m.mountPoint, 'cgroup.subtree_control'), 'utf8')
    if (!subtree.split(/\s+/).includes('cpu')) {
      try {
        writeFileSync(join(m.mountPoint, 'cgroup.subtree_control'), '+cpu')
      } catch (err) {
        return { skip: `cannot enable the cpu controller in ${m.mountPoint}: ${(err as Error).message}` }
      }
    }
    return { base: m.mountPoint }
  }
  const m = mounts.find((x) => x.fstype === 'cgroup' && x.superOptions.includes('cpu'))
  if (!m) return { skip: 'no cgroup v1 hierarchy with the cpu controller is mounted' }
  return { base: m.mountPoint }
}

for (const version of [2, 1] as const) {
  const found = findHierarchy(version)
  if ('skip' in found) console.warn(`SKIPPED: the cgroup v${version} CPU quota test: ${found.skip}`)
  describe.skipIf('skip' in found)(`a real cgroup v${version} with a CPU quota`, () => {
    const base = 'base' in found ? found.base : ''
    const made: string[] = []
    afterAll(() => {
      for (const dir of made.reverse()) if (existsSync(dir)) rmdirSync(dir)
    })
    const cgroup = (parent: string): string => {
      const dir = join(parent, `handover-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`)
      mkdirSync(dir)
      made.push(dir)
      return dir
    }
    const setQuota = (dir: string, cpus: number): void => {
      if (version === 2) writeFileSync(join(dir, 'cpu.max'), `${Math.round(cpus * 100_000)} 100000`)
      else writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(Math.round(cpus * Number(readFileSync(join(dir, 'cpu.cfs_period_us'), 'utf8')))))
    }

    it('half a CPU counts as 1 however many the machine has; no quota counts the mask', () => {
      const dir = cgroup(base)
      const free = runIn(join(dir, 'cgroup.procs'))
      expect(free.ours).toBe(availableParallelism())
      setQuota(dir, 0.5)
      const limited = runIn(join(dir, 'cgroup.procs'))
      expect(limited.ours).toBe(1)
      // For the record: what this Node's own availableParallelism() says there (libuv before 1.49.1 ignores the quota).
      console.log(`cgroup v${version}, quota 0.5 CPU: availableCpus() ${limited.ours}, os.availableParallelism() ${limited.node} (Node ${process.version}, ${availableParallelism()} CPUs)`)
    })

    it('a quota on a parent cgroup caps a process in a child cgroup that has none', () => {
      const parent = cgroup(base)
      if (version === 2) writeFileSync(join(parent, 'cgroup.subtree_control'), '+cpu')
      const child = cgroup(parent)
      setQuota(parent, 0.5)
      expect(runIn(join(child, 'cgroup.procs')).ours).toBe(1)
    })
  })
}

const taskset = spawnSync('taskset', ['-c', '0', 'true'])
if (taskset.status !== 0) console.warn(`SKIPPED: the affinity test needs taskset (util-linux): ${taskset.error?.message ?? taskset.stderr}`)
describe.skipIf(taskset.status !== 0)('the affinity mask', () => {
  it('taskset -c 0: 1, as os.availableParallelism() (sched_getaffinity) says too; without it, the machine\'s count', () => {
    expect(runIn(undefined, ['taskset', '-c', '0'])).toEqual({ ours: 1, node: 1 })
    expect(runIn(undefined).ours).toBe(availableParallelism())
  })
})
