// Under `wine node.exe`: failed upgrades leave the old process serving, and
// no new process outlives the failure. Error codes are the Linux ones.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { freePort, pidAt } from '../../helpers/clients.mjs'
import { Fixture, killAllFixtures } from '../../helpers/fixture.mjs'

const dir = mkdtempSync(join(tmpdir(), 'handover-win-'))
afterEach(killAllFixtures)
after(() => rmSync(dir, { recursive: true, force: true }))

async function serving(env = {}) {
  const port = await freePort()
  const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, ...env })
  return { f, port, first: f.current }
}

describe('a failed upgrade on Windows', () => {
  it('a child that crashes during init → ERR_CHILD_EXITED with its exit code; pid file restored; the next upgrade succeeds', async () => {
    const pidFile = join(dir, 'crash.pid')
    const { f, port, first } = await serving({ FIXTURE_PID_FILE: pidFile })
    await f.admin(first, '/next?FIXTURE_MODE=crash')
    const reply = await f.upgrade()
    assert.equal(reply.ok, false)
    assert.equal(reply.code, 'ERR_CHILD_EXITED')
    assert.equal(reply.exitCode, 3)
    assert.equal(await pidAt({ port }), first)
    assert.equal(readFileSync(pidFile, 'utf8'), `${first}\n`)
    await f.admin(first, '/next?FIXTURE_MODE=ok')
    const { newPid } = await f.handoff()
    assert.equal(await pidAt({ port }), newPid)
  })

  it('a child that never becomes ready → ERR_UPGRADE_TIMEOUT, and the child is gone', async () => {
    const { f, port, first } = await serving({ FIXTURE_UPGRADE_TIMEOUT: '3000' })
    await f.admin(first, '/next?FIXTURE_MODE=hang')
    const reply = await f.upgrade()
    assert.equal(reply.code, 'ERR_UPGRADE_TIMEOUT')
    assert.equal(typeof reply.message, 'string')
    const hung = f.events.find((e) => e.event === 'hanging')
    assert.ok(hung, 'the child started and hung')
    assert.equal(await f.running(hung.pid), false)
    assert.equal(await pidAt({ port }), first)
  })

  it("upgrade()'s signal aborts a starting child → ERR_ABORTED; the child is gone", async () => {
    const { f, port, first } = await serving()
    await f.admin(first, '/next?FIXTURE_MODE=hang')
    const reply = await f.upgrade('?abortAfter=1500')
    assert.equal(reply.code, 'ERR_ABORTED')
    for (const pid of [...f.pids].filter((p) => p !== first)) assert.equal(await f.running(pid), false)
    assert.equal(await pidAt({ port }), first)
  })

  it('a concurrent upgrade() → ERR_UPGRADE_IN_PROGRESS', async () => {
    const { f, first } = await serving({ FIXTURE_UPGRADE_TIMEOUT: '3000' })
    await f.admin(first, '/next?FIXTURE_MODE=hang')
    const [a, b] = await Promise.all([f.upgrade(), new Promise((r) => setTimeout(r, 300)).then(() => f.upgrade())])
    assert.equal(a.code, 'ERR_UPGRADE_TIMEOUT')
    assert.equal(b.code, 'ERR_UPGRADE_IN_PROGRESS')
  })

  it('a command that cannot start → ERR_SPAWN_FAILED, still serving', async () => {
    const { f, port, first } = await serving({ FIXTURE_COMMAND: 'C:\\no\\such\\node.exe' })
    const reply = await f.upgrade()
    assert.equal(reply.code, 'ERR_SPAWN_FAILED')
    assert.equal(await pidAt({ port }), first)
  })

  it('stop() during an upgrade kills the child; later upgrades → ERR_STOPPED', async () => {
    const { f, first } = await serving()
    await f.admin(first, '/next?FIXTURE_MODE=hang')
    const pending = f.upgrade()
    await f.waitFor((e) => e.event === 'hanging')
    await f.admin(first, '/stop')
    assert.equal((await pending).code, 'ERR_STOPPED')
    const hung = f.events.find((e) => e.event === 'hanging')
    assert.equal(await f.running(hung.pid), false)
  })
})
