import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { writePidFile } from '../src/core/pidfile.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-pidfile-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The temp name the pid file writer used to use: anyone able to write to the directory could guess it. */
const oldTempName = (path: string, pid: number): string => join(dir, `.${path.split('/').pop()}.${pid}.tmp`)

describe('pid file', () => {
  it('does not follow a symlink planted at the old predictable temp name', async () => {
    const path = join(dir, 'symlink.pid')
    const victim = join(dir, 'victim')
    writeFileSync(victim, 'precious\n', { mode: 0o600 })
    symlinkSync(victim, oldTempName(path, 4242))
    await writePidFile(path, 4242)
    expect(readFileSync(victim, 'utf8')).toBe('precious\n')
    expect(readFileSync(path, 'utf8')).toBe('4242\n')
  })

  it('is written although a directory is planted at the old predictable temp name', async () => {
    const path = join(dir, 'dir.pid')
    mkdirSync(oldTempName(path, 4343))
    await writePidFile(path, 4343)
    expect(readFileSync(path, 'utf8')).toBe('4343\n')
  })

  it('uses an unpredictable temp name each time and leaves no temp file behind', async () => {
    const sub = join(dir, 'names')
    mkdirSync(sub)
    const path = join(sub, 'app.pid')
    // Planted at every name the old scheme could pick for these pids: none of them is used.
    for (const pid of [5000, 5001]) mkdirSync(join(sub, `.app.pid.${pid}.tmp`))
    await writePidFile(path, 5000)
    await writePidFile(path, 5001)
    expect(readFileSync(path, 'utf8')).toBe('5001\n')
    expect(readdirSync(sub).sort()).toEqual(['.app.pid.5000.tmp', '.app.pid.5001.tmp', 'app.pid'])
  })

  it('a failure names the temp path and leaves nothing behind', async () => {
    const sub = join(dir, 'fails')
    mkdirSync(sub)
    // The pid file path is a directory: the rename fails.
    const path = join(sub, 'app.pid')
    mkdirSync(path)
    writeFileSync(join(path, 'keep'), '')
    const err = await writePidFile(path, 6000).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ name: 'HandoverError', code: 'EISDIR' })
    expect((err as Error).message).toMatch(new RegExp(`${sub}/\\.app\\.pid\\.[0-9a-f]{16,}\\.tmp`))
    expect(readdirSync(sub)).toEqual(['app.pid'])
  })
})
