// Per-process RSS and CPU% from /proc (src/supervisor/process-stats.ts):
// the parsers on text as the kernel writes it, the readers on real processes.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { clockTicks, CpuSampler, parseAuxvClockTicks, parseStat, parseStatusRss, readProcessStats } from '../src/supervisor/process-stats.js'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const children: ChildProcess[] = []
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (isAlive(c.pid!)) c.kill('SIGKILL')
    await waitUntil(() => !isAlive(c.pid!), 10_000, `pid ${c.pid} to exit`)
  }
})

/** A node child that runs `code` and prints "up" once it has done its set-up. */
async function child(code: string): Promise<number> {
  const c = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(c)
  await new Promise<void>((resolve, reject) => {
    c.stdout!.once('data', () => resolve())
    c.once('exit', (code) => reject(new Error(`child exited with ${code}`)))
  })
  return c.pid!
}

describe('parsers', () => {
  it('/proc/<pid>/stat: fields counted from the last parenthesis, whatever the command name holds', () => {
    const tail = 'S 1 100 100 0 -1 4194560 500 0 0 0 731 204 0 0 20 0 11 0 98765 1119211520 12345 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0'
    expect(parseStat(`4242 (node) ${tail}`)).toEqual({ state: 'S', cpuTicks: 935, startTicks: 98765 })
    expect(parseStat(`4242 (a) (b c) ) ${tail}`)).toEqual({ state: 'S', cpuTicks: 935, startTicks: 98765 })
    expect(parseStat('')).toBeUndefined()
    expect(parseStat('4242 (node) S 1 2')).toBeUndefined()
    expect(parseStat(`4242 (node) ${tail.replace(' 731 ', ' x ')}`)).toBeUndefined()
  })

  it('/proc/<pid>/status: VmRSS in bytes; none for a zombie', () => {
    expect(parseStatusRss('Name:\tnode\nVmHWM:\t  70000 kB\nVmRSS:\t   61224 kB\nRssAnon:\t 1 kB\n')).toBe(61224 * 1024)
    expect(parseStatusRss('Name:\tnode\nState:\tZ (zombie)\n')).toBeUndefined()
  })

  it('the auxiliary vector: AT_CLKTCK found among other entries, either word size and byte order', () => {
    const vector = (word: 4 | 8, le: boolean, pairs: Array<[number, number]>): Buffer => {
      const b = Buffer.alloc(pairs.length * 2 * word)
      pairs.flat().forEach((v, i) => {
        if (word === 8) (le ? b.writeBigUInt64LE(BigInt(v), i * 8) : b.writeBigUInt64BE(BigInt(v), i * 8))
        else (le ? b.writeUInt32LE(v, i * 4) : b.writeUInt32BE(v, i * 4))
      })
      return b
    }
    const pairs: Array<[number, number]> = [[33, 0x7fff], [16, 0xbfebfbff], [6, 4096], [17, 250], [0, 0]]
    expect(parseAuxvClockTicks(vector(8, true, pairs), 8, true)).toBe(250)
    expect(parseAuxvClockTicks(vector(8, false, pairs), 8, false)).toBe(250)
    expect(parseAuxvClockTicks(vector(4, true, pairs), 4, true)).toBe(250)
    // AT_NULL before it: not found.
    expect(parseAuxvClockTicks(vector(8, true, [[6, 4096], [0, 0], [17, 250]]), 8, true)).toBeUndefined()
  })

  it.runIf(process.platform === 'linux')('this machine\'s clock tick is read from the real auxv (USER_HZ: 100)', () => {
    expect(parseAuxvClockTicks(readFileSync('/proc/self/auxv'), 8, true)).toBe(100)
    expect(clockTicks()).toBe(100)
  })
})

describe.runIf(process.platform === 'linux')('real processes', () => {
  it('a busy child shows CPU% over 50 across a 1 s sample (as the scheduler\'s own count says); an idle one under it', async () => {
    const busy = await child('console.log("up"); for (;;) {}')
    const idle = await child('console.log("up"); setInterval(() => {}, 1000)')
    // The scheduler's own count of the busy child's time on a CPU, in ns
    // (/proc/<pid>/schedstat): what the CPU% read from /proc/<pid>/stat in
    // clock ticks must agree with, however loaded the machine is.
    const onCpu = (): number => Number(readFileSync(`/proc/${busy}/schedstat`, 'utf8').split(' ')[0])
    const sampler = new CpuSampler()
    const first = sampler.sample([busy, idle])
    const [ns0, t0] = [onCpu(), process.hrtime.bigint()]
    expect(first.get(busy)?.cpu).toBeUndefined()
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    const second = sampler.sample([busy, idle])
    const truth = ((onCpu() - ns0) / Number(process.hrtime.bigint() - t0)) * 100
    const cpu = second.get(busy)?.cpu as number
    // Ticks are 10 ms: over 1 s, a few ticks either way.
    expect(Math.abs(cpu - truth)).toBeLessThan(10)
    expect(second.get(idle)?.cpu).toBeLessThan(50)
    // A busy loop gets a whole CPU unless the machine is crowded (a shared
    // 2-core machine running other tests): then the scheduler's count says so too.
    if (truth > 60) expect(cpu).toBeGreaterThan(50)
    else console.warn(`the machine is crowded: the busy child got ${truth.toFixed(0)}% of a CPU (read ${cpu.toFixed(0)}%); the > 50% check is skipped`)
  })

  it('a child holding 100 MB shows an RSS above 100 MB; a small one below it', async () => {
    const big = await child('const b = Buffer.alloc(100 * 1024 * 1024, 1); console.log("up"); setInterval(() => b[0]++, 1000)')
    const small = await child('console.log("up"); setInterval(() => {}, 1000)')
    expect(readProcessStats(big)?.rss).toBeGreaterThan(100 * 1024 * 1024)
    expect(readProcessStats(small)?.rss).toBeLessThan(100 * 1024 * 1024)
  })

  it('a stopped child reads as state T; an exited and reaped one as undefined, and the sampler forgets it', async () => {
    const pid = await child('console.log("up"); setInterval(() => {}, 1000)')
    process.kill(pid, 'SIGSTOP')
    await waitUntil(() => readProcessStats(pid)?.state === 'T', 5_000, 'the child to show as stopped')
    process.kill(pid, 'SIGKILL')
    await waitUntil(() => !isAlive(pid), 10_000, 'the child to exit')
    await waitUntil(() => readProcessStats(pid) === undefined, 10_000, 'the child to be reaped')
    expect(new CpuSampler().sample([pid]).size).toBe(0)
  })
})
