// Node's compile cache for the generations handover starts
// (src/core/compile-cache.ts): where it goes, that an unsafe directory is
// refused, and, with real processes, that a generation started by an
// upgrade or by `handover run` gets it (and fills it), that the opt-outs
// work, and that the app's own child processes do not inherit it.
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { compileCacheDir, withCompileCache } from '../src/core/compile-cache.js'
import { freePort } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { waitUntil } from './helpers/processes.mjs'
import { killSupervised, Supervised } from './helpers/supervisor.js'

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'handover-compile-cache-')))
afterEach(async () => {
  await killAllFixtures()
  await killSupervised()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let count = 0
/** A fresh directory to serve as XDG_CACHE_HOME. */
const fresh = (): string => {
  const d = join(dir, `cache-${++count}`)
  mkdirSync(d, { mode: 0o700 })
  return d
}
/** The environment of a test run, without anything that would pick another directory or turn the cache off. */
const baseEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env }
  for (const name of ['CACHE_DIRECTORY', 'XDG_CACHE_HOME', 'NODE_COMPILE_CACHE', 'NODE_DISABLE_COMPILE_CACHE', 'HANDOVER_COMPILE_CACHE']) delete env[name]
  return env
}

const module = createRequire(import.meta.url)('node:module') as { enableCompileCache?: unknown }
/** module.enableCompileCache() and flushCompileCache() came with 22.8 and 22.10; NODE_COMPILE_CACHE is read from 22.1. */
const [major, minor] = process.versions.node.split('.').map(Number)
const HAS_CACHE = typeof module.enableCompileCache === 'function' && (major > 22 || (major === 22 && minor >= 10))
if (!HAS_CACHE) console.warn(`compile-cache.test: Node ${process.version} has no compile cache (22.10+): the tests of generations that get one are SKIPPED (npm run test:matrix runs them)`)

/** The environment a process was started with (what Node read), not what its process.env became. */
function startEnv(pid: number): Record<string, string> {
  const pairs = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean)
  return Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]))
}

/** The files under `d`, recursively ([] if it does not exist). */
const filesUnder = (d: string): string[] => (existsSync(d) ? readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : [])

describe('where the compile cache goes', () => {
  it('$XDG_CACHE_HOME/handover/compile-cache, made with mode 0700; $CACHE_DIRECTORY (systemd) first; else ~/.cache', () => {
    const xdg = fresh()
    const made = compileCacheDir({ XDG_CACHE_HOME: xdg, HOME: '/nonexistent' })
    expect(made).toBe(join(xdg, 'handover', 'compile-cache'))
    expect(lstatSync(made!).mode & 0o777).toBe(0o700)

    const systemd = fresh()
    expect(compileCacheDir({ CACHE_DIRECTORY: `${systemd}:/var/cache/other`, XDG_CACHE_HOME: xdg })).toBe(join(systemd, 'handover-compile-cache'))

    const home = fresh()
    // A relative XDG_CACHE_HOME is invalid (XDG spec): ignored.
    expect(compileCacheDir({ XDG_CACHE_HOME: 'relative/cache', HOME: home })).toBe(join(home, '.cache', 'handover', 'compile-cache'))
  })

  it('refuses a symbolic link, a directory group or others can open, one of another user, and a file', () => {
    const target = fresh()
    const linked = fresh()
    mkdirSync(join(linked, 'handover'), { mode: 0o700 })
    symlinkSync(target, join(linked, 'handover', 'compile-cache'))
    expect(compileCacheDir({ XDG_CACHE_HOME: linked })).toBeUndefined()

    for (const mode of [0o770, 0o755, 0o701]) {
      const open = fresh()
      mkdirSync(join(open, 'handover', 'compile-cache'), { recursive: true })
      chmodSync(join(open, 'handover', 'compile-cache'), mode)
      expect(compileCacheDir({ XDG_CACHE_HOME: open }), mode.toString(8)).toBeUndefined()
    }

    const file = fresh()
    mkdirSync(join(file, 'handover'), { mode: 0o700 })
    writeFileSync(join(file, 'handover', 'compile-cache'), '')
    expect(compileCacheDir({ XDG_CACHE_HOME: file })).toBeUndefined()

    // And a safe one beside them is taken: the refusals above are about the directory, not the test.
    expect(compileCacheDir({ XDG_CACHE_HOME: fresh() })).toBeDefined()
  })

  it.skipIf(process.getuid?.() !== 0)("refuses a directory that belongs to another user (needs root to make one)", () => {
    const other = fresh()
    mkdirSync(join(other, 'handover', 'compile-cache'), { recursive: true, mode: 0o700 })
    chownSync(join(other, 'handover', 'compile-cache'), 65534, 65534)
    expect(compileCacheDir({ XDG_CACHE_HOME: other })).toBeUndefined()
  })

  it.skipIf(!HAS_CACHE)('leaves a NODE_COMPILE_CACHE or NODE_DISABLE_COMPILE_CACHE the environment has, and is off with HANDOVER_COMPILE_CACHE=0 or compileCache: false', () => {
    const xdg = fresh()
    const mine = { XDG_CACHE_HOME: xdg, NODE_COMPILE_CACHE: '/srv/app/cache' }
    expect(withCompileCache(mine)).toEqual(mine)
    expect(withCompileCache({ XDG_CACHE_HOME: xdg, NODE_DISABLE_COMPILE_CACHE: '1' }).NODE_COMPILE_CACHE).toBeUndefined()
    expect(withCompileCache({ XDG_CACHE_HOME: xdg }, false).NODE_COMPILE_CACHE).toBeUndefined()
    expect(withCompileCache({ XDG_CACHE_HOME: xdg }).NODE_COMPILE_CACHE).toBe(join(xdg, 'handover', 'compile-cache'))
    process.env.HANDOVER_COMPILE_CACHE = '0'
    try {
      expect(withCompileCache({ XDG_CACHE_HOME: xdg }).NODE_COMPILE_CACHE).toBeUndefined()
    } finally {
      delete process.env.HANDOVER_COMPILE_CACHE
    }
  })
})

