// The arm64 lane (scripts/test-arm64.sh): run by this machine's node, the
// processes under test by an arm64 node under qemu-user, in a staged package
// whose only addon is prebuilds/. ARM64_NODE is a wrapper that execs
// `qemu-aarch64 -L /usr/aarch64-linux-gnu <arm64 node>`; it is also the
// fixture's FIXTURE_COMMAND, since without binfmt_misc an arm64 binary cannot
// be exec'd directly, and with it upgrade() starts each generation.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { freePort, pidAt } from '../helpers/clients.mjs'
import { Fixture, killAllFixtures } from '../helpers/fixture.mjs'

const NODE = process.env.ARM64_NODE
assert.ok(NODE, 'ARM64_NODE must name the arm64 node wrapper')
const STAGE = fileURLToPath(new URL('../..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'handover-arm64-'))
afterEach(killAllFixtures)
after(() => rmSync(dir, { recursive: true, force: true }))

// Runs in the arm64 node: which addon loads, and how it reports errors.
const PROBE = `
const fs = require('node:fs')
const net = require('node:net')
const gyp = require('node-gyp-build')
const addon = gyp('.')
const caught = (fn) => { try { fn(); return null } catch (e) { return { name: e.name, message: e.message, code: e.code, errno: e.errno, syscall: e.syscall } } }
;(async () => {
  const { Upgrader } = await import('./dist/index.js')
  const upg = await Upgrader.create()
  const tcp = upg.listen('tcp4', '127.0.0.1:0')
  const file = ${JSON.stringify(join(dir, 'file'))}
  fs.writeFileSync(file, '')
  const stale = ${JSON.stringify(join(dir, 'stale.sock'))}
  const server = net.createServer().listen(stale)
  await new Promise((resolve) => server.on('listening', resolve))
  server._handle.close()  // leaves the file: a socket nothing listens on
  const replaced = upg.listen('unix', stale)
  console.log(JSON.stringify({
    arch: process.arch,
    version: process.version,
    path: gyp.path('.'),
    mapped: [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.endsWith('.node')).map((l) => l.slice(l.indexOf('/'))))],
    exports: Object.keys(addon).sort(),
    typeError: caught(() => addon.bindInet('tcp')),
    inUse: caught(() => upg.listen('tcp4', tcp.address)),
    rawInUse: caught(() => addon.bindInet(1, 4, '127.0.0.1', tcp.port, false, 8)),
    fileInTheWay: caught(() => upg.listen('unix', file)),
    replaced: replaced.address,
  }))
  upg.stop()
  process.exit(0)
})()
`

describe(`arm64 (${process.env.ARM64_NODE_VERSION ?? 'node'} under qemu)`, () => {
  it('loads the linux-arm64 glibc prebuild, with the same exports and errors as on x64', async () => {
    const { stdout } = await promisify(execFile)(NODE, ['-e', PROBE], { cwd: STAGE, timeout: 60_000 })
    const r = JSON.parse(stdout)
    assert.equal(r.arch, 'arm64')
    const prebuild = join(STAGE, 'prebuilds', 'linux-arm64', 'handover.glibc.node')
    assert.equal(r.path, prebuild)
    assert.deepEqual(r.mapped, [prebuild])
    assert.deepEqual(r.exports, ['Channel', 'bindInet', 'bindUnix', 'duplicate', 'inspect', 'reapPid', 'requestSocket', 'sdNotify', 'sendSocket', 'setNonBlocking', 'socketPair'])
    assert.deepEqual(r.typeError, {
      name: 'TypeError',
      message: 'bindInet(kind, family, ip, port, v6only, backlog)',
      code: 'ERR_INVALID_ARG_TYPE',
    })
    assert.equal(r.inUse.code, 'EADDRINUSE')
    assert.deepEqual(r.rawInUse, { name: 'Error', message: 'listen failed', errno: 98, syscall: 'listen' })
    assert.equal(r.fileInTheWay.code, 'EEXIST')
    assert.equal(r.replaced, join(dir, 'stale.sock'))
  })

  it('tcp4: two hand-offs between arm64 processes', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_COMMAND: NODE }, { node: NODE, upgradeVia: 'admin' })
    let serving = f.current
    assert.equal(await pidAt({ port }), serving)
    for (let i = 0; i < 2; i++) {
      const { oldPid, newPid } = await f.handoff()
      assert.equal(oldPid, serving)
      assert.equal(f.event(newPid, 'listening').inherited, true)
      assert.equal(await pidAt({ port }), newPid)
      serving = newPid
    }
  })

  it('unix and udp4: a hand-off each', async () => {
    const path = join(dir, 'app.sock')
    const u = await Fixture.start({ FIXTURE_NETWORK: 'unix', FIXTURE_ADDRESS: path, FIXTURE_COMMAND: NODE }, { node: NODE, upgradeVia: 'admin' })
    assert.equal(await pidAt({ socketPath: path }), u.current)
    const { newPid } = await u.handoff()
    assert.equal(await pidAt({ socketPath: path }), newPid)

    const port = await freePort()
    const d = await Fixture.start({ FIXTURE_NETWORK: 'udp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_COMMAND: NODE }, { node: NODE, upgradeVia: 'admin' })
    const echo = async () => {
      const s = dgram.createSocket('udp4')
      const reply = new Promise((resolve) => s.once('message', (m) => resolve(String(m))))
      s.send('hi', port, '127.0.0.1')
      const text = await reply
      s.close()
      return Number(text.split(':')[0])
    }
    assert.equal(await echo(), d.current)
    const next = await d.handoff()
    assert.equal(await echo(), next.newPid)
  })
})
