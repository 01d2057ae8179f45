import { afterEach, describe, expect, it } from 'vitest'
import { freePort, pidAt } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

afterEach(killAllFixtures)

/** A fixture that leads a process group of its own, as a shell's foreground job does. */
async function start(): Promise<{ f: Fixture; port: number; group: number }> {
  const port = await freePort()
  const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` }, { detached: true })
  return { f, port, group: f.process.pid as number }
}

describe('signals to the process group', () => {
  it('a SIGHUP to the group while the new generation starts (before its own handler) does not kill it', async () => {
    const { f, port, group } = await start()
    const parent = f.current
    // The next generation installs its SIGHUP handler 1.5 s after create().
    await f.admin(parent, '/next?FIXTURE_HANDLER_DELAY=1500')
    const from = f.events.length
    const upgrading = f.admin(parent, '/upgrade')
    const starting = await f.waitFor((e) => e.event === 'delaying-handlers', 15_000, from)
    process.kill(-group, 'SIGHUP')
    // What `pkill -HUP -f server.mjs` does: it matches the new process's identical command line.
    process.kill(starting.pid, 'SIGHUP')
    // The old process took it as an upgrade request: one is already running.
    await f.waitFor((e) => e.pid === parent && e.event === 'upgrade-failed', 15_000, from)
    expect(f.events.slice(from).find((e) => e.pid === parent && e.event === 'upgrade-failed')).toMatchObject({ code: 'ERR_UPGRADE_IN_PROGRESS' })
    expect(await upgrading).toMatchObject({ ok: true, pid: starting.pid })
    expect(await pidAt({ port })).toBe(starting.pid)
    await waitUntil(() => f.stderr.some((l) => l.includes('SIGHUP ignored: this new generation is still starting')), 5_000, 'the warning')
  })

  it('Ctrl-C (SIGINT to the group) still reaches every generation: during an upgrade, and after a hand-off', async () => {
    const { f, group } = await start()
    const parent = f.current
    await f.admin(parent, '/next?FIXTURE_HANDLER_DELAY=3000')
    const from = f.events.length
    const upgrading = f.admin(parent, '/upgrade')
    const starting = await f.waitFor((e) => e.event === 'delaying-handlers', 15_000, from)
    process.kill(-group, 'SIGINT')
    // The old process stops (and so kills the starting one); the starting one had no handler yet anyway.
    expect(await upgrading).toMatchObject({ ok: false })
    await waitUntil(() => !isAlive(parent) && !isAlive(starting.pid), 10_000, 'both processes to end')

    // After a completed hand-off the first process has exited; the group still names the new one.
    const second = await start()
    const { newPid } = await second.f.handoff()
    process.kill(-second.group, 'SIGINT')
    await second.f.waitFor((e) => e.pid === newPid && e.event === 'stop-signal')
    await waitUntil(() => !isAlive(newPid), 10_000, 'the new generation to stop')
  })
})
