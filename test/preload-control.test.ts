// handover/register's control socket (issue 21), with real processes: an
// unmodified app under `node --import handover/register` answers
// `handover status|upgrade` without --socket at <runtime dir>/<script>.sock,
// 0600, through upgrades (each new generation takes the same socket), and
// the last generation removes the file; HANDOVER_NAME, an explicit
// HANDOVER_CONTROL_SOCKET path, the off switch, a second app of the same
// script name (<name>-<pid>, kept through its upgrades) and an unsafe
// runtime directory (no socket, said once, the app serves all the same).
// A runtime directory per test, as in run-ops.test.ts.
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { freePort, get } from './helpers/clients.mjs'
import { handover } from './helpers/ops.js'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const dir = mkdtempSync(join(tmpdir(), 'handover-preload-control-'))
let session = 0
beforeEach(() => {
  process.env.XDG_RUNTIME_DIR = mkdtempSync(join(dir, `xdg-${session++}-`))
})
afterEach(killPreloadApps)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const runtime = (): string => join(process.env.XDG_RUNTIME_DIR as string, 'handover')

/** `handover <args> --json`'s answer, which must have succeeded. */
async function answer(args: string[]): Promise<{ ok: boolean; pid: number; [field: string]: unknown }> {
  const run = await handover([...args, ...(args[0] === 'status' ? ['--json'] : [])])
  if (run.status !== 0) throw new Error(`handover ${args.join(' ')} exited ${run.status}: ${run.stdout}${run.stderr}`)
  return JSON.parse(run.stdout)
}

/** `handover upgrade [args]` without --socket; resolves with the new pid once the old one has exited. */
async function upgradeByCommand(app: PreloadApp, args: string[] = []): Promise<number> {
  const oldPid = app.current
  const { pid } = await answer(['upgrade', ...args])
  app.current = pid
  expect(pid).not.toBe(oldPid)
  await waitUntil(() => !isAlive(oldPid), 15_000, `old process ${oldPid} to exit`)
  return pid
}

