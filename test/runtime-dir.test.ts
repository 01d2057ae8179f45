// The default control socket directory (src/service/runtime-dir.ts) on real
// files, with the hostile cases: a planted symlink, a directory of another
// user, a mode that lets others in. And `handover status|upgrade [name]`
// finding a real server there without --socket.
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { checkName, defaultName, ensureRuntimeDir, findLiveSocket, findSocket, listNames, runtimeDir, socketAnswers, socketPathFor } from '../src/service/runtime-dir.js'
import { CLI } from './helpers/control.js'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'

const root = mkdtempSync(join(tmpdir(), 'handover-rtdir-'))
const servers: net.Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve))
  await killAllFixtures()
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** A fresh XDG_RUNTIME_DIR, 0700 like the one a login session has. */
function session(): NodeJS.ProcessEnv {
  const xdg = mkdtempSync(join(root, 'xdg-'))
  chmodSync(xdg, 0o700)
  return { XDG_RUNTIME_DIR: xdg }
}

async function listen(path: string): Promise<void> {
  // A client may go before the answer (findLiveSocket's probe connects and leaves).
  const server = net.createServer((s) => s.on('error', () => {}).end('{"ok":true,"pid":1}\n'))
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(path, resolve))
}

const is = (code: string) => expect.objectContaining({ code })

describe('names', () => {
  it('--name: letters, digits, . _ -; no slash, not only dots, not hidden or option-like, at most 64', () => {
    for (const good of ['app', 'api-v2', 'my_service.blue', '_x', 'a'.repeat(64)]) expect(checkName(good)).toBe(good)
    for (const bad of ['', '.', '..', '...', 'a/b', '../x', 'a\\b', '-x', '.hidden', 'sp ace', 'a'.repeat(65), 'é', 'x\n']) {
      expect(() => checkName(bad), JSON.stringify(bad)).toThrow(is('ERR_INVALID_OPTION'))
    }
  })

  it('the default: the script\'s base name without its extension, made safe', () => {
    expect(defaultName('/srv/api/server.mjs')).toBe('server')
    expect(defaultName('app.ts')).toBe('app')
    expect(defaultName('dist/my app.v2.js')).toBe('my-app.v2')
    expect(defaultName('.hidden.js')).toBe('hidden')
    expect(defaultName('...')).toBe('app')
    expect(defaultName(`${'x'.repeat(100)}.js`)).toBe('x'.repeat(64))
  })
})

describe('where the directory is', () => {
  it('$XDG_RUNTIME_DIR/handover, else /run/handover for root, else <tmp>/handover-<uid>', () => {
    expect(runtimeDir({ env: { XDG_RUNTIME_DIR: '/run/user/1000' }, uid: 1000 })).toBe('/run/user/1000/handover')
    expect(runtimeDir({ env: { XDG_RUNTIME_DIR: 'relative' }, uid: 0 })).toBe('/run/handover')
    expect(runtimeDir({ env: {}, uid: 0 })).toBe('/run/handover')
    expect(runtimeDir({ env: { TMPDIR: '/var/tmp' }, uid: 1000 })).toBe('/var/tmp/handover-1000')
  })
})

