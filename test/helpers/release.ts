import { execFileSync, execSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('../..', import.meta.url))
const CACHE = process.env.DEV_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'handover-dev')

/**
 * A built copy of an earlier release of this repository, from its git
 * history: `git archive`, `npm ci`, the TypeScript build. Cached under
 * ~/.cache/handover-dev/release-<commit>, keyed by the full commit, so only
 * the first run on a machine pays for it (minutes: npm registry and node-gyp).
 * Returns the path of its dist/index.js.
 */
export function builtRelease(commit: string): string {
  const full = execFileSync('git', ['-C', REPO, 'rev-parse', '--verify', `${commit}^{commit}`], { encoding: 'utf8' }).trim()
  const dir = join(CACHE, `release-${commit}`)
  const marker = join(dir, '.built')
  const entry = join(dir, 'dist', 'index.js')
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === full && existsSync(entry)) return entry
  mkdirSync(CACHE, { recursive: true })
  // Built beside the cache entry and renamed into place: a run killed halfway leaves no half-built entry.
  const tmp = mkdtempSync(join(CACHE, `.build-${commit}-`))
  try {
    execSync(`git -C '${REPO}' archive ${full} | tar -x -C '${tmp}'`, { stdio: 'inherit' })
    const run = (args: string[]): void => {
      execFileSync('npm', args, { cwd: tmp, stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 })
    }
    run(['ci', '--no-audit', '--no-fund'])
    run(['run', 'build:ts'])
    writeFileSync(join(tmp, '.built'), `${full}\n`)
    rmSync(dir, { recursive: true, force: true })
    renameSync(tmp, dir)
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true })
    throw err
  }
  return entry
}
