// Run by Linux node (scripts/test-windows.sh): a Linux client hammers a
// server that runs under `wine node.exe`, through 5 upgrades, each asked for
// through the serving generation's admin route.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { freePort, loadLoop, since } from '../../helpers/clients.mjs'
import { Fixture, killAllFixtures } from '../../helpers/fixture.mjs'
import { sleep, waitUntil } from '../../helpers/processes.mjs'

const nodeExe = process.env.WIN_NODE
const logs = mkdtempSync(join(tmpdir(), 'handover-wine-load-'))
after(async () => {
  await killAllFixtures()
  rmSync(logs, { recursive: true, force: true })
})

const HANDOFFS = 5
const CLIENTS = 8

it(`${CLIENTS} Linux clients on fresh connections through ${HANDOFFS} hand-offs of a Wine-hosted server`, { timeout: 240_000 }, async () => {
  assert.ok(nodeExe, 'WIN_NODE names node.exe: run this through npm run test:windows')
  const port = await freePort()
  const f = await Fixture.startUnderWine(
    { FIXTURE_NETWORK: 'tcp4', FIXTURE_ADDRESS: `127.0.0.1:${port}` },
    { logFile: join(logs, 'fixture.log'), nodeExe },
  )
  const generations = [f.current]
  const load = loadLoop({ port }, CLIENTS)
  await waitUntil(() => load.ok >= 100, 20_000, 'the first 100 answers')

  const perHandoff = []
  for (let i = 0; i < HANDOFFS; i++) {
    const before = load.mark()
    const answeredBefore = load.ok
    const { oldPid, newPid } = await f.handoff()
    // Let the requests the old process accepted finish, and the new one serve a while.
    await waitUntil(() => load.ok >= answeredBefore + 100, 20_000, 'answers after the hand-off')
    await sleep(200)
    perHandoff.push({ oldPid, newPid, failures: since(before, load.mark()) })
    generations.push(newPid)
  }
  await load.stop()

  const lines = perHandoff.map(({ oldPid, newPid, failures }, i) =>
    `  hand-off ${i + 1} (${oldPid} -> ${newPid}): ${failures.ECONNRESET ?? 0} ECONNRESET, ${failures.ECONNREFUSED ?? 0} ECONNREFUSED` +
      (Object.keys(failures).some((c) => c !== 'ECONNRESET' && c !== 'ECONNREFUSED') ? `, other: ${JSON.stringify(failures)}` : ''))
  const summary = [
    `Windows lane, Linux client vs Wine-hosted server: ${load.ok} answers, ${HANDOFFS} hand-offs, ${CLIENTS} clients`,
    ...lines,
    `  total failures: ${JSON.stringify(load.errors)}`,
  ].join('\n')
  console.log(summary)
  if (process.env.RESET_REPORT) writeFileSync(process.env.RESET_REPORT, `${summary}\n`)

  assert.equal(load.errors.ECONNREFUSED ?? 0, 0, 'no connection was refused')
  for (const pid of generations) assert.ok(load.byPid.get(pid) > 0, `generation ${pid} answered`)
  // Every old generation logged its exit and is gone (handoff() asked the next one).
  for (const { oldPid } of perHandoff) assert.ok(f.event(oldPid, 'closed'), `${oldPid} closed its server`)
  // The accept drain in src/backend/win-accepts.ts: no accepted connection is reset.
  assert.deepEqual(load.errors, {}, 'no request failed at all')
})
