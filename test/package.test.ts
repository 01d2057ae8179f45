// The packed tarball works for a real user: `npm pack` builds dist/ and the
// prebuild, the tarball holds what it should and nothing else, and an app in
// a fresh project that installs it (ESM import or CJS require) loads the
// addon from the prebuild and hands its socket to a new process.
//
// The pack runs in a staged copy of the checkout, not in the checkout itself:
// prepare rewrites dist/ with tsc and `prebuildify` runs `node-gyp rebuild`,
// which deletes build/ and moves build/Release/handover.node into prebuilds/.
// Done in place, that would pull the addon and dist/ out from under the other
// test files that vitest runs at the same time. The copy also proves that a
// clean checkout packs: nothing stale from the checkout's dist/ or build/ can
// reach the tarball.
//
// The tarball also carries the Windows and linux-arm64 prebuilds, cross-built
// by prepack (scripts/prepack.mjs) with mingw-w64 (scripts/prebuild-win32.sh)
// and g++-aarch64-linux-gnu (scripts/prebuild-linux-arm64.sh). A machine
// without a cross-compiler packs without its prebuild, and says so; those
// checks here are skipped, loudly; .ci/run installs both toolchains first, so
// CI runs them. A second pack, with a PATH that has no cross-compiler, keeps
// the prebuilds the first one made, and `npm publish` refuses to run there.
import { execFile, execFileSync, spawn } from 'node:child_process'
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { freePort, pidAt } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const run = promisify(execFile)
const ROOT = realpathSync(fileURLToPath(new URL('..', import.meta.url)))
const PLATFORM = `${process.platform}-${process.arch}`
const MAX_BUFFER = 64 * 1024 * 1024
const WIN32_PREBUILD = 'prebuilds/win32-x64/handover.node'
// Tagged glibc (prebuildify --tag-libc): node-gyp-build never picks them on musl.
const LINUX_PREBUILDS = ['prebuilds/linux-arm64/handover.glibc.node', 'prebuilds/linux-x64/handover.glibc.node']
/** The oldest glibc Node 20+ runs on: a Linux prebuild must need nothing newer. */
const GLIBC_FLOOR = '2.28'

