// Issue 18, part 1: a connection handed over keeps its server's keep-alive
// behaviour in the new process. Node arms the keep-alive timeout when a
// response finishes; a connection adopted between requests has had no
// response in the new process, so adoptConnection() arms it, and disarms it
// at the next request, as Node does.
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { waitUntil } from './helpers/processes.mjs'
import { RawConnection } from './helpers/raw-http.js'

afterEach(killAllFixtures)

const SCRIPT = fileURLToPath(new URL('./fixtures/http-server.mjs', import.meta.url))
/** The server's keepAliveTimeout; Node closes an idle connection after it plus its 1 s buffer. */
const KEEP_ALIVE = 1_000

async function adoptedConnections(count: number): Promise<{ f: Fixture; connections: RawConnection[]; newPid: number }> {
  const port = await freePort()
  const f = await Fixture.start({ FIXTURE_ADDRESS: `127.0.0.1:${port}`, FIXTURE_KEEP_ALIVE_TIMEOUT: String(KEEP_ALIVE) }, { script: SCRIPT })
  const connections = await Promise.all(Array.from({ length: count }, () => RawConnection.open(port)))
  for (const c of connections) expect(await c.get()).toBe(f.current)
  const { oldPid, newPid } = await f.handoff()
  expect(f.event(oldPid, 'drained')).toMatchObject({ handedOver: count, forced: 0 })
  return { f, connections, newPid }
}

describe('a connection handed over, in the new process', () => {
  it('left idle, is closed at the keep-alive timeout, silently, as in the old process (not kept open until headersTimeout takes it for a fresh one)', async () => {
    const { connections } = await adoptedConnections(5)
    // KEEP_ALIVE + 1 s from the adoption, give or take a sweep; bounded well below Node's 60 s headersTimeout.
    await waitUntil(() => connections.every((c) => c.closed), KEEP_ALIVE + 1_000 + 4_000, 'the idle connections to be closed')
    expect(connections.map((c) => c.unread)).toEqual(connections.map(() => ''))
  }, 30_000)

  it('a request that outlasts the keep-alive timeout is answered; the connection is kept alive after it', async () => {
    const { connections: [c], newPid } = await adoptedConnections(1)
    expect(await c.get(`/slow?ms=${KEEP_ALIVE + 2_000}`)).toBe(newPid)
    expect(await c.get()).toBe(newPid)
    expect(c.closed).toBe(false)
  }, 30_000)
})
