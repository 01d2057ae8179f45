// TLS sessions resume across generations (issue 18): the old generation's
// session-ticket keys reach the new one in the hello, so a client that
// resumes with a ticket of the old generation gets an abbreviated handshake
// from the new one. Real processes and Node's own TLS client: each visit is a
// fresh connection with the session ticket of the previous one, and asks
// `isSessionReused()`. Without the keys (an older release, which sends none)
// the same visit is a full handshake: the first cross-release case shows it.
import { readFileSync } from 'node:fs'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'
import { isAlive, waitUntil } from './helpers/processes.mjs'
import { builtRelease } from './helpers/release.js'
import { killSupervised, Supervised } from './helpers/supervisor.js'
import { TLS_DIR, tlsVisit, type TlsKind, type TlsVisit } from './helpers/tls-clients.js'

afterEach(async () => {
  await killAllFixtures()
  killPreloadApps()
  await killSupervised()
})

const UPGRADES = 3

/** The API fixture (test/fixtures/server.mjs) serving TLS of `kind` on a port of its own. */
async function apiServer(kind: TlsKind, env: Record<string, string> = {}): Promise<{ f: Fixture; port: number }> {
  const port = await freePort()
  const f = await Fixture.start({ FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_TLS: kind, ...env })
  return { f, port }
}

describe('the API: a session resumes on the new generation after each of 3 upgrades', () => {
  for (const kind of ['https', 'http2', 'tls'] as const) {
    const what = { https: 'https.createServer', http2: 'http2.createSecureServer', tls: 'tls.createServer' }[kind]
    it(`${what}`, async () => {
      const { f, port } = await apiServer(kind)
      let visit = await tlsVisit(kind, port)
      expect(visit).toMatchObject({ pid: f.current, reused: false, protocol: 'TLSv1.3' })
      for (let i = 0; i < UPGRADES; i++) {
        const { newPid } = await f.handoff()
        visit = await tlsVisit(kind, port, visit.session)
        expect(visit, `upgrade ${i + 1}`).toMatchObject({ pid: newPid, reused: true })
      }
    })
  }

  it('TLS 1.2 tickets too', async () => {
    const { f, port } = await apiServer('tls')
    const first = await tlsVisit('tls', port, undefined, 10_000, 'TLSv1.2')
    expect(first).toMatchObject({ pid: f.current, reused: false, protocol: 'TLSv1.2' })
    const { newPid } = await f.handoff()
    expect(await tlsVisit('tls', port, first.session, 10_000, 'TLSv1.2')).toMatchObject({ pid: newPid, reused: true, protocol: 'TLSv1.2' })
  })

  it('the keys move in memory: the same keys in the new generation, in neither its environment nor its command line', async () => {
    const { f } = await apiServer('https')
    const before = (await f.admin(f.current, '/ticket-keys')).keys as string
    expect(Buffer.from(before, 'base64')).toHaveLength(48)
    const { newPid } = await f.handoff()
    expect((await f.admin(newPid, '/ticket-keys')).keys).toBe(before)
    const raw = Buffer.from(before, 'base64')
    for (const file of ['environ', 'cmdline']) {
      const text = readFileSync(`/proc/${newPid}/${file}`)
      for (const form of [before, raw.toString('hex'), raw.toString('base64url')]) expect(text.includes(form), `${file} holds the keys`).toBe(false)
      expect(text.includes(raw), `${file} holds the raw keys`).toBe(false)
    }
  })

  it("an app's own ticketKeys option is its own: never overridden, never passed on", async () => {
    const mine = Buffer.alloc(48, 1).toString('base64')
    const rotated = Buffer.alloc(48, 2).toString('base64')
    const { f, port } = await apiServer('https', { FIXTURE_TICKET_KEYS: mine })
    const first = await tlsVisit('https', port)
    // The same keys of its own in the next generation: its sessions resume.
    const { newPid: second } = await f.handoff()
    expect(await tlsVisit('https', port, first.session)).toMatchObject({ pid: second, reused: true })
    expect((await f.admin(second, '/ticket-keys')).keys).toBe(mine)
    // Keys of its own rotated at this deploy: handover does not put the old ones back.
    await f.admin(second, `/next?FIXTURE_TICKET_KEYS=${encodeURIComponent(rotated)}`)
    const before = await tlsVisit('https', port)
    const { newPid: third } = await f.handoff()
    expect((await f.admin(third, '/ticket-keys')).keys).toBe(rotated)
    expect(await tlsVisit('https', port, before.session)).toMatchObject({ pid: third, reused: false })
  })
})