const onPath = (tool: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
/** Whether prepack can cross-build the Windows prebuild here. */
const CAN_BUILD_WIN32 = onPath('x86_64-w64-mingw32-g++-posix') && onPath('x86_64-w64-mingw32-dlltool')
if (!CAN_BUILD_WIN32) console.warn('package.test: no mingw-w64 here: the tarball has no Windows prebuild, its checks SKIPPED')
/** Whether prepack can cross-build the linux-arm64 prebuild here. */
const CAN_BUILD_ARM64 = onPath('aarch64-linux-gnu-g++')
if (!CAN_BUILD_ARM64) console.warn('package.test: no aarch64 cross-compiler here: the tarball has no linux-arm64 prebuild, its checks SKIPPED')
/** The platforms the first pack carries: linux-x64, and each one this machine can cross-build. */
/** In the order prepack names them; the tarball lists them sorted. */
const CARRIED = ['linux-x64', ...(CAN_BUILD_ARM64 ? ['linux-arm64'] : []), ...(CAN_BUILD_WIN32 ? ['win32-x64'] : [])]
/** Every cross-compiler prepack looks for. */
const CROSS_TOOL = /^(aarch64-linux-gnu-|x86_64-w64-mingw32-)/

/** Top-level entries of the checkout that are build output, VCS data or installed deps. */
const NOT_STAGED = new Set(['.git', 'node_modules', 'build', 'build-win32', 'build-linux-arm64', 'dist', 'prebuilds'])

/**
 * The environment for a nested npm: without what an outer `npm run`/`npx`
 * leaves behind for its own package (local prefix, npm_package_*, lifecycle
 * vars), which could point the nested npm at the checkout.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (/^npm_(config_local_prefix|package_|lifecycle_|command$|execpath$)/i.test(key)) delete env[key]
  }
  return env
}

interface PackInfo {
  filename: string
  files: Array<{ path: string }>
}

/** Lifecycle scripts (tsc, node-gyp's make) share npm's stdout, so the JSON comes after their output. */
function parsePackJson(stdout: string): PackInfo {
  for (const match of stdout.matchAll(/^\[/gm)) {
    try {
      const parsed = JSON.parse(stdout.slice(match.index)) as PackInfo[]
      if (Array.isArray(parsed) && parsed[0]?.filename) return parsed[0]
    } catch {
      // a line of script output that happened to start with [
    }
  }
  throw new Error(`no JSON from npm pack in:\n${stdout.slice(-4000)}`)
}

// The app, same lifecycle as test/fixtures/server.mjs for a tcp listener, and
// logs the same JSON lines, so Fixture can drive it. Its `listening` event
// also says where `handover` resolved from and which .node files the process
// has mapped (from /proc/self/maps), i.e. which addon binary really loaded.
const APP_BODY = `
const log = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, pid: process.pid, ...fields }) + '\\n')
setTimeout(() => process.exit(70), 120_000).unref()

const upg = await Upgrader.create({ upgradeTimeout: 20_000 })
const listener = upg.listen('tcp', '127.0.0.1:' + process.env.APP_PORT)
const server = http.createServer((req, res) => res.end(String(process.pid)))
await new Promise((resolve) => server.listen(listener, resolve))
const addons = [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .map((line) => line.slice(line.indexOf('/')))
  .filter((path) => path.endsWith('.node')))]
// The CommonJS modules loaded: the addon should come by process.dlopen, without node-gyp-build.
const cjsModules = Object.keys(cjsCache)
log('listening', { address: listener.address, inherited: listener.inherited, hasParent: upg.hasParent, module: resolved, addons, cjsModules })

process.on('SIGHUP', () => {
  log('upgrading')
  upg.upgrade().then(
    (r) => log('upgraded', { child: r.pid }),
    (err) => log('upgrade-failed', { code: err.code, message: err.message }),
  )
})
process.on('SIGTERM', () => upg.stop())

await upg.ready()
log('ready')
await upg.exit()
log('exiting')
await new Promise((resolve) => server.close(resolve))
log('closed')
`

const ESM_APP = `import fs from 'node:fs'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { Upgrader } from 'handover'

const resolved = fileURLToPath(import.meta.resolve('handover'))
const cjsCache = createRequire(import.meta.url).cache
${APP_BODY}`

const CJS_APP = `'use strict'
const fs = require('node:fs')
const http = require('node:http')
const { Upgrader } = require('handover')

const resolved = require.resolve('handover')
const cjsCache = require.cache
;(async () => {
${APP_BODY}
})().catch((err) => {
  console.error(err)
  process.exit(1)
})
`

const temps: string[] = []
const temp = (prefix: string) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)))
  temps.push(dir)
  return dir
}

let tarballFiles: string[] = []
let tarball = ''
let packInfo: PackInfo
let packStderr = ''
let appDir = ''
let installed = ''

/** A copy of the checkout without build output, sharing its node_modules (tsc, prebuildify). */
function stageCheckout(): string {
  const stage = temp('handover-stage-')
  cpSync(ROOT, stage, {
    recursive: true,
    filter: (src) => {
      const rel = relative(ROOT, src)
      if (rel === '') return true
      if (NOT_STAGED.has(rel.split(sep)[0]) || rel.endsWith('.tgz')) return false
      const st = lstatSync(src)
      return st.isFile() || st.isDirectory() || st.isSymbolicLink()
    },
  })
  symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'), 'dir')
  return stage
}

