// loadAddon() dlopens the binary it expects (src/backend/addon-path.ts)
// instead of going through node-gyp-build, whose CommonJS load sits on a new
// generation's critical path. Here: it expects exactly the binary
// node-gyp-build would pick, in each layout the package ships, and nothing
// (so node-gyp-build decides) whenever that is in doubt.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { expectedAddonPath } from '../src/backend/addon-path.js'

const ROOT = realpathSync(fileURLToPath(new URL('..', import.meta.url)))
const BUILT = join(ROOT, 'build', 'Release', 'handover.node')
const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string }
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'handover-addon-path-')))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let count = 0
/** A package directory holding `files` (copies of the built addon). */
function pkg(files: string[]): string {
  const root = join(dir, `pkg-${++count}`)
  mkdirSync(root)
  for (const file of files) {
    mkdirSync(join(root, file, '..'), { recursive: true })
    copyFileSync(BUILT, join(root, file))
  }
  return root
}

const saved = { ...process.env }
afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key]
})

describe.runIf(process.platform === 'linux' && process.arch === 'x64')('the addon binary handover loads without node-gyp-build', () => {
  it('this checkout: build/Release/handover.node, as node-gyp-build says', () => {
    expect(expectedAddonPath(ROOT)).toBe(BUILT)
    expect(expectedAddonPath(ROOT)).toBe(nodeGypBuild.path(ROOT))
  })

  it('an installed package (no build/): the glibc prebuild, as node-gyp-build says; a musl-only one: none', () => {
    const installed = pkg(['prebuilds/linux-x64/handover.glibc.node', 'prebuilds/win32-x64/handover.node'])
    expect(expectedAddonPath(installed)).toBe(join(installed, 'prebuilds/linux-x64/handover.glibc.node'))
    expect(expectedAddonPath(installed)).toBe(nodeGypBuild.path(installed))
    // Never a binary for another libc, or a guess: node-gyp-build decides (and fails, here).
    expect(expectedAddonPath(pkg(['prebuilds/linux-x64/handover.musl.node']))).toBeUndefined()
    expect(expectedAddonPath(pkg([]))).toBeUndefined()
  })

  it('another build than build/Release/handover.node (a Debug build): none, node-gyp-build decides', () => {
    const debug = pkg(['build/Debug/handover.node', 'prebuilds/linux-x64/handover.glibc.node'])
    expect(expectedAddonPath(debug)).toBeUndefined()
    expect(nodeGypBuild.path(debug)).toBe(join(debug, 'build/Debug/handover.node'))
  })

  it.each(['LIBC', 'PREBUILDS_ONLY', 'HANDOVER_PREBUILD', 'npm_config_arch'])('%s in the environment (node-gyp-build reads it): none', (name) => {
    const installed = pkg(['prebuilds/linux-x64/handover.glibc.node'])
    process.env[name] = name === 'LIBC' ? 'musl' : '1'
    expect(expectedAddonPath(installed)).toBeUndefined()
  })

  it('a real process loads the addon without loading node-gyp-build', () => {
    const script = `
      const { Upgrader } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)})
      const upg = await Upgrader.create()
      upg.listen('tcp4', '127.0.0.1:0')
      const { createRequire } = await import('node:module')
      const maps = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8')
      console.log(JSON.stringify({ cjs: Object.keys(createRequire(import.meta.url).cache), addon: maps.includes(${JSON.stringify(BUILT)}) }))
      await upg.stop()
      process.exit(0)`
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })) as { cjs: string[]; addon: boolean }
    expect(out.addon).toBe(true)
    expect(out.cjs.filter((m) => m.includes('node-gyp-build'))).toEqual([])
  })
})