describe('the preload: https under handover/register', () => {
  it('a session resumes on the new generation after each of 3 SIGHUP upgrades', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('https.mjs', { PORT: String(port), TLS_DIR })
    let visit = await tlsVisit('https', port)
    expect(visit).toMatchObject({ pid: app.current, reused: false })
    for (let i = 0; i < UPGRADES; i++) {
      const { newPid } = await app.upgrade()
      visit = await tlsVisit('https', port, visit.session)
      expect(visit, `upgrade ${i + 1}`).toMatchObject({ pid: newPid, reused: true })
    }
  })
})

describe('handover run -w 2: one key set per socket, from the supervisor, for every worker of every generation', () => {
  /** Visits with the newest session each time until both `workers` answered (bounded); every visit must resume. */
  async function visitBoth(port: number, workers: number[], start: TlsVisit): Promise<TlsVisit> {
    let visit = start
    const seen = new Set<number>()
    for (let i = 0; i < 200 && seen.size < workers.length; i++) {
      // Four at once with one ticket: the shared accept queue then spreads them over both workers.
      const batch = await Promise.all([0, 1, 2, 3].map(() => tlsVisit('https', port, visit.session)))
      for (const v of batch) {
        expect(workers, `pid ${v.pid} is not a worker of the serving generation`).toContain(v.pid)
        expect(v.reused, `a session not resumed by worker ${v.pid}`).toBe(true)
        seen.add(v.pid)
      }
      // Next time, a ticket from whichever worker answered last: sessions cross between the workers.
      visit = batch[batch.length - 1]
    }
    expect([...seen].sort()).toEqual([...workers].sort())
    return visit
  }

  it('sessions resume across the two workers, and on the new generation after each of 3 upgrades', async () => {
    const port = await freePort()
    const s = await Supervised.start(['-w', '2'], 'https.mjs', { PORT: String(port), TLS_DIR })
    await waitUntil(() => s.workerPids().length === 2, 10_000, 'two workers listening')
    let workers = s.workerPids()
    const first = await tlsVisit('https', port)
    expect(workers).toContain(first.pid)
    // Generation 1's workers asked the supervisor for the socket: the keys came with it.
    let visit = await visitBoth(port, workers, first)
    for (let i = 0; i < UPGRADES; i++) {
      const old = workers
      const from = s.lines.length
      process.kill(s.pid, 'SIGHUP')
      await s.waitForLine(new RegExp(`^handover: generation ${i + 2} ready \\(2 workers\\)`), 30_000, from)
      await waitUntil(() => old.every((pid) => !isAlive(pid)), 20_000, 'the old workers to exit')
      workers = s.workerPids().filter((pid) => !old.includes(pid) && isAlive(pid))
      expect(workers, `generation ${i + 2}`).toHaveLength(2)
      // Generation 2 on got the socket and its keys in the hello.
      visit = await visitBoth(port, workers, visit)
    }
  }, 120_000)
})

describe('an old release (the first, 8005a65) and this one', () => {
  let oldModule = ''
  beforeAll(() => {
    oldModule = builtRelease('8005a65')
  }, 900_000)

  it('hand over both ways with https: the old release sends no keys (a full handshake), this one does (resumed)', async () => {
    const { f, port } = await apiServer('https', { HANDOVER_MODULE: oldModule })
    const first = await tlsVisit('https', port)
    await f.admin(f.current, '/next?HANDOVER_MODULE=')
    // The defect this work fixes: without the keys the new generation cannot decrypt the ticket.
    const { newPid: current } = await f.handoff()
    const afterOld = await tlsVisit('https', port, first.session)
    expect(afterOld).toMatchObject({ pid: current, reused: false })
    const { newPid: next } = await f.handoff()
    expect(await tlsVisit('https', port, afterOld.session)).toMatchObject({ pid: next, reused: true })
    // The rollback: a hello with ticketKeys is one the old release reads (it ignores the field).
    await f.admin(next, `/next?HANDOVER_MODULE=${encodeURIComponent(oldModule)}`)
    const { newPid: rolledBack } = await f.handoff()
    expect(await tlsVisit('https', port)).toMatchObject({ pid: rolledBack, reused: false })
  })
})