/** The files in a tarball, without the leading package/. */
async function listTarball(file: string): Promise<string[]> {
  const listing = await run('tar', ['-tzf', file], { maxBuffer: MAX_BUFFER })
  return listing.stdout.split('\n').filter((line) => line && !line.endsWith('/')).map((line) => line.replace(/^package\//, '')).sort()
}

/**
 * A PATH with every program of this one but the cross-compilers: one
 * directory of links, the first of each name found, as the shell would.
 */
function pathWithoutCrossCompilers(): string {
  const bin = temp('handover-path-')
  const seen = new Set<string>()
  for (const dir of (process.env.PATH ?? '').split(':')) {
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch {
      continue
    }
    for (const name of names) {
      if (seen.has(name) || CROSS_TOOL.test(name)) continue
      seen.add(name)
      symlinkSync(join(dir, name), join(bin, name))
    }
  }
  return bin
}

beforeAll(async () => {
  const stage = stageCheckout()
  const packDir = temp('handover-pack-')
  const { stdout, stderr } = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: stage, env: npmEnv(), maxBuffer: MAX_BUFFER })
  packStderr = stderr
  packInfo = parsePackJson(stdout)
  tarball = join(packDir, packInfo.filename)

  tarballFiles = await listTarball(tarball)

  // A fresh project that installs the tarball like a user would.
  appDir = temp('handover-app-')
  writeFileSync(join(appDir, 'package.json'), `${JSON.stringify({ name: 'app', private: true })}\n`)
  await run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--prefix', appDir], {
    cwd: appDir,
    env: npmEnv(),
    maxBuffer: MAX_BUFFER,
  })
  installed = join(appDir, 'node_modules', 'handover')
  writeFileSync(join(appDir, 'app.mjs'), ESM_APP)
  writeFileSync(join(appDir, 'app.cjs'), CJS_APP)
  writeFileSync(join(appDir, 'plain.mjs'), PLAIN_APP)
  writeFileSync(join(appDir, 'plain.cjs'), PLAIN_APP.replace("import http from 'node:http'", "const http = require('node:http')"))
}, 180_000)

afterEach(killAllFixtures)
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true })
})

/** An app that knows nothing of handover. */
const PLAIN_APP = `import http from 'node:http'
http.createServer((req, res) => res.end(String(process.pid))).listen(Number(process.env.APP_PORT), () => console.log('listening ' + process.pid))
`

