// Under `wine node.exe`: hand-offs between real Windows processes, each
// triggered the Windows way, through the serving generation's admin route
// (there is no SIGHUP to send).
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { freePort, get, pidAt } from '../../helpers/clients.mjs'
import { Fixture, killAllFixtures } from '../../helpers/fixture.mjs'

const dir = mkdtempSync(join(tmpdir(), 'handover-win-'))
afterEach(killAllFixtures)
after(() => rmSync(dir, { recursive: true, force: true }))

const hasIPv6 = await new Promise((resolve) => {
  const s = net.createServer()
  s.once('error', () => resolve(false))
  s.listen(0, '::1', () => s.close(() => resolve(true)))
})

/** Two hand-offs: the new pid answers, the old one logged exiting and closed, and is gone. */
async function twoHandoffs(f, answer) {
  let serving = f.current
  assert.equal(await answer(), serving)
  for (let i = 0; i < 2; i++) {
    const { oldPid, newPid } = await f.handoff()
    assert.equal(oldPid, serving)
    assert.notEqual(newPid, oldPid)
    assert.equal(f.event(newPid, 'listening').inherited, true)
    assert.equal(f.event(newPid, 'started').hasParent, true)
    assert.ok(f.event(oldPid, 'exiting'))
    assert.equal(await f.running(oldPid, newPid), false)
    assert.equal(await answer(), newPid)
    serving = newPid
  }
}

describe('hand-off on Windows', () => {
  it('tcp4', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    await twoHandoffs(f, () => pidAt({ port }))
  })

  it('tcp (the dual-stack wildcard)', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp', FIXTURE_ADDRESS: `:${port}` })
    await twoHandoffs(f, () => pidAt({ port }))
  })

  it('tcp6', { skip: !hasIPv6 && 'this host has no IPv6 loopback' }, async () => {
    const port = await freePort('::1')
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp6', FIXTURE_ADDRESS: `[::1]:${port}` })
    await twoHandoffs(f, () => pidAt({ host: '::1', port }))
  })

  it('a parent on tcp4 127.0.0.1 hands its socket to a child asking for tcp localhost', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    await f.admin(f.current, `/next?FIXTURE_NETWORK=tcp&FIXTURE_ADDRESS=localhost:${port}`)
    const { newPid } = await f.handoff()
    assert.equal(f.event(newPid, 'listening').inherited, true)
    assert.equal(await pidAt({ port }), newPid)
  })

  it('the pid file follows the serving generation', async () => {
    const port = await freePort()
    const pidFile = join(dir, 'app.pid')
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_PID_FILE: pidFile })
    assert.equal(readFileSync(pidFile, 'utf8'), `${f.current}\n`)
    const { newPid } = await f.handoff()
    assert.equal(readFileSync(pidFile, 'utf8'), `${newPid}\n`)
  })

  it('a slow request started before the hand-off finishes on the old process', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    const first = f.current
    const slow = get({ port }, '/slow?ms=1500')
    await new Promise((resolve) => setTimeout(resolve, 300))
    const { newPid } = await f.handoff()
    assert.equal((await slow).body, String(first))
    assert.equal(await pidAt({ port }), newPid)
  })
})
