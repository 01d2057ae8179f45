// examples/docker/Dockerfile's CMD, exactly as written, as PID 1 in a PID
// namespace (what a container gives it, without an engine): SIGHUP to PID 1
// upgrades; SIGTERM to PID 1 drains and exits 0 within the drain timeout.
import { spawn, spawnSync } from 'node:child_process'
import net from 'node:net'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, get } from './helpers/clients.mjs'
import { OutputLines } from './helpers/output.js'
import { waitUntil } from './helpers/processes.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const EXAMPLE = join(ROOT, 'examples', 'docker')
const dir = mkdtempSync(join(tmpdir(), 'handover-docker-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The CMD line's exec form, read from the Dockerfile. */
function dockerCmd(): string[] {
  const line = readFileSync(join(EXAMPLE, 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('CMD '))
  return JSON.parse((line as string).slice(4)) as string[]
}

/** The host pid of the process unshare forked: PID 1 inside the namespace. */
function childOf(pid: number): number | undefined {
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
    if (children) return Number(children.split(' ')[0])
  }
  return undefined
}

const canUnshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0
if (!canUnshare) console.warn('SKIPPED: the Dockerfile CMD test needs unshare --pid (root)')

describe.skipIf(!canUnshare)("examples/docker/Dockerfile's CMD as PID 1", () => {
  it('SIGHUP to PID 1 upgrades; SIGTERM drains (a keep-alive client sees a clean close) and exits 0 within the drain timeout', async () => {
    // The image's /app: the example's app.js, and handover installed in node_modules (this checkout).
    const app = join(dir, 'app')
    mkdirSync(join(app, 'node_modules', '.bin'), { recursive: true })
    symlinkSync(join(EXAMPLE, 'app.js'), join(app, 'app.js'))
    symlinkSync(ROOT, join(app, 'node_modules', 'handover'))
    symlinkSync('../handover/dist/bin.js', join(app, 'node_modules', '.bin', 'handover'))
    const port = await freePort()
    const cmd = dockerCmd()
    expect(cmd[0]).toBe('node_modules/.bin/handover')
    const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', ...cmd], { cwd: app, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
    const out = new OutputLines(child)
    try {
      const exited = (): string | undefined => (out.closed ? 'exited' : undefined)
      await out.waitFor(/^handover: generation 1 ready/, 20_000, 0, exited)
      const init = childOf(child.pid as number) as number
      expect(readFileSync(`/proc/${init}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m)
      // PID 1 is node itself: nothing in between to swallow a signal.
      expect(readFileSync(`/proc/${init}/cmdline`, 'utf8').split('\0')[0]).toMatch(/node$/)
      const before = (await get({ port })).body
      process.kill(init, 'SIGHUP')
      await out.waitFor(/^handover: generation 2 ready/, 20_000, 0, exited)
      await waitUntil(async () => (await get({ port })).body !== before, 10_000, 'a new worker to answer')

      // A keep-alive client between requests: the drain closes its connection cleanly (a FIN, not a reset).
      const client = net.connect(port, '127.0.0.1')
      const ended = new Promise<string>((resolve) => {
        client.on('end', () => resolve('end'))
        client.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
      })
      const answered = new Promise<string>((resolve) => client.once('data', (d: Buffer) => resolve(d.toString())))
      client.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
      expect(await answered).toMatch(/^HTTP\/1\.1 200 /)
      process.kill(init, 'SIGTERM')
      const started = Date.now()
      const code = await new Promise((resolve) => child.once('exit', (c) => resolve(c)))
      expect(code).toBe(0)
      expect(Date.now() - started).toBeLessThan(20_000)
      expect(await ended).toBe('end')
      client.destroy()
      expect(out.lines.some((l) => l.includes('started by npm or npx'))).toBe(false)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })
})