describe('creating and checking it', () => {
  it('made 0700 and owned by the user, whatever the umask; found again as it is', () => {
    const env = session()
    const old = process.umask(0)
    try {
      const dir = ensureRuntimeDir({ env })
      expect(dir).toBe(join(env.XDG_RUNTIME_DIR!, 'handover'))
      const st = lstatSync(dir)
      expect(st.isDirectory()).toBe(true)
      expect(st.mode & 0o7777).toBe(0o700)
      expect(st.uid).toBe(process.geteuid!())
      expect(ensureRuntimeDir({ env })).toBe(dir)
      expect(socketPathFor('api', { env })).toBe(join(dir, 'api.sock'))
      expect(() => socketPathFor('../escape', { env })).toThrow(is('ERR_INVALID_OPTION'))
    } finally {
      process.umask(old)
    }
  })

  it('a symlink planted where the directory goes is refused, never followed: its target is left as it was', () => {
    const env = session()
    const target = mkdtempSync(join(root, 'target-'))
    chmodSync(target, 0o700)
    symlinkSync(target, join(env.XDG_RUNTIME_DIR!, 'handover'))
    expect(() => ensureRuntimeDir({ env })).toThrow(expect.objectContaining({ code: 'ERR_UNSAFE_RUNTIME_DIR', message: expect.stringMatching(/symbolic link/) }))
    expect(() => socketPathFor('api', { env })).toThrow(is('ERR_UNSAFE_RUNTIME_DIR'))
    expect(() => findSocket(undefined, { env })).toThrow(is('ERR_UNSAFE_RUNTIME_DIR'))
    expect(readdirSync(target)).toEqual([])
    expect(lstatSync(join(env.XDG_RUNTIME_DIR!, 'handover')).isSymbolicLink()).toBe(true)
  })

  it('a directory of another user (chowned to nobody) is refused, for the server and for the command', () => {
    const env = session()
    const dir = join(env.XDG_RUNTIME_DIR!, 'handover')
    mkdirSync(dir, { mode: 0o700 })
    chownSync(dir, 65534, 65534)
    expect(() => ensureRuntimeDir({ env })).toThrow(expect.objectContaining({ code: 'ERR_UNSAFE_RUNTIME_DIR', message: expect.stringMatching(/belongs to uid 65534/) }))
    expect(() => listNames({ env })).toThrow(is('ERR_UNSAFE_RUNTIME_DIR'))
    // The same directory seen as nobody's own is fine: the check is against the effective uid.
    expect(ensureRuntimeDir({ env, uid: 65534 })).toBe(dir)
  })

  it('mode 0777 (or any group or other bit) is refused and left alone; chmod 700 makes it usable', () => {
    const env = session()
    const dir = join(env.XDG_RUNTIME_DIR!, 'handover')
    mkdirSync(dir)
    for (const mode of [0o777, 0o750, 0o701, 0o1777]) {
      chmodSync(dir, mode)
      expect(() => ensureRuntimeDir({ env }), mode.toString(8)).toThrow(expect.objectContaining({ code: 'ERR_UNSAFE_RUNTIME_DIR', message: expect.stringMatching(/not 0700/) }))
      expect(statSync(dir).mode & 0o7777).toBe(mode)
    }
    chmodSync(dir, 0o700)
    expect(ensureRuntimeDir({ env })).toBe(dir)
  })

  it('a file in its place, a missing parent, and a parent others may write to without the sticky bit are refused', () => {
    const env = session()
    writeFileSync(join(env.XDG_RUNTIME_DIR!, 'handover'), '')
    expect(() => ensureRuntimeDir({ env })).toThrow(expect.objectContaining({ code: 'ERR_UNSAFE_RUNTIME_DIR', message: expect.stringMatching(/not a directory/) }))
    expect(() => ensureRuntimeDir({ env: { XDG_RUNTIME_DIR: join(root, 'no-such-session') } })).toThrow(is('ERR_UNSAFE_RUNTIME_DIR'))
    const open = session()
    chmodSync(open.XDG_RUNTIME_DIR!, 0o777)
    expect(() => ensureRuntimeDir({ env: open })).toThrow(expect.objectContaining({ message: expect.stringMatching(/not sticky/) }))
    chmodSync(open.XDG_RUNTIME_DIR!, 0o1777)
    expect(ensureRuntimeDir({ env: open })).toBe(join(open.XDG_RUNTIME_DIR!, 'handover'))
  })
})

