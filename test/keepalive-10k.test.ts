// Issue 18, part 1: 10,000 idle keep-alive connections at an upgrade, none
// lost. Run in the API mode (test/fixtures/http-server.mjs), where it is
// cheapest: each connection moves once, old process to new, over one
// channel; under `handover run` each one goes through the supervisor (two
// sends, two answers, a third process holding the fd meanwhile), and the
// preload adds its own start-up to each generation, while the drain() that
// paces the hand-off is the same code in all three. The machine's 2 cores
// are shared, so the client is one process of raw sockets
// (test/fixtures/idle-clients.mjs), not 10,000 agents.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { exitTimes } from './helpers/deployments.js'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { OutputLines } from './helpers/output.js'

const SCRIPT = fileURLToPath(new URL('./fixtures/http-server.mjs', import.meta.url))
const CLIENT = fileURLToPath(new URL('./fixtures/idle-clients.mjs', import.meta.url))
const CONNECTIONS = 10_000
/** Sent during the hand-off, on as many of the idle connections, at random moments. */
const DURING = 2_000
/** Each process holds one fd per connection (the old one a few hundred more in flight): room for them and Node's own. */
const NOFILE = 30_000
const NOFILE_AT_LEAST = CONNECTIONS + 2_000

let client: ChildProcess | undefined
afterEach(async () => {
  client?.kill('SIGKILL')
  client = undefined
  await killAllFixtures()
})

/**
 * The fd limit `prlimit` gives each process: NOFILE where it may raise the
 * hard limit (root with CAP_SYS_RESOURCE), else the hard limit if that is
 * enough; undefined where neither is.
 */
function fdLimit(): number | undefined {
  try {
    execFileSync('prlimit', [`--nofile=${NOFILE}:${NOFILE}`, '--', 'true'], { stdio: 'ignore' })
    return NOFILE
  } catch {
    const hard = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim())
    return hard >= NOFILE_AT_LEAST ? hard : undefined
  }
}

interface Tally {
  event: string
  ok: number
  errors: Record<string, number>
  byPid: Record<string, number>
  lost: number
  open: number
}

/** The client: one JSON command in, one JSON answer out. */
function startClient(nofile: number): { ask: (command: object, timeoutMs?: number) => Promise<Tally> } {
  const child = spawn('prlimit', [`--nofile=${nofile}:${nofile}`, '--', process.execPath, CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] })
  client = child
  const output = new OutputLines(child)
  let from = 0
  return {
    async ask(command, timeoutMs = 120_000) {
      child.stdin?.write(`${JSON.stringify(command)}\n`)
      const match = await output.waitFor(/^\{"event".*\}$/, timeoutMs, from, () => (output.closed ? `the client exited ${child.exitCode}` : undefined))
      from = output.lines.indexOf(match.input as string, from) + 1
      return JSON.parse(match[0]) as Tally
    },
  }
}

describe(`${CONNECTIONS} idle keep-alive connections at an upgrade (the API)`, () => {
  it(`none lost: ${DURING} send a request during the hand-off, then every one is answered by the new generation on the same connection`, async (ctx) => {
    const nofile = fdLimit()
    if (nofile === undefined) {
      console.warn(`SKIPPED: ${CONNECTIONS} connections need ${NOFILE_AT_LEAST} fds per process: run as root, or raise the hard limit (ulimit -Hn)`)
      return ctx.skip()
    }
    const port = await freePort()
    const f = await Fixture.start(
      // The pool is opened before the upgrade: Node's 5 s keepAliveTimeout would close the first connections meanwhile.
      { FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_KEEP_ALIVE_TIMEOUT: '300000', FIXTURE_DRAIN_TIMEOUT: '120000', FIXTURE_COUNT_LIST_ENTRIES: '1' },
      { script: SCRIPT, launcher: ['prlimit', `--nofile=${nofile}:${nofile}`, '--'] },
    )
    const old = f.current
    const c = startClient(nofile)
    const t0 = Date.now()
    const opened = await c.ask({ cmd: 'open', port, count: CONNECTIONS })
    const openMs = Date.now() - t0
    expect(opened).toMatchObject({ ok: CONNECTIONS, errors: {}, byPid: { [old]: CONNECTIONS }, lost: 0, open: CONNECTIONS })

    const from = f.events.length
    process.kill(old, 'SIGHUP')
    // Over the new generation's start, the hand-off and the drain.
    const during = c.ask({ cmd: 'spread', count: DURING, ms: 4_000 })
    const upgraded = await f.waitFor((e) => e.pid === old && (e.event === 'upgraded' || e.event === 'upgrade-failed'), 60_000, from)
    expect(upgraded.event).toBe('upgraded')
    const newPid = upgraded.child as number
    await f.waitFor((e) => e.pid === old && e.event === 'draining', 60_000, from)
    const handedOff = Date.now()
    const drainedEvent = f.waitFor((e) => e.pid === old && e.event === 'drained', 120_000, from).then((e): Record<string, unknown> => ({ ...e, ms: Date.now() - handedOff }))
    const [exitMs] = await exitTimes([old], handedOff, 120_000)
    const drained = await drainedEvent
    const sent = await during

    const t1 = Date.now()
    const after = await c.ask({ cmd: 'all' })
    const afterMs = Date.now() - t1
    console.log(`keepalive-10k: ${JSON.stringify({ openMs, drained, exitMs, during: sent, afterMs, after: { ok: after.ok, errors: after.errors, byPid: after.byPid, lost: after.lost } })}`)

    expect(drained).toMatchObject({ graceful: CONNECTIONS, forced: 0, handedOver: CONNECTIONS })
    // The drain asks Node's connection list whether a connection is between
    // requests once per sweep and once per response it hands over. Asked of
    // every connection (idle()), that was 8 million entries here and seconds
    // of the old process's loop; asked of the ones with a request under way
    // (active()), a few: less than one walk of the whole list in all.
    expect(drained.listEntries as number).toBeLessThan(CONNECTIONS)
    expect(sent).toMatchObject({ ok: DURING, errors: {}, lost: 0 })
    // Every connection still open, and its next request is the new generation's.
    expect(after).toMatchObject({ ok: CONNECTIONS, errors: {}, byPid: { [newPid]: CONNECTIONS }, lost: 0, open: CONNECTIONS })
  }, 300_000)
})
