// Under `wine node.exe`: what a broken or hostile parent passes is refused
// with ERR_BAD_INHERITANCE, including socket info that was duplicated for a
// different process (Wine then hands back a handle that is no socket at all,
// which is why imports are validated).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { closeSync, openSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../helpers/clients.mjs'
import { FIXTURE } from '../../helpers/fixture.mjs'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const addon = createRequire(import.meta.url)('node-gyp-build')(root)

const running = new Set()
afterEach(() => {
  for (const child of running) child.kill('SIGKILL')
  running.clear()
})

/**
 * Starts the fixture with a handover environment of the test's making;
 * resolves with its events and exit code once it exits, or is killed after
 * logging an event named in `killOn`.
 */
function runWithInheritance(env, stdio, talk, killOn = []) {
  const child = spawn(process.execPath, [FIXTURE], {
    env: { ...process.env, FIXTURE_MAX_LIFETIME: '20000', ...env },
    stdio,
  })
  running.add(child)
  const events = []
  let buffer = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    buffer += chunk
    for (let nl; (nl = buffer.indexOf('\n')) !== -1; buffer = buffer.slice(nl + 1)) {
      const event = JSON.parse(buffer.slice(0, nl))
      events.push(event)
      if (killOn.includes(event.event)) child.kill('SIGKILL')
    }
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  talk?.(child.stdio[3], child)
  return new Promise((resolve) => child.on('close', (exitCode) => resolve({ events, exitCode, stderr })))
}

const hello = (sockets, extra = {}) => `${JSON.stringify({ type: 'hello', version: 1, parentPid: process.pid, sockets, ...extra })}\n`

/** A listening socket of this process, made the way the library makes them. */
function listeningSocket(port) {
  return addon.bindTcp(4, '127.0.0.1', port, false, 16)
}

describe('a garbage inheritance gets ERR_BAD_INHERITANCE', () => {
  for (const value of ['nonsense', '-1', '2', '3; del C:\\', '']) {
    it(`HANDOVER_CONTROL=${JSON.stringify(value)}`, async () => {
      const { events, exitCode } = await runWithInheritance({ HANDOVER_CONTROL: value }, ['ignore', 'pipe', 'pipe'])
      assert.equal(events[0]?.event, 'create-failed', JSON.stringify(events))
      assert.equal(events[0].code, 'ERR_BAD_INHERITANCE')
      assert.equal(exitCode, 2)
    })
  }

  it('a control fd that is not open', async () => {
    const { events } = await runWithInheritance({ HANDOVER_CONTROL: '9' }, ['ignore', 'pipe', 'pipe'])
    assert.equal(events[0].code, 'ERR_BAD_INHERITANCE')
  })

  it('a control fd that is a file, not a pipe', async () => {
    const path = join(tmpdir(), `handover-control-${process.pid}.txt`)
    const fd = openSync(path, 'w')
    try {
      const { events } = await runWithInheritance({ HANDOVER_CONTROL: '3' }, ['ignore', 'pipe', 'pipe', fd])
      assert.equal(events[0].code, 'ERR_BAD_INHERITANCE')
      assert.match(events[0].message, /not a pipe/)
    } finally {
      closeSync(fd)
      rmSync(path, { force: true })
    }
  })

  for (const [what, text] of [
    ['not JSON', 'garbage\n'],
    ['the wrong message', '{"type":"ready","pid":1}\n'],
  ]) {
    it(`a control channel that says ${what}`, async () => {
      const { events } = await runWithInheritance({ HANDOVER_CONTROL: '3' }, ['ignore', 'pipe', 'pipe', 'pipe'], (c) => c.write(text))
      assert.equal(events[0].code, 'ERR_BAD_INHERITANCE')
    })
  }

  // Not garbage: a parent of another protocol range, refused with a reason (see the protocol tests on Linux).
  it('a control channel that says an unknown protocol version: ERR_INCOMPATIBLE', async () => {
    const { events } = await runWithInheritance({ HANDOVER_CONTROL: '3' }, ['ignore', 'pipe', 'pipe', 'pipe'], (c) => c.write(hello([], { version: 99 })))
    assert.equal(events[0].code, 'ERR_INCOMPATIBLE')
  })

  it('a control channel closed before hello', async () => {
    const { events } = await runWithInheritance({ HANDOVER_CONTROL: '3' }, ['ignore', 'pipe', 'pipe', 'pipe'], (c) => c.end())
    assert.equal(events[0].code, 'ERR_BAD_INHERITANCE')
    assert.match(events[0].message, /closed before the parent said hello/)
  })
})

describe('socket info in the hello', () => {
  /** The fixture asks for tcp4 127.0.0.1:port, and the hello describes that key with `entry`. */
  async function withEntry(port, entry) {
    const key = `tcp4 127.0.0.1:${port}`
    return runWithInheritance(
      { HANDOVER_CONTROL: '3', FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` },
      ['ignore', 'pipe', 'pipe', 'pipe'],
      (c, child) => {
        c.on('error', () => {})
        c.write(hello([{ key, network: 'tcp4', address: `127.0.0.1:${port}`, ...entry(child.pid) }]))
      },
      ['listening'],
    )
  }

  it('duplicated for this very child: adopted (the control for the cases below)', async () => {
    const port = await freePort()
    const socket = listeningSocket(port)
    try {
      const { events } = await withEntry(port, (pid) => ({ info: addon.duplicateFor(socket, pid).toString('base64'), pid }))
      const listening = events.find((e) => e.event === 'listening')
      assert.ok(listening, JSON.stringify(events))
      assert.equal(listening.inherited, true)
    } finally {
      addon.close(socket)
    }
  })

  for (const [what, claimed] of [
    ['and says so', () => process.pid],
    ['but claims it is for the child', (childPid) => childPid],
  ]) {
    it(`duplicated for another process, ${what} → ERR_BAD_INHERITANCE, and no handle of the child is touched`, async () => {
      const port = await freePort()
      const socket = listeningSocket(port)
      try {
        const { events, exitCode, stderr } = await withEntry(port, (pid) => ({
          info: addon.duplicateFor(socket, process.pid).toString('base64'),
          pid: claimed(pid),
        }))
        // The event arrives only if the failed import left the child's stdout alone.
        assert.equal(events[0]?.event, 'listen-failed', JSON.stringify({ events, exitCode, stderr }))
        assert.equal(events[0].code, 'ERR_BAD_INHERITANCE')
        assert.equal(exitCode, 4)
      } finally {
        addon.close(socket)
      }
    })
  }

  for (const [what, entry] of [
    ['garbage bytes', (pid) => ({ info: Buffer.alloc(628, 7).toString('base64'), pid })],
    ['a truncated record', (pid) => ({ info: Buffer.alloc(100).toString('base64'), pid })],
    ['a POSIX fd and no info', () => ({ fd: 4 })],
  ]) {
    it(`${what} → ERR_BAD_INHERITANCE`, async () => {
      const port = await freePort()
      const { events } = await withEntry(port, entry)
      assert.equal(events[0]?.event, 'listen-failed', JSON.stringify(events))
      assert.equal(events[0].code, 'ERR_BAD_INHERITANCE')
    })
  }
})
