// handover run as a service manager's main process and as a container's
// init: the sd_notify messages (to a real datagram receiver), and PID 1 in
// a PID namespace, where orphans' zombies are ours to reap.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { posixAddon } from '../src/backend/addon.js'
import { freePort, get } from './helpers/clients.mjs'
import { waitUntil } from './helpers/processes.mjs'
import { NotifyReceiver } from './helpers/notify.js'
import { killSupervised, Supervised } from './helpers/supervisor.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-run-sys-'))
const receivers: NotifyReceiver[] = []
afterEach(async () => {
  await killSupervised()
  for (const r of receivers.splice(0)) r.stop()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('systemd: the supervisor is the main process for good', () => {
  it('READY, RELOADING and READY around an upgrade, STATUS, STOPPING: all from the supervisor, none from a worker', async () => {
    const address = join(dir, 'notify.sock')
    const r = await NotifyReceiver.start(address)
    receivers.push(r)
    const port = await freePort()
    const s = await Supervised.start(['-w', '2'], 'worker.mjs', { PORT: String(port), NOTIFY_SOCKET: address })
    process.kill(s.pid, 'SIGHUP')
    await s.waitForLine(/^handover: generation 2 ready/)
    process.kill(s.pid, 'SIGTERM')
    await s.exited()
    posixAddon().sdNotify(address, false, 'SENTINEL=1\n')
    await waitUntil(() => r.messages.some((m) => m.message === 'SENTINEL=1\n'), 10_000, 'the sentinel')
    const messages = r.messages.filter((m) => m.message !== 'SENTINEL=1\n')
    expect(messages.map((m) => m.pid)).toEqual(messages.map(() => s.pid))
    const lines = messages.map((m) => m.message.trim().split('\n'))
    expect(lines[0]).toEqual(['READY=1', `MAINPID=${s.pid}`, 'STATUS=generation 1, 2 workers'])
    expect(lines[1][0]).toBe('RELOADING=1')
    expect(lines[1][1]).toMatch(/^MONOTONIC_USEC=\d+$/)
    expect(lines[2]).toEqual(['READY=1', 'STATUS=generation 2, 2 workers'])
    expect(lines[3]).toEqual(['STOPPING=1'])
    expect(lines).toHaveLength(4)
  })
})

describe('socket activation: the supervisor holds the activated socket', () => {
  it('the first connection starts the service and is answered by a worker; upgrades keep the activated socket', async () => {
    const port = await freePort()
    const address = `127.0.0.1:${port}`
    const s = Supervised.launch(['-w', '2'], 'worker.mjs', {}, ['systemd-socket-activate', '-l', address, `-EPORT=${port}`, '-EHOST=127.0.0.1'])
    // The tool execs the supervisor when this connection arrives; it waits in the activated socket's queue.
    let first = { status: 0, body: '' }
    for (const deadline = Date.now() + 10_000; ;) {
      try {
        first = await get({ port }, '/', 20_000)
        break
      } catch (err) {
        // Until the tool itself listens.
        if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() > deadline) throw err
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    expect(first.status).toBe(200)
    await s.waitForLine(/^handover: generation 1 ready/)
    const workers = s.workerPids()
    expect(workers).toContain(Number(first.body))
    process.kill(s.pid, 'SIGHUP')
    await s.waitForLine(/^handover: generation 2 ready/)
    const next = Number((await get({ port })).body)
    expect(workers).not.toContain(next)
    process.kill(s.pid, 'SIGTERM')
    expect(await s.exited()).toEqual({ code: 0, signal: null })
  })
})

/** The host pid of the process unshare forked: PID 1 inside the namespace. */
function childOf(pid: number): number | undefined {
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
    if (children) return Number(children.split(' ')[0])
  }
  return undefined
}

function zombieChildren(parent: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] === 'Z' && Number(fields[1]) === parent) out.push(Number(name))
    } catch {
      // Gone.
    }
  }
  return out
}

const unshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'])
const canUnshare = unshare.status === 0
if (!canUnshare) console.warn(`SKIPPED: PID 1 tests need unshare --pid (root): ${unshare.stderr?.toString().trim() || unshare.error?.message}`)

describe.skipIf(!canUnshare)('PID 1 in a PID namespace (unshare --pid --fork --mount-proc)', () => {
  it('reaps the orphans re-parented to it, serves, and stops on SIGTERM', async () => {
    const port = await freePort()
    const s = await Supervised.start(['-w', '2'], 'worker.mjs', { PORT: String(port), ORPHANS: '1' }, ['unshare', '--pid', '--fork', '--mount-proc'])
    const init = childOf(s.pid) as number
    expect(readFileSync(`/proc/${init}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m)
    expect((await get({ port })).status).toBe(200)
    // Each worker left a sleep 0.2 behind, re-parented to PID 1; once it ends, only PID 1 can reap it.
    process.kill(init, 'SIGHUP')
    await s.waitForLine(/^handover: generation 2 ready/)
    await new Promise((r) => setTimeout(r, 1_500))
    expect(zombieChildren(init)).toEqual([])
    process.kill(init, 'SIGTERM')
    expect(await s.exited()).toEqual({ code: 0, signal: null })
  })
})
