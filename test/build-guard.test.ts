// The globalSetup that rebuilds a stale dist/ (test/helpers/build-guard.ts),
// run against copies of this tree in a temporary directory, so the real
// dist/ that other test files' fixtures run is never touched.
import { execFileSync } from 'node:child_process'
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { BUILDS, ensureFreshBuild, staleness } from './helpers/build-guard.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const ADDON = join('build', 'Release', 'handover.node')
const INPUTS = ['src', 'scripts', 'native', 'package.json', 'tsconfig.json', 'tsconfig.build.json', 'binding.gyp']
const OUTPUTS = ['dist', ADDON]
const HOUR = 3_600_000
const tsBuild = BUILDS.find((b) => b.script === 'build:ts')!

const trees: string[] = []
afterEach(() => {
  for (const tree of trees.splice(0)) rmSync(tree, { recursive: true, force: true })
})

function setTimes(path: string, when: Date): void {
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) setTimes(join(path, entry), when)
  utimesSync(path, when, when)
}

/** A copy of what the builds read and write, every input an hour older than every output (node_modules: a link). */
function freshTree(): string {
  const tree = mkdtempSync(join(tmpdir(), 'handover-guard-'))
  trees.push(tree)
  for (const path of [...INPUTS, ...OUTPUTS]) cpSync(join(ROOT, path), join(tree, path), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'))
  for (const path of INPUTS) setTimes(join(tree, path), new Date(Date.now() - 2 * HOUR))
  for (const path of OUTPUTS) setTimes(join(tree, path), new Date(Date.now() - HOUR))
  return tree
}

/** Replaces a build script with `body` (a CommonJS file run in the tree), leaving package.json as old as before. */
function stubScript(tree: string, script: string, body: string): void {
  const pkgPath = join(tree, 'package.json')
  const { mtime } = statSync(pkgPath)
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { scripts: Record<string, string> }
  writeFileSync(join(tree, `${script.replace(':', '-')}.cjs`), body)
  pkg.scripts[script] = `node ${script.replace(':', '-')}.cjs`
  writeFileSync(pkgPath, JSON.stringify(pkg, null, 2))
  utimesSync(pkgPath, mtime, mtime)
}

/** A stub build:ts that counts its runs in builds.log, then takes a while and refreshes dist/. */
const COUNTING_BUILD = `
const fs = require('node:fs')
fs.appendFileSync('builds.log', 'built\\n')
setTimeout(() => fs.writeFileSync('dist/stamp', ''), 1000)
`

describe('the stale-build guard', () => {
  it('a fresh tree: builds nothing', async () => {
    const tree = freshTree()
    const lines: string[] = []
    expect(await ensureFreshBuild(tree, (l) => lines.push(l))).toEqual([])
    expect(lines).toEqual([])
  })

  it('a source newer than dist/: runs npm run build:ts, and the built package then has the change', { timeout: 180_000 }, async () => {
    const tree = freshTree()
    const probe = `probe-${process.pid}-${Date.now()}`
    appendFileSync(join(tree, 'src', 'index.ts'), `\nexport const buildGuardProbe = '${probe}'\n`)
    expect(staleness(tree, tsBuild)).toBe('src/index.ts is newer than dist')
    const lines: string[] = []
    expect(await ensureFreshBuild(tree, (l) => lines.push(l))).toEqual(['build:ts'])
    expect(lines).toEqual(['vitest: src/index.ts is newer than dist; running npm run build:ts'])
    expect(staleness(tree, tsBuild)).toBeUndefined()
    const exported = execFileSync(process.execPath, ['--input-type=module', '-e', "console.log((await import('./dist/index.js')).buildGuardProbe)"], { cwd: tree, encoding: 'utf8' })
    expect(exported.trim()).toBe(probe)
  })

  it('a deleted source counts: its directory is newer than dist/', () => {
    const tree = freshTree()
    const victim = readdirSync(join(tree, 'src', 'core')).find((f) => f.endsWith('.ts'))!
    rmSync(join(tree, 'src', 'core', victim))
    expect(staleness(tree, tsBuild)).toBe('src/core is newer than dist')
  })

  it('no addon: runs npm run build:native, and only that', async () => {
    const tree = freshTree()
    rmSync(join(tree, ADDON))
    stubScript(tree, 'build:native', `require('node:fs').writeFileSync(${JSON.stringify(ADDON)}, '')`)
    expect(await ensureFreshBuild(tree, () => {})).toEqual(['build:native'])
    expect(existsSync(join(tree, ADDON))).toBe(true)
  })

  it('a native source newer than the addon: runs npm run build:native', async () => {
    const tree = freshTree()
    appendFileSync(join(tree, 'binding.gyp'), '\n')
    stubScript(tree, 'build:native', `require('node:fs').writeFileSync(${JSON.stringify(ADDON)}, '')`)
    expect(await ensureFreshBuild(tree, () => {})).toEqual(['build:native'])
  })

  it('a failing build: rejects with one line naming the command', async () => {
    const tree = freshTree()
    stubScript(tree, 'build:ts', 'process.exit(3)')
    appendFileSync(join(tree, 'src', 'index.ts'), '\n')
    await expect(ensureFreshBuild(tree, () => {})).rejects.toThrow(/^vitest: npm run build:ts failed \(exit 3, output above\)[^\n]*$/)
  })

  it('two runs at once over one stale tree: one builds, the other waits and finds it fresh', async () => {
    const tree = freshTree()
    stubScript(tree, 'build:ts', COUNTING_BUILD)
    appendFileSync(join(tree, 'src', 'index.ts'), '\n')
    const ran = await Promise.all([ensureFreshBuild(tree, () => {}), ensureFreshBuild(tree, () => {})])
    expect(ran.flat()).toEqual(['build:ts'])
    expect(readFileSync(join(tree, 'builds.log'), 'utf8')).toBe('built\n')
  })
})
