// What a user sees when the addon is missing: a copy of the package's dist/
// with neither build/ nor prebuilds/, as after an install that skipped the
// build. The advice must work from the user's project, not this repo
// (test/package.test.ts runs its commands in a real install).
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'handover-addon-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('a missing native addon', () => {
  it('ERR_NATIVE_ADDON says how to fix it from the user\'s project, and keeps the cause', async () => {
    const pkg = join(dir, 'node_modules', 'handover')
    mkdirSync(pkg, { recursive: true })
    cpSync(join(ROOT, 'dist'), join(pkg, 'dist'), { recursive: true })
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'handover', type: 'module', main: './dist/index.js' }))
    // handover's one runtime dependency, where the installed package would find it.
    symlinkSync(join(ROOT, 'node_modules', 'node-gyp-build'), join(dir, 'node_modules', 'node-gyp-build'))
    const app = join(dir, 'app.mjs')
    writeFileSync(app, `
      import { Upgrader } from 'handover'
      try {
        const upg = await Upgrader.create()
        upg.listen('tcp', ':0')
        console.log(JSON.stringify({ ok: true }))
      } catch (err) {
        console.log(JSON.stringify({ code: err.code, message: err.message, cause: String(err.cause?.message) }))
      }
      process.exit(0)
    `)
    const { stdout } = await promisify(execFile)(process.execPath, [app], { cwd: dir, timeout: 20_000 })
    const result = JSON.parse(stdout) as { code: string; message: string; cause: string }
    expect(result.code).toBe('ERR_NATIVE_ADDON')
    expect(result.message).not.toMatch(/build:native/)
    expect(result.message).toContain(`From ${realpathSync(dir)}, run:\n  npm install-scripts approve handover\n  npm rebuild handover --ignore-scripts=false\n`)
    expect(result.message).toMatch(/a C\+\+ compiler, make and Python 3/)
    expect(result.message).toContain(`not built for this platform (${process.platform}-${process.arch}`)
    expect(result.message).toContain('the package has them for linux-x64 and linux-arm64 with glibc, and win32-x64')
    expect(result.cause).toMatch(/No native build was found/)
    // The cause's first line is in the message too, for logs that drop `cause`.
    expect(result.message).toContain(result.cause.split('\n')[0])
  })
})