describe('finding a server', () => {
  it('none, one (found without a name), several (a name is needed, the error lists them); files that are not sockets do not count', async () => {
    const env = session()
    expect(listNames({ env })).toEqual([])
    expect(() => findSocket(undefined, { env })).toThrow(is('ERR_NO_SERVER'))
    const dir = ensureRuntimeDir({ env })
    writeFileSync(join(dir, 'notasocket.sock'), '')
    expect(() => findSocket(undefined, { env })).toThrow(is('ERR_NO_SERVER'))
    await listen(join(dir, 'api.sock'))
    expect(findSocket(undefined, { env })).toBe(join(dir, 'api.sock'))
    expect(findSocket('api', { env })).toBe(join(dir, 'api.sock'))
    await listen(join(dir, 'web.sock'))
    expect(listNames({ env })).toEqual(['api', 'web'])
    expect(() => findSocket(undefined, { env })).toThrow(expect.objectContaining({ code: 'ERR_AMBIGUOUS_SERVER', message: expect.stringMatching(/\(api, web\)/) }))
    expect(findSocket('web', { env })).toBe(join(dir, 'web.sock'))
    expect(() => findSocket('worker', { env })).toThrow(expect.objectContaining({ code: 'ERR_NO_SERVER', message: expect.stringMatching(/there: api, web/) }))
    expect(() => findSocket('../web', { env })).toThrow(is('ERR_INVALID_OPTION'))
  })

  it('without a name, sockets left by servers that are no longer running do not count', async () => {
    const env = session()
    const dir = ensureRuntimeDir({ env })
    // A socket file nobody listens on, as a SIGKILLed server leaves it.
    execFileSync('python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(dir, 'dead.sock')])
    expect(lstatSync(join(dir, 'dead.sock')).isSocket()).toBe(true)
    expect(await socketAnswers(join(dir, 'dead.sock'))).toBe(false)
    // One stale socket alone is returned: the connection then says the server is not running.
    expect(await findLiveSocket(undefined, { env })).toBe(join(dir, 'dead.sock'))
    await listen(join(dir, 'api.sock'))
    expect(await socketAnswers(join(dir, 'api.sock'))).toBe(true)
    expect(() => findSocket(undefined, { env })).toThrow(is('ERR_AMBIGUOUS_SERVER'))
    expect(await findLiveSocket(undefined, { env })).toBe(join(dir, 'api.sock'))
    await listen(join(dir, 'web.sock'))
    await expect(findLiveSocket(undefined, { env })).rejects.toThrow(expect.objectContaining({
      code: 'ERR_AMBIGUOUS_SERVER', message: expect.stringMatching(/\(api, web\): name one, e\.g\. handover status api; dead is a socket left by servers that are not running$/),
    }))
    expect(await findLiveSocket('dead', { env })).toBe(join(dir, 'dead.sock'))
  })

  it('handover status and upgrade [name] reach a real server there without --socket', async () => {
    const env = session()
    const dir = ensureRuntimeDir({ env })
    const f = await Fixture.start({ FIXTURE_CONTROL_SOCKET: join(dir, 'shop.sock') })
    const run = (...args: string[]) => new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, ...args], { timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
        resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr })
      })
    })
    expect(JSON.parse((await run('status', '--json')).stdout)).toMatchObject({ ok: true, pid: f.current })
    expect(JSON.parse((await run('status', 'shop', '--json')).stdout)).toMatchObject({ ok: true, pid: f.current })
    const up = await run('upgrade', 'shop')
    expect(up.status).toBe(0)
    expect(JSON.parse(up.stdout)).toMatchObject({ ok: true })
    expect((await run('status', 'shop')).stdout).toMatch(new RegExp(`^\\s*${f.current}\\s+-\\s+serving`, 'm'))
    const missing = await run('status', 'nope')
    expect(missing).toMatchObject({ status: 1, stdout: '' })
    expect(missing.stderr).toMatch(/^handover: status failed: ERR_NO_SERVER: no control socket named "nope" in .* \(there: shop\)/)
  })
})
