import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { pidAt } from './helpers/clients.mjs'
import { settledFdCount } from './helpers/fds.js'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const dir = mkdtempSync(join(tmpdir(), 'handover-leaks-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const HANDOFFS = 20

/** What an unrelated `child_process.exec` of the app inherits. */
async function spawnedChildView(f: Fixture, pid: number): Promise<{ socketFds: string[]; handoverEnv: string[] }> {
  const reply = await f.admin(pid, '/spawn')
  expect(reply.ok).toBe(true)
  const [fds, env] = String(reply.stdout).split('\n---\n')
  const socketFds = fds.split('\n').filter((line) => / (\d+) -> socket:/.test(line) && !/ [012] -> /.test(line))
  // Make sure the listing is real: the child's own stdio is in it.
  expect(fds).toMatch(/ 1 -> /)
  const handoverEnv = env.split('\n').filter((line) => line.startsWith('HANDOVER'))
  return { socketFds, handoverEnv }
}

describe(`no leaks across ${HANDOFFS} consecutive hand-offs`, () => {
  it('flat fd count, clean children, no orphans, unix path kept then removed', async () => {
    const socketPath = join(dir, 'leaks.sock')
    const f = await Fixture.start({ FIXTURE_NETWORK: 'unix', FIXTURE_ADDRESS: socketPath })

    // The first generation has no parent; what it spawns must see no sockets either.
    const firstView = await spawnedChildView(f, f.current)
    expect(firstView).toEqual({ socketFds: [], handoverEnv: [] })

    const counts: number[] = []
    for (let i = 0; i < HANDOFFS; i++) {
      const { newPid } = await f.handoff()
      expect(await f.admin(newPid, '/wait-parent')).toEqual({ ok: true })
      counts.push(await settledFdCount(newPid))
      expect(await pidAt({ socketPath })).toBe(newPid)
      expect(existsSync(socketPath)).toBe(true)
    }
    // Every generation after a hand-off holds exactly as many fds as the first such one.
    expect(counts).toEqual(counts.map(() => counts[0]))
    expect(f.pids.size).toBe(HANDOFFS + 1)

    // A generation born of an upgrade spawns children that inherit no listener
    // and no handover variable.
    const lastView = await spawnedChildView(f, f.current)
    expect(lastView).toEqual({ socketFds: [], handoverEnv: [] })

    // Only the serving generation is alive; stop() ends it and removes the path.
    expect(f.alive()).toEqual([f.current])
    const last = f.current
    process.kill(last, 'SIGTERM')
    await f.waitFor((e) => e.pid === last && e.event === 'closed')
    await waitUntil(() => !isAlive(last), 10_000, 'the last generation to exit')
    expect(f.alive()).toEqual([])
    expect(existsSync(socketPath)).toBe(false)
  })

  it('a parent that spawns an unrelated child during its lifetime leaks nothing into it, whether or not it handed over', async () => {
    const socketPath = join(dir, 'linger.sock')
    const f = await Fixture.start({ FIXTURE_NETWORK: 'unix', FIXTURE_ADDRESS: socketPath, FIXTURE_LINGER: '1' })
    const first = f.current
    const { child } = await f.signalUpgrade()
    await f.waitFor((e) => e.pid === first && e.event === 'lingering')
    // Parent and child both alive, the control channel open between them.
    expect(await spawnedChildView(f, first)).toEqual({ socketFds: [], handoverEnv: [] })
    expect(await spawnedChildView(f, child as number)).toEqual({ socketFds: [], handoverEnv: [] })
  })
})
