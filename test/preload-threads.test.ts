// handover/register and a server in a worker_thread. Node runs the preload
// in every thread, but a thread's socket cannot be handed over: a new
// generation's thread would get EADDRINUSE while the old process holds the
// address, and the port would die with it. So the preload says so when the
// thread listens, refuses SIGHUP upgrades while it does (no reported success
// that leaves a port dead), drains the thread's server with the rest at
// SIGTERM, and under `handover run` refuses the thread's listen outright.
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, get, requestLoop } from './helpers/clients.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { killSupervised, Supervised } from './helpers/supervisor.js'

afterEach(async () => {
  killPreloadApps()
  await killSupervised()
})

/** What answered: "<pid> <main|thread>". */
async function who(port: number, path = '/'): Promise<string> {
  const { status, body } = await get({ port }, path)
  if (status !== 200) throw new Error(`status ${status}`)
  return body
}

describe('a server in a worker_thread, under handover/register', () => {
  it('SIGHUP is refused while it listens, twice, and every request is answered by the same process', async () => {
    const [threadPort, mainPort] = [await freePort(), await freePort()]
    const app = await PreloadApp.start('thread-server.mjs', { THREAD_PORT: String(threadPort), MAIN_PORT: String(mainPort) }, { wait: /^listening \d+ thread/ })
    const pid = app.current
    await app.waitForLine(new RegExp(`^listening ${pid} main`))

    const answers = new Map<string, number>()
    const load = requestLoop(4, async (worker) => {
      const body = await who(worker % 2 === 0 ? threadPort : mainPort)
      answers.set(body, (answers.get(body) ?? 0) + 1)
      return Number(body.split(' ')[0])
    })
    for (let i = 0; i < 2; i++) {
      const from = app.lines.length
      process.kill(pid, 'SIGHUP')
      const { input: line } = await app.waitForLine(/^handover: (upgraded|upgrade failed)/, 30_000, from)
      expect(line).toMatch(new RegExp(`^handover: upgrade failed: ERR_UNSUPPORTED: a server listens in a worker thread \\(worker thread \\d+ on port ${threadPort}\\)`))
      await new Promise((r) => setTimeout(r, 300))
    }
    await load.stop()
    expect(load.errors).toEqual({})
    // Said when the thread listened, before any SIGHUP.
    const warned = app.lines.findIndex((l) => new RegExp(`^handover: worker thread \\d+ listens on port ${threadPort}, which handover does not hand over: SIGHUP upgrades are refused`).test(l))
    expect(warned).toBeGreaterThan(-1)
    expect(warned).toBeLessThan(app.lines.findIndex((l) => l.startsWith('handover: upgrade')))
    expect([...answers.keys()].sort()).toEqual([`${pid} main`, `${pid} thread`])
    expect(app.lines.filter((l) => /^(error|listening) /.test(l) && !l.includes(` ${pid} `))).toEqual([])

    // SIGTERM drains the thread's server too: a slow request there is answered, then the process exits 0.
    const slow = who(threadPort, '/slow')
    await new Promise((r) => setTimeout(r, 200))
    process.kill(pid, 'SIGTERM')
    expect(await slow).toBe(`${pid} thread`)
    expect(await new Promise((resolve) => (app.process.exitCode !== null ? resolve(app.process.exitCode) : app.process.once('exit', resolve)))).toBe(0)
  })

  it('once the thread has closed its server, SIGHUP upgrades again', async () => {
    const [threadPort, mainPort] = [await freePort(), await freePort()]
    const app = await PreloadApp.start('thread-server.mjs', { THREAD_PORT: String(threadPort), MAIN_PORT: String(mainPort), THREAD_CLOSE_MS: '300' }, { wait: /^closed \d+ thread/ })
    const { oldPid, newPid } = await app.upgrade()
    expect(newPid).not.toBe(oldPid)
    expect(await who(mainPort)).toBe(`${newPid} main`)
  })
})

describe('a server in a worker_thread, under handover run', () => {
  it('its listen gets ERR_UNSUPPORTED, since the supervisor cannot be told to refuse an upgrade', async () => {
    const [threadPort, mainPort] = [await freePort(), await freePort()]
    const run = await Supervised.start(['-w', '1'], 'thread-server.mjs', { THREAD_PORT: String(threadPort), MAIN_PORT: String(mainPort) })
    const { input: line } = await run.waitForLine(/^(error|listening) \d+ thread/)
    expect(line).toMatch(/^error \d+ thread \{"code":"ERR_UNSUPPORTED","message":"worker thread \d+ cannot listen on port \d+ under handover run/)
    const [, worker] = /^(\d+) main$/.exec(await who(mainPort))!
    expect(isAlive(Number(worker))).toBe(true)
    process.kill(run.pid, 'SIGTERM')
    await waitUntil(() => !isAlive(run.pid), 15_000, 'the supervisor to stop')
  })
})