/** Spawns a command in the fresh project and resolves once its output matches `until`; the caller stops it. */
async function startInApp(command: string, args: string[], env: NodeJS.ProcessEnv, until: RegExp): Promise<{ child: ReturnType<typeof spawn>; lines: string[]; wait: (re: RegExp) => Promise<RegExpMatchArray> }> {
  const child = spawn(command, args, { cwd: appDir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const onData = (chunk: Buffer): void => void lines.push(...chunk.toString().split('\n').filter(Boolean))
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const wait = async (re: RegExp): Promise<RegExpMatchArray> => {
    const deadline = Date.now() + 20_000
    for (;;) {
      for (const line of lines) {
        const m = re.exec(line)
        if (m) return m
      }
      if (Date.now() > deadline) throw new Error(`no ${re} in:\n${lines.join('\n')}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  await wait(until)
  return { child, lines, wait }
}

describe('the packed tarball', () => {
  it('holds dist/, the prebuild, the native sources, the docs and the metadata, and nothing from test/, src/ or build/', () => {
    // npm's own list and the archive agree.
    expect(packInfo.files.map((f) => f.path).sort()).toEqual(tarballFiles)

    for (const file of [
      // The package's entry points (exports and bin), bundled, with their types and source maps.
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.js.map',
      'dist/preload/register.js',
      'dist/preload/register.d.ts',
      'dist/preload/register.cjs',
      'dist/preload/register.d.cts',
      'dist/supervisor/supervisor.js',
      'dist/supervisor/supervisor.d.ts',
      'dist/bin.js',
      // The modules loaded with import() when needed.
      'dist/service/cli.js',
      'dist/supervisor/run-command.js',
      'dist/backend/posix.js',
      'dist/backend/win.js',
      'dist/service/control-socket.js',
      'dist/service/control-claim.js',
      'native/posix/sockets.cc',
      'native/win/sockets.cc',
      'native/addon.h',
      'binding.gyp',
      'package.json',
      'README.md',
    ]) {
      expect(tarballFiles, file).toContain(file)
    }
    // Every user doc the README links to ships with it.
    const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)
    expect(docs.length).toBeGreaterThan(0)
    expect(tarballFiles.filter((f) => f.startsWith('docs/')).sort()).toEqual(docs.sort())
    // linux-x64, linux-arm64 and win32-x64, and no other binary.
    const expected = [...LINUX_PREBUILDS.filter((f) => CAN_BUILD_ARM64 || !f.includes('arm64')), ...(CAN_BUILD_WIN32 ? [WIN32_PREBUILD] : [])]
    expect(tarballFiles.filter((f) => f.startsWith('prebuilds/'))).toEqual(expected.sort())
    expect(tarballFiles.filter((f) => f.endsWith('.node'))).toEqual(expected.sort())

    const leaked = tarballFiles.filter((f) => /^(test|src|build|node_modules)\//.test(f) || f.endsWith('.tgz'))
    expect(leaked).toEqual([])
    // The build's metafile is for the tests, not for users.
    expect(tarballFiles).not.toContain('dist/bundle-meta.json')
    // A bundle: a few chunks beside the entry points, not one file per source module.
    const chunks = tarballFiles.filter((f) => /^dist\/chunks\/[^/]+\.js$/.test(f))
    expect(chunks.length).toBeGreaterThan(0)
    // Only the modules loaded with import(), which keep readable paths of their own (scripts/build-dist.mjs).
    expect(tarballFiles.filter((f) => /^dist\/(core|http|api)\/.*\.js$/.test(f))).toEqual(['dist/api/supervised.js', 'dist/http/handoff.js', 'dist/http/long-lived.js'])
  })

  it('npm pack says on stderr which platforms it carries, and which it does not and why', () => {
    const line = packStderr.split('\n').find((l) => l.startsWith('prepack: this package carries prebuilds for '))
    expect(line, packStderr.slice(-2000)).toBeDefined()
    expect(line!.slice('prepack: this package carries prebuilds for '.length).split(';')[0]).toBe(CARRIED.join(', '))
    if (!CAN_BUILD_ARM64) expect(line).toMatch(/not for .*linux-arm64 \(no aarch64-linux-gnu-g\+\+ here/)
    if (!CAN_BUILD_WIN32) expect(line).toMatch(/not for .*win32-x64 \(no x86_64-w64-mingw32-/)
    expect(tarballFiles.filter((f) => f.startsWith('prebuilds/')).map((f) => f.split('/')[1])).toEqual([...CARRIED].sort())
  })

  it('its bin keeps its shebang, and its source maps point at src/ with the sources inside', async () => {
    const read = async (file: string): Promise<string> => (await run('tar', ['-xzOf', tarball, `package/${file}`], { maxBuffer: MAX_BUFFER })).stdout
    expect((await read('dist/bin.js')).startsWith('#!/usr/bin/env node\n')).toBe(true)
    const map = JSON.parse(await read('dist/preload/register.js.map')) as { sources: string[]; sourcesContent: string[] }
    expect(map.sources).toEqual(['../../src/preload/register.ts'])
    const chunk = tarballFiles.find((f) => /^dist\/chunks\/.*\.js\.map$/.test(f))!
    const chunkMap = JSON.parse(await read(chunk)) as { sources: string[]; sourcesContent: string[] }
    expect(chunkMap.sources.every((s) => s.startsWith('../../src/') && s.endsWith('.ts'))).toBe(true)
    expect(chunkMap.sourcesContent.length).toBe(chunkMap.sources.length)
  })

  it.skipIf(!CAN_BUILD_WIN32)('its Windows prebuild is an x64 DLL that needs nothing but node.exe, the system and Winsock', async () => {
    const { stdout } = await run('tar', ['-xzOf', tarball, `package/${WIN32_PREBUILD}`], { encoding: 'buffer', maxBuffer: MAX_BUFFER })
    const dll = stdout as unknown as Buffer
    expect(dll.subarray(0, 2).toString('latin1')).toBe('MZ')
    const pe = dll.readUInt32LE(0x3c)
    expect(dll.subarray(pe, pe + 4).toString('latin1')).toBe('PE\0\0')
    expect(dll.readUInt16LE(pe + 4)).toBe(0x8664)
    // Statically linked: a libstdc++ or winpthread DLL would be missing on a user's machine.
    const path = join(temp('handover-win32-'), 'handover.node')
    writeFileSync(path, dll)
    const { stdout: headers } = await run('x86_64-w64-mingw32-objdump', ['-p', path], { maxBuffer: MAX_BUFFER })
    const imports = [...headers.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1].toLowerCase()).sort()
    expect(imports).toEqual(['kernel32.dll', 'msvcrt.dll', 'node.exe', 'ws2_32.dll'])
  })

  it.each(LINUX_PREBUILDS.filter((f) => CAN_BUILD_ARM64 || !f.includes('arm64')))(`%s needs no glibc newer than ${GLIBC_FLOOR}`, async (file) => {
    const path = join(installed, file)
    const { stdout } = await run('objdump', ['-T', path], { maxBuffer: MAX_BUFFER })
    const versions = [...new Set([...stdout.matchAll(/\bGLIBC_(\d+(?:\.\d+)*)/g)].map((m) => m[1]))]
    expect(versions.length).toBeGreaterThan(0)
    const newer = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true }) > 0
    const highest = versions.reduce((a, b) => (newer(b, a) ? b : a))
    expect(newer(highest, GLIBC_FLOOR), `${file} needs GLIBC_${highest}`).toBe(false)
  })

  it('node-gyp-build hands the glibc prebuild to glibc, and nothing to musl', async () => {
    const script = `process.stdout.write(require('node-gyp-build').path(${JSON.stringify(installed)}))`
    const glibc = await run(process.execPath, ['-e', script], { cwd: appDir })
    expect(glibc.stdout).toBe(join(installed, 'prebuilds', 'linux-x64', 'handover.glibc.node'))
    // What node-gyp-build decides on Alpine (it reads LIBC before looking for /etc/alpine-release).
    await expect(run(process.execPath, ['-e', script], { cwd: appDir, env: { ...process.env, LIBC: 'musl' } })).rejects.toThrow(/No native build was found/)
  })

  it('installs without compiling, and loads its addon from the prebuild', () => {
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { version: string }
    const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
    expect(pkg.version).toBe(own.version)
    // node-gyp-build's install script found the prebuild and did not run node-gyp.
    expect(existsSync(join(installed, 'build'))).toBe(false)

    const requireFromApp = createRequire(join(appDir, 'package.json'))
    expect(requireFromApp.resolve('handover')).toBe(join(installed, 'dist', 'index.js'))
    const nodeGypBuild = requireFromApp('node-gyp-build') as { path(dir: string): string }
    const prebuild = nodeGypBuild.path(installed)
    expect(relative(installed, prebuild).startsWith(join('prebuilds', PLATFORM) + sep)).toBe(true)
  })

  it.each([
    ['ESM (import)', 'app.mjs'],
    ['CJS (require)', 'app.cjs'],
  ])('%s: an app in a fresh project hands its socket to a new process', async (_kind, script) => {
    const prebuild = join(installed, 'prebuilds', PLATFORM, tarballFiles.find((f) => f.startsWith(`prebuilds/${PLATFORM}/`))!.split('/').pop()!)
    const port = await freePort()
    const f = await Fixture.start({ APP_PORT: String(port) }, { script: join(appDir, script) })
    const first = f.current
    expect(await pidAt({ port })).toBe(first)

    const listening = f.event(first, 'listening')!
    expect(listening.module).toBe(join(installed, 'dist', 'index.js'))
    expect(listening.addons).toEqual([prebuild])
    expect((listening.cjsModules as string[]).filter((m) => m.includes('node-gyp-build'))).toEqual([])
    expect(listening.inherited).toBe(false)

    const { oldPid, newPid } = await f.handoff()
    expect(oldPid).toBe(first)
    expect(newPid).not.toBe(first)
    expect(await pidAt({ port })).toBe(newPid)
    expect(isAlive(oldPid)).toBe(false)
    expect(f.event(oldPid, 'exiting')).toBeDefined()

    const next = f.event(newPid, 'listening')!
    expect(next.inherited).toBe(true)
    expect(next.hasParent).toBe(true)
    expect(next.module).toBe(join(installed, 'dist', 'index.js'))
    expect(next.addons).toEqual([prebuild])
  })
})

// npm 11.19 lists every dependency with an install script "not yet covered by
// allowScripts" and still runs it; it skips it when the project denies it
// (allowScripts false), under --ignore-scripts, and, by its documented
// default to come, until the project approves it. handover's is
// node-gyp-build: where a prebuild fits it does nothing, so skipping it must
// change nothing; elsewhere it builds the addon from source, and the error at
// first use must say what to run.
describe('npm 11 and handover\'s install script', () => {
  /** A fresh project that installs `tgz` with `npm install ...extra`. */
  async function project(tgz: string, extra: string[]): Promise<string> {
    const dir = temp('handover-npm11-')
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'app', private: true })}\n`)
    await run('npm', ['install', tgz, '--no-audit', '--no-fund', '--prefer-offline', ...extra], { cwd: dir, env: npmEnv(), maxBuffer: MAX_BUFFER })
    writeFileSync(join(dir, 'try.mjs'), `import { Upgrader } from 'handover'
try {
  const upg = await Upgrader.create()
  const listener = upg.listen('tcp', '127.0.0.1:0')
  console.log(JSON.stringify({ ok: true, port: listener.port }))
} catch (err) {
  console.log(JSON.stringify({ code: err.code, message: err.message }))
}
process.exit(0)
`)
    return dir
  }
  const tryIt = async (dir: string): Promise<{ ok?: boolean; code?: string; message?: string }> =>
    JSON.parse((await run(process.execPath, ['try.mjs'], { cwd: dir, timeout: 20_000 })).stdout)

  it('npm warns about it by name, and runs it', async () => {
    const dir = temp('handover-npm11-')
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'app', private: true })}\n`)
    const { stderr } = await run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, env: npmEnv(), maxBuffer: MAX_BUFFER })
    const npmMajor = Number(execFileSync('npm', ['--version'], { encoding: 'utf8' }).split('.')[0])
    if (npmMajor >= 11) expect(stderr).toMatch(/install scripts not yet covered by allowScripts:\n.*handover@[\d.]+ \(install: node-gyp-build/)
  }, 120_000)

  it('with the prebuild there, skipping the script changes nothing', async () => {
    const dir = await project(tarball, ['--ignore-scripts'])
    expect(existsSync(join(dir, 'node_modules', 'handover', 'build'))).toBe(false)
    expect(await tryIt(dir)).toMatchObject({ ok: true })
  }, 120_000)

  it('without a prebuild, the error at first use gives the npm commands, and they work', async () => {
    // The package as a platform without a prebuild gets it: no prebuilds/.
    const unpacked = temp('handover-noprebuild-')
    await run('tar', ['-xzf', tarball, '-C', unpacked])
    rmSync(join(unpacked, 'package', 'prebuilds'), { recursive: true, force: true })
    const stripped = join(unpacked, 'handover-noprebuild.tgz')
    await run('tar', ['-czf', stripped, '-C', unpacked, 'package'])
    const dir = await project(stripped, ['--ignore-scripts'])

    const failed = await tryIt(dir)
    expect(failed.code).toBe('ERR_NATIVE_ADDON')
    const message = failed.message!
    expect(message).toContain(`From ${dir}, run:\n  npm install-scripts approve handover\n  npm rebuild handover --ignore-scripts=false\n`)
    expect(message).toMatch(/no prebuild fits it \(the package has them for linux-x64 and linux-arm64 with glibc, and win32-x64\)/)
    expect(message).toMatch(/a C\+\+ compiler, make and Python 3/)
    expect(message).toMatch(/No native build was found/)
    // Exactly what it says, from where it says.
    for (const line of message.split('\n').filter((l) => l.startsWith('  npm '))) {
      const [command, ...args] = line.trim().split(' ')
      await run(command, args, { cwd: dir, env: npmEnv(), maxBuffer: MAX_BUFFER })
    }
    expect(existsSync(join(dir, 'node_modules', 'handover', 'build', 'Release', 'handover.node'))).toBe(true)
    expect(await tryIt(dir)).toMatchObject({ ok: true })
  }, 240_000)
})

describe('npm pack without the cross-compilers', () => {
  let stage = ''
  let env: NodeJS.ProcessEnv = {}

  beforeAll(async () => {
    stage = stageCheckout()
    // What the first pack built is there, as prebuilds copied from CI would be.
    mkdirSync(join(stage, 'prebuilds'))
    await run('tar', ['-xzmf', tarball, '-C', join(stage, 'prebuilds'), '--strip-components=2', 'package/prebuilds'])
    env = { ...npmEnv(), PATH: pathWithoutCrossCompilers() }
    expect(execFileSync('sh', ['-c', 'command -v aarch64-linux-gnu-g++ x86_64-w64-mingw32-g++-posix || true'], { env, encoding: 'utf8' })).toBe('')
  }, 30_000)

  it('packs with the prebuilds that are there, and says which', async () => {
    const packDir = temp('handover-pack-')
    const { stdout, stderr } = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: stage, env, maxBuffer: MAX_BUFFER })
    const files = await listTarball(join(packDir, parsePackJson(stdout).filename))
    expect(files.filter((f) => f.startsWith('prebuilds/'))).toEqual(tarballFiles.filter((f) => f.startsWith('prebuilds/')))
    expect(stderr).toContain(`prepack: this package carries prebuilds for ${CARRIED.join(', ')}`)
    for (const platform of CARRIED.filter((p) => p !== 'linux-x64')) {
      expect(stderr).toContain(`prepack: ${platform}: kept the prebuild already in prebuilds/`)
    }
  }, 180_000)

  it('npm publish refuses, naming what is missing, before building anything', async () => {
    const failed = await run('npm', ['publish', '--dry-run'], { cwd: stage, env, maxBuffer: MAX_BUFFER }).then(() => undefined, (err: { code: number; stderr: string }) => err)
    expect(failed?.code).not.toBe(0)
    expect(failed?.stderr).toContain('prepack: linux-arm64 needs aarch64-linux-gnu-g++ (bash scripts/install-arm64-toolchain.sh)')
    expect(failed?.stderr).toContain('prepack: win32-x64 needs x86_64-w64-mingw32-g++-posix and x86_64-w64-mingw32-dlltool')
    expect(failed?.stderr).toContain('npm publish needs every prebuild')
  }, 60_000)
})

describe('the packed tarball, without code changes', () => {
  it.each([
    ['--import', 'plain.mjs'],
    ['--require', 'plain.cjs'],
  ])('node %s handover/register: an unmodified app upgrades on SIGHUP', async (flag, script) => {
    const port = await freePort()
    const app = await startInApp(process.execPath, [flag, 'handover/register', script], { APP_PORT: String(port) }, /^listening/)
    const first = await pidAt({ port })
    process.kill(first, 'SIGHUP')
    const [, next] = await app.wait(/^handover: upgraded to pid (\d+)/)
    expect(await pidAt({ port })).toBe(Number(next))
    process.kill(Number(next), 'SIGTERM')
    await waitUntil(() => !isAlive(Number(next)) && !isAlive(first), 10_000, 'both generations to exit')
  })

  it('npx handover run -w 2: one supervisor pid, new workers after SIGHUP', async () => {
    const port = await freePort()
    const run = await startInApp('npx', ['--no-install', 'handover', 'run', '-w', '2', 'plain.mjs'], { APP_PORT: String(port) }, /^handover: generation 1 ready \(2 workers\)/)
    const before = await pidAt({ port })
    // The worker's parent is the supervisor, whatever npx put in between.
    const supervisor = Number(readFileSync(`/proc/${before}/stat`, 'utf8').split(') ')[1].split(' ')[1])
    process.kill(supervisor, 'SIGHUP')
    await run.wait(/^handover: generation 2 ready/)
    const after = await pidAt({ port })
    expect(after).not.toBe(before)
    expect(Number(readFileSync(`/proc/${after}/stat`, 'utf8').split(') ')[1].split(' ')[1])).toBe(supervisor)
    process.kill(supervisor, 'SIGTERM')
    await run.wait(/^handover: stopped/)
    await waitUntil(() => !isAlive(supervisor), 10_000, 'the supervisor to exit')
  })
})
