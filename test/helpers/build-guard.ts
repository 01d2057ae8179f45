// vitest globalSetup: fixtures run the built dist/ (and build/'s addon)
// while in-process tests import src/, so a run over a stale build would test
// two versions at once. Before any test, each build whose inputs are newer
// than its output is run again. Building, not refusing: `npx vitest run x`
// then just works. After `npm test`'s pretest has built, the check finds
// everything fresh and costs a few hundred stat calls, so nothing is built
// twice; no environment variable is needed to say so (and none could reach
// the processes under test: the leak test refuses any HANDOVER_* there).
// Only mtimes are compared, newest input against newest output file, so the
// layout of dist/ does not matter.
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'
import { isAlive, sleep } from './processes.mjs'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Build {
  /** The package.json script that makes `output`. */
  script: string
  /** Files and trees it reads (a tree's own mtime counts: deleting a file changes it). */
  inputs: string[]
  /** The file or tree it writes. */
  output: string
}

/** In the order `npm run build` runs them. */
export const BUILDS: Build[] = [
  { script: 'build:native', inputs: ['native', 'binding.gyp'], output: join('build', 'Release', 'handover.node') },
  { script: 'build:ts', inputs: ['src', 'scripts/build-dist.mjs', 'package.json', 'tsconfig.json', 'tsconfig.build.json'], output: 'dist' },
]

const LOCK_WAIT_MS = 10 * 60_000

interface Newest {
  path: string
  mtimeMs: number
}

/** The newest file (and, with `withDirs`, directory) at or under `path`; undefined if there is none. */
function newest(path: string, withDirs: boolean): Newest | undefined {
  let stat
  try {
    stat = statSync(path)
  } catch {
    return undefined
  }
  if (!stat.isDirectory()) return { path, mtimeMs: stat.mtimeMs }
  let best: Newest | undefined = withDirs ? { path, mtimeMs: stat.mtimeMs } : undefined
  for (const entry of readdirSync(path)) {
    const found = newest(join(path, entry), withDirs)
    if (found && (!best || found.mtimeMs > best.mtimeMs)) best = found
  }
  return best
}

/** Why `build` must run again in `root`, or undefined if its output is newer than all it reads. */
export function staleness(root: string, build: Build): string | undefined {
  const output = newest(join(root, build.output), false)
  if (!output) return `${build.output} is missing`
  for (const input of build.inputs) {
    const found = newest(join(root, input), true)
    if (found && found.mtimeMs > output.mtimeMs) return `${relative(root, found.path) || input} is newer than ${build.output}`
  }
  return undefined
}

/**
 * Runs every build of `root` that is stale, one at a time across vitest
 * runs (a lock per tree), and returns the scripts it ran. Throws a one-line
 * error if a build fails.
 */
export async function ensureFreshBuild(root = ROOT, log: (line: string) => void = console.log): Promise<string[]> {
  const ran: string[] = []
  for (const build of BUILDS) {
    if (!staleness(root, build)) continue
    await withTreeLock(root, async () => {
      // Another run may have built it while this one waited for the lock.
      const reason = staleness(root, build)
      if (!reason) return
      log(`vitest: ${reason}; running npm run ${build.script}`)
      const status = await npmRun(root, build.script)
      if (status !== 0) throw new Error(`vitest: npm run ${build.script} failed (exit ${status}, output above): fix it, then run the tests again`)
      ran.push(build.script)
    })
  }
  return ran
}

function npmRun(root: string, script: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', script], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
    child.once('error', reject)
    child.once('exit', (code) => resolve(code))
  })
}

/**
 * Runs `fn` holding a lock for `root`, taking over one whose holder has died.
 * The lock lives inside the tree (git-ignored), not under a predictable
 * name in a shared tmpdir another user could take first.
 */
async function withTreeLock(root: string, fn: () => Promise<void>): Promise<void> {
  const lock = join(root, '.build-guard.lock')
  const deadline = Date.now() + LOCK_WAIT_MS
  for (;;) {
    try {
      mkdirSync(lock)
      writeFileSync(join(lock, 'pid'), String(process.pid))
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = lockHolder(lock)
    if (holder && !isAlive(holder)) rmSync(lock, { recursive: true, force: true })
    else if (Date.now() > deadline) throw new Error(`vitest: another run (pid ${holder || '?'}) has been building ${root} for ${LOCK_WAIT_MS / 60_000} min; lock ${lock}`)
    else await sleep(200)
  }
  try {
    await fn()
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

/** The pid in the lock; 0 while its holder has not written it yet, or once the lock is gone. */
function lockHolder(lock: string): number {
  try {
    return Number(readFileSync(join(lock, 'pid'), 'utf8')) || 0
  } catch {
    return 0
  }
}

export default async function setup(project: TestProject): Promise<void> {
  await ensureFreshBuild()
  // Watch mode: src/ may have changed between reruns.
  project.onTestsRerun(async () => {
    await ensureFreshBuild()
  })
}