describe.skipIf(!HAS_CACHE)('generations with the compile cache (real processes)', () => {
  it('a generation started by an upgrade gets the directory, fills it once ready, and its own children do not inherit it', async () => {
    const xdg = fresh()
    const cache = join(xdg, 'handover', 'compile-cache')
    const f = await Fixture.start({ ...baseEnv(), XDG_CACHE_HOME: xdg } as Record<string, string>)
    // The first generation was started by the test, not by handover.
    expect(startEnv(f.current).NODE_COMPILE_CACHE).toBeUndefined()

    const { newPid } = await f.handoff()
    expect(startEnv(newPid).NODE_COMPILE_CACHE).toBe(cache)
    // Written once the generation is ready (flushCompileCache), not only at its exit.
    await waitUntil(() => filesUnder(cache).length > 0, 10_000, `files in ${cache}`)

    // What the app spawns sees neither the cache nor handover's marker.
    const reply = await f.admin(newPid, '/spawn')
    const env = String(reply.stdout).split('\n---\n')[1]
    expect(env.split('\n').filter((line) => /COMPILE_CACHE/.test(line))).toEqual([])

    // The next one gets it again, from a parent whose process.env no longer has it.
    const { newPid: third } = await f.handoff()
    expect(startEnv(third).NODE_COMPILE_CACHE).toBe(cache)
  })

  it('HANDOVER_COMPILE_CACHE=0 turns it off; an unsafe directory is not used, and the upgrade still succeeds', async () => {
    const off = fresh()
    const f = await Fixture.start({ ...baseEnv(), XDG_CACHE_HOME: off, HANDOVER_COMPILE_CACHE: '0' } as Record<string, string>)
    const { newPid } = await f.handoff()
    expect(startEnv(newPid).NODE_COMPILE_CACHE).toBeUndefined()
    expect(existsSync(join(off, 'handover'))).toBe(false)
    await f.kill()

    const target = fresh()
    const linked = fresh()
    mkdirSync(join(linked, 'handover'), { mode: 0o700 })
    symlinkSync(target, join(linked, 'handover', 'compile-cache'))
    const g = await Fixture.start({ ...baseEnv(), XDG_CACHE_HOME: linked } as Record<string, string>)
    const { newPid: next } = await g.handoff()
    expect(startEnv(next).NODE_COMPILE_CACHE).toBeUndefined()
    expect(readdirSync(target)).toEqual([])
    expect(g.stderr.join('\n')).toMatch(/HANDOVER_COMPILE_CACHE_UNSAFE|not using .* as the compile cache/)
  })

  it("handover run: the supervisor's workers get it", async () => {
    const xdg = fresh()
    const cache = join(xdg, 'handover', 'compile-cache')
    const port = await freePort()
    const s = await Supervised.start(['-w', '1'], 'worker.mjs', { ...baseEnv(), XDG_CACHE_HOME: xdg, PORT: String(port) })
    const [worker] = s.workerPids()
    expect(startEnv(worker).NODE_COMPILE_CACHE).toBe(cache)
    await waitUntil(() => filesUnder(cache).length > 0, 10_000, `files in ${cache}`)
  })
})