describe("handover/register's control socket", () => {
  it('<runtime dir>/<script>.sock, 0600: handover status and upgrade find it without --socket, through upgrades; SIGTERM removes it', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('ops.mjs', { PORT: String(port) })
    const path = join(runtime(), 'ops.sock')
    await waitUntil(() => existsSync(path), 5_000, 'the control socket')
    const st = lstatSync(path)
    expect(st.isSocket()).toBe(true)
    expect(st.mode & 0o777).toBe(0o600)
    expect(lstatSync(runtime()).mode & 0o777).toBe(0o700)

    expect(await answer(['status'])).toEqual({ ok: true, pid: app.current, hasParent: false })
    // The table for people: one process, serving.
    const table = await handover(['status'])
    expect(table.status).toBe(0)
    expect(table.stdout.trimEnd().split('\n')).toHaveLength(2)
    expect(table.stdout).toMatch(new RegExp(`^\\s*PID\\s+GEN\\s+STATE.*\\n\\s*${app.current}\\s+-\\s+serving\\b`))

    const first = await upgradeByCommand(app)
    expect(await answer(['status', 'ops'])).toMatchObject({ ok: true, pid: first, hasParent: true })
    expect(readdirSync(runtime())).toEqual(['ops.sock'])
    const second = await upgradeByCommand(app, ['ops'])
    expect(await answer(['status'])).toMatchObject({ ok: true, pid: second })
    // The same file all along: the new generations took the socket, none bound it again.
    expect(lstatSync(path).ino).toBe(st.ino)
    expect((await get({ port }, '/')).status).toBe(200)
    // SIGHUP upgrades still work beside it.
    const { newPid } = await app.upgrade()
    expect(await answer(['status'])).toMatchObject({ pid: newPid })

    await app.stop('SIGTERM')
    expect(existsSync(path)).toBe(false)
    expect(app.text).not.toMatch(/control socket/)
  })

  it('HANDOVER_NAME names it; HANDOVER_CONTROL_SOCKET puts it elsewhere, or (0) turns it off', async () => {
    const named = await PreloadApp.start('ops.mjs', { PORT: String(await freePort()), HANDOVER_NAME: 'api' })
    await waitUntil(() => existsSync(join(runtime(), 'api.sock')), 5_000, 'api.sock')
    expect(await answer(['status', 'api'])).toMatchObject({ pid: named.current })
    await named.stop('SIGTERM')
    expect(existsSync(join(runtime(), 'api.sock'))).toBe(false)

    const elsewhere = join(mkdtempSync(join(dir, 'explicit-')), 'control.sock')
    const explicit = await PreloadApp.start('ops.mjs', { PORT: String(await freePort()), HANDOVER_CONTROL_SOCKET: elsewhere })
    await waitUntil(() => existsSync(elsewhere), 5_000, 'the explicit control socket')
    expect(lstatSync(elsewhere).mode & 0o777).toBe(0o600)
    expect(await answer(['status', '--socket', elsewhere])).toMatchObject({ pid: explicit.current })
    await upgradeByCommand(explicit, ['--socket', elsewhere])
    expect(await answer(['status', '--socket', elsewhere])).toMatchObject({ pid: explicit.current })
    await explicit.stop('SIGTERM')
    expect(existsSync(elsewhere)).toBe(false)

    const off = await PreloadApp.start('ops.mjs', { PORT: String(await freePort()), HANDOVER_CONTROL_SOCKET: '0' })
    // Served, upgraded by signal, and no socket anywhere.
    await off.upgrade()
    expect(existsSync(runtime()) ? readdirSync(runtime()) : []).toEqual([])
    const none = await handover(['status'])
    expect(none.status).not.toBe(0)
    expect(none.stderr).toMatch(/ERR_NO_SERVER/)
    await off.stop('SIGTERM')
  })

  it('a second app of the same script name takes <name>-<pid>, and keeps it through its upgrades', async () => {
    const a = await PreloadApp.start('ops.mjs', { PORT: String(await freePort()) })
    await waitUntil(() => existsSync(join(runtime(), 'ops.sock')), 5_000, 'ops.sock')
    const b = await PreloadApp.start('ops.mjs', { PORT: String(await freePort()) })
    const unique = `ops-${b.current}`
    await b.waitForLine(new RegExp(`^handover: another server already answers as ops: this one is ${unique} \\(set HANDOVER_NAME to choose\\)$`))
    await waitUntil(() => existsSync(join(runtime(), `${unique}.sock`)), 5_000, `${unique}.sock`)
    expect(readdirSync(runtime()).sort()).toEqual(['ops.sock', `${unique}.sock`].sort())
    expect(await answer(['status', unique])).toMatchObject({ pid: b.current })
    expect(await answer(['status', 'ops'])).toMatchObject({ pid: a.current })
    // Without a name there are two: ambiguous.
    const both = await handover(['status'])
    expect(both.stderr).toMatch(/ERR_AMBIGUOUS_SERVER/)

    await upgradeByCommand(b, [unique])
    expect(await answer(['status', unique])).toMatchObject({ pid: b.current, hasParent: true })
    expect(readdirSync(runtime()).sort()).toEqual(['ops.sock', `${unique}.sock`].sort())
    // Said once, by the first generation.
    expect(b.lines.filter((l) => /another server already answers/.test(l))).toHaveLength(1)
    await b.stop('SIGTERM')
    await a.stop('SIGTERM')
    expect(readdirSync(runtime())).toEqual([])
  })

  it('an unsafe runtime directory: no control socket, said once on stderr; the app serves and upgrades all the same', async () => {
    mkdirSync(runtime(), { mode: 0o700 })
    chmodSync(runtime(), 0o755)
    const port = await freePort()
    const app = await PreloadApp.start('ops.mjs', { PORT: String(port) })
    await app.waitForLine(/^handover: no control socket: ERR_UNSAFE_RUNTIME_DIR: .* its mode is 0755/)
    await app.upgrade()
    expect((await get({ port }, '/')).status).toBe(200)
    expect(app.lines.filter((l) => /no control socket/.test(l))).toHaveLength(1)
    expect(readdirSync(runtime())).toEqual([])
    await app.stop('SIGTERM')
  })
})
