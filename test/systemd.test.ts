import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { posixAddon } from '../src/backend/addon.js'
import { formatNotify, notify } from '../src/service/systemd.js'
import { freePort, pidAt } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'
import { NotifyReceiver, type Notification } from './helpers/notify.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-systemd-'))
const receivers: NotifyReceiver[] = []
afterEach(async () => {
  await killAllFixtures()
  for (const r of receivers.splice(0)) r.stop()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function receiver(address: string): Promise<NotifyReceiver> {
  const r = await NotifyReceiver.start(address)
  receivers.push(r)
  return r
}

/**
 * Everything the receiver will ever get from processes that have exited:
 * datagrams queue in order, so once a sentinel sent now has arrived, so has
 * everything sent before it.
 */
async function allMessages(r: NotifyReceiver, address: string): Promise<Notification[]> {
  const abstract = address.startsWith('@')
  posixAddon().sdNotify(abstract ? address.slice(1) : address, abstract, 'SENTINEL=1\n')
  await waitUntil(() => r.messages.some((m) => m.message === 'SENTINEL=1\n'), 10_000, 'the sentinel')
  return r.messages.filter((m) => m.message !== 'SENTINEL=1\n')
}

/** [sender pid, message] with MONOTONIC_USEC checked against the receiver's clock, then masked. */
function sequence(messages: Notification[]): Array<[number, string]> {
  return messages.map((m, i) => {
    const monotonic = /MONOTONIC_USEC=(\d+)\n/.exec(m.message)
    if (monotonic) {
      // Taken on CLOCK_MONOTONIC after the previous message arrived and before this one did.
      const usec = Number(monotonic[1])
      expect(usec).toBeGreaterThanOrEqual(messages[i - 1]?.receivedUsec ?? 0)
      expect(usec).toBeLessThanOrEqual(m.receivedUsec)
    }
    return [m.pid, m.message.replace(/MONOTONIC_USEC=\d+\n/, 'MONOTONIC_USEC=<now>\n')]
  })
}

describe('sd_notify', () => {
  it('sends the exact sequence across start, an upgrade, a failed upgrade, another upgrade and stop', async () => {
    const notifySocket = join(dir, 'notify.sock')
    const r = await receiver(notifySocket)
    const port = await freePort()
    const f = await Fixture.start({ NOTIFY_SOCKET: notifySocket, FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    const first = f.current

    const { newPid: second } = await f.handoff()
    expect(await pidAt({ port })).toBe(second)

    // The crashing child exits before ready(): the old process says READY=1 again, with why.
    await f.admin(second, '/next?FIXTURE_MODE=crash')
    const failed = await f.signalUpgrade()
    expect(failed.code).toBe('ERR_CHILD_EXITED')
    await f.admin(second, '/next?FIXTURE_MODE=ok')
    const { newPid: third } = await f.handoff()

    process.kill(third, 'SIGTERM')
    await f.waitFor((e) => e.pid === third && e.event === 'closed')
    await waitUntil(() => !isAlive(third), 10_000, 'the last generation to exit')

    expect(sequence(await allMessages(r, notifySocket))).toEqual([
      [first, `READY=1\nMAINPID=${first}\n`],
      [first, 'RELOADING=1\nMONOTONIC_USEC=<now>\n'],
      // The old process, still the main one, names its successor before the successor's READY=1.
      [first, `MAINPID=${second}\n`],
      [second, 'READY=1\n'],
      [second, 'RELOADING=1\nMONOTONIC_USEC=<now>\n'],
      [second, `READY=1\nSTATUS=upgrade failed: ERR_CHILD_EXITED: ${failed.message as string}\n`],
      [second, 'RELOADING=1\nMONOTONIC_USEC=<now>\n'],
      // The failure's STATUS= is cleared with the hand-off.
      [second, `MAINPID=${third}\nSTATUS=\n`],
      [third, 'READY=1\n'],
      [third, 'STOPPING=1\n'],
    ])
  })

  it('probation: a child that dies during it never becomes the main process; a healthy one does only after it', async () => {
    const notifySocket = join(dir, 'notify-probation.sock')
    const r = await receiver(notifySocket)
    const port = await freePort()
    const f = await Fixture.start({ NOTIFY_SOCKET: notifySocket, FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_PROBATION: '1000' })
    const first = f.current
    await f.admin(first, '/next?FIXTURE_EXIT_AFTER_READY=100')
    const failed = await f.admin(first, '/upgrade')
    expect(failed).toMatchObject({ ok: false, code: 'ERR_CHILD_EXITED' })
    await f.admin(first, '/next?FIXTURE_EXIT_AFTER_READY=')
    // Not f.handoff(): the dead child's 'ready' made it the fixture's current pid.
    const second = (await f.admin(first, '/upgrade')).pid as number
    await f.waitFor((e) => e.pid === first && e.event === 'closed')
    await r.waitForCount(6)
    expect(sequence(await allMessages(r, notifySocket))).toEqual([
      [first, `READY=1\nMAINPID=${first}\n`],
      [first, 'RELOADING=1\nMONOTONIC_USEC=<now>\n'],
      // No MAINPID= for the child that died in its probation, and no READY=1 from it.
      [first, `READY=1\nSTATUS=upgrade failed: ERR_CHILD_EXITED: ${failed.message as string}\n`],
      [first, 'RELOADING=1\nMONOTONIC_USEC=<now>\n'],
      [first, `MAINPID=${second}\nSTATUS=\n`],
      [second, 'READY=1\n'],
    ])
  })

  it('an abstract @name socket; notify() from the app; NOTIFY_SOCKET reaches the next generation but no other child', async () => {
    const notifySocket = `@handover-test-${process.pid}-${Date.now()}`
    const r = await receiver(notifySocket)
    const port = await freePort()
    const f = await Fixture.start({ NOTIFY_SOCKET: notifySocket, FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    const first = f.current

    expect(await f.admin(first, '/notify?STATUS=warming+caches&WATCHDOG=1')).toEqual({ ok: true, sent: true })
    const childEnv = async (pid: number): Promise<string[]> =>
      String((await f.admin(pid, '/spawn')).stdout).split('\n---\n')[1].split('\n').filter((l) => /^(NOTIFY_SOCKET|WATCHDOG_PID)=/.test(l))
    expect(await childEnv(first)).toEqual([])

    const { newPid: second } = await f.handoff()
    expect(await f.admin(second, '/notify?STATUS=serving')).toEqual({ ok: true, sent: true })
    expect(await childEnv(second)).toEqual([])

    expect(sequence(await allMessages(r, notifySocket))).toEqual([
      [first, `READY=1\nMAINPID=${first}\n`],
      [first, 'STATUS=warming caches\nWATCHDOG=1\n'],
      [first, 'RELOADING=1\nMONOTONIC_USEC=<now>\n'],
      [first, `MAINPID=${second}\n`],
      [second, 'READY=1\n'],
      [second, 'STATUS=serving\n'],
    ])
  })

  it('notify() refuses fields that could forge another assignment, with ERR_INVALID_ARGUMENT', async () => {
    const notifySocket = join(dir, 'fields.sock')
    const r = await receiver(notifySocket)
    const f = await Fixture.start({ NOTIFY_SOCKET: notifySocket })
    for (const query of ['STATUS=a%0AREADY%3D1', 'STATUS=a%00b', 'status=lower', 'X-Y=1', '']) {
      expect(await f.admin(f.current, `/notify?${query}`), query).toMatchObject({ ok: false, code: 'ERR_INVALID_ARGUMENT' })
    }
    process.kill(f.current, 'SIGTERM')
    await f.waitFor((e) => e.event === 'closed')
    // Nothing but the Upgrader's own messages got through.
    expect((await allMessages(r, notifySocket)).map((m) => m.message)).toEqual([`READY=1\nMAINPID=${f.current}\n`, 'STOPPING=1\n'])
  })

  it('without NOTIFY_SOCKET notify() sends nothing and says so; a manager that is gone is a warning, not a failed ready()', async () => {
    const plain = await Fixture.start({})
    expect(await plain.admin(plain.current, '/notify?STATUS=x')).toEqual({ ok: true, sent: false })

    const missing = join(dir, 'nobody-listens.sock')
    const f = await Fixture.start({ NOTIFY_SOCKET: missing })
    // ready() went through; its READY=1 could not be sent.
    await waitUntil(() => /HandoverWarning: sd_notify READY,MAINPID failed: sendto ENOENT/.test(f.stderr.join('\n')), 10_000, 'the warning')
    expect(await f.admin(f.current, '/notify?STATUS=x')).toMatchObject({ ok: false, code: 'ENOENT' })
    const { newPid } = await f.handoff()
    expect(f.event(newPid, 'ready')).toBeDefined()
  })

  it('validates fields in process', () => {
    expect(formatNotify({ READY: 1, MONOTONIC_USEC: 12345678901234567890n, STATUS: 'x y' })).toBe('READY=1\nMONOTONIC_USEC=12345678901234567890\nSTATUS=x y\n')
    for (const bad of [{}, null, [], { READY: -1 }, { READY: 1.5 }, { READY: true }, { STATUS: 'a\nb' }, { '': 'x' }, { STATUS: 'x'.repeat(5000) }]) {
      expect(() => formatNotify(bad as never), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    }
    // This test process has no NOTIFY_SOCKET: nothing is sent, bad fields still throw.
    expect(notify({ WATCHDOG: 1 })).toBe(false)
    expect(() => notify({ WATCHDOG: 'a\n' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })
})
