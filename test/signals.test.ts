// The upgrade signal is configurable (issue 19): SIGUSR2, as grace, einhorn
// and unicorn users expect, and SIGHUP is then the app's own again (NestJS's
// enableShutdownHooks() listens to it). And npm or npx between the supervisor
// and whoever signals it is warned about, once.
import { spawn } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, get } from './helpers/clients.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp, ROOT } from './helpers/preload-app.js'
import { killSupervised, Supervised } from './helpers/supervisor.js'
import { OutputLines } from './helpers/output.js'

afterEach(async () => {
  killPreloadApps()
  await killSupervised()
})

describe('the upgrade signal', () => {
  it('under the preload, HANDOVER_UPGRADE_SIGNAL=SIGUSR2 upgrades on SIGUSR2; SIGHUP reaches the app\'s own handler, in every generation', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), OWN_SIGHUP: '1', HANDOVER_UPGRADE_SIGNAL: 'SIGUSR2' })
    const first = app.current
    let from = app.lines.length
    process.kill(first, 'SIGHUP')
    await app.waitForLine(new RegExp(`^app sighup ${first}$`), 5_000, from)
    expect(isAlive(first)).toBe(true)
    expect(app.lines.slice(from).some((l) => l.startsWith('handover: upgraded'))).toBe(false)

    from = app.lines.length
    process.kill(first, 'SIGUSR2')
    const [, second] = await app.waitForLine(/^handover: upgraded to pid (\d+)/, 15_000, from)
    app.current = Number(second)
    await waitUntil(() => !isAlive(first), 10_000, 'the first generation to exit')
    expect(Number((await get({ port })).body)).toBe(Number(second))
    from = app.lines.length
    process.kill(Number(second), 'SIGHUP')
    await app.waitForLine(new RegExp(`^app sighup ${second}$`), 5_000, from)
    expect(isAlive(Number(second))).toBe(true)
  })

  it('under handover run --upgrade-signal SIGUSR2: SIGUSR2 to the supervisor upgrades; SIGHUP goes to each worker\'s own handler', async () => {
    const port = await freePort()
    const s = await Supervised.start(['-w', '2', '--upgrade-signal', 'SIGUSR2'], 'worker.mjs', { PORT: String(port), OWN_SIGHUP: '1' })
    const workers = s.workerPids()
    expect(workers).toHaveLength(2)
    process.kill(s.pid, 'SIGHUP')
    for (const pid of workers) await s.waitForLine(new RegExp(`^app sighup ${pid}$`), 5_000)
    expect(isAlive(s.pid)).toBe(true)
    process.kill(s.pid, 'SIGUSR2')
    await s.waitForLine(/^handover: generation 2 ready/, 15_000)
    const answered = Number((await get({ port })).body)
    expect(workers).not.toContain(answered)
  })

  it('a bad signal is a usage error', async () => {
    const r = spawn(process.execPath, ['dist/bin.js', 'run', '--upgrade-signal', 'SIGKILL', 'app.js'], { cwd: ROOT })
    const out = new OutputLines(r)
    const code = await new Promise((resolve) => r.once('exit', resolve))
    expect(code).toBe(2)
    expect(out.lines[0]).toBe('handover: --upgrade-signal takes SIGHUP or SIGUSR2, not "SIGKILL"')
  })
})

describe('npm between the supervisor and its signals', () => {
  it('handover run started by `npm run` warns once that npm does not pass its signals on', async () => {
    const port = await freePort()
    const child = spawn('npm', ['run', '--silent', 'example:run'], { cwd: ROOT, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const out = new OutputLines(child)
    try {
      await out.waitFor(/^handover: generation 1 ready/, 20_000, 0, () => (out.closed ? 'exited' : undefined))
      const warnings = out.lines.filter((l) => l.startsWith('handover: warning: started by npm or npx'))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/run `node_modules\/\.bin\/handover run \.\.\.` or `node node_modules\/handover\/dist\/bin\.js run \.\.\.` directly/)
    } finally {
      // The whole group: npm, its shell, the supervisor and its workers' groups are the supervisor's to stop.
      try {
        process.kill(-(child.pid as number), 'SIGTERM')
      } catch {
        // Gone.
      }
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)))
    }
  })

  it('started by node directly, it says nothing of npm', async () => {
    const port = await freePort()
    const s = await Supervised.start(['-w', '1'], 'worker.mjs', { PORT: String(port) })
    expect(s.lines.some((l) => l.includes('npm'))).toBe(false)
  })
})
