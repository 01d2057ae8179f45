// TypeScript apps under `handover run` (docs/typescript.md): tsx through
// --node-args "--import tsx" on every Node, Node's own type stripping where
// this Node has it, and the failure without either saying what to pass.
// Node 20 has no type stripping: those cases are skipped with the reason
// (npm run test:matrix runs them under Node 22, 24 and 26).
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, get } from './helpers/clients.mjs'
import { handover, statusOf } from './helpers/ops.js'
import { killSupervised, Supervised } from './helpers/supervisor.js'
import { typeStripping, typeTransform } from '../src/supervisor/node-args.js'

afterEach(killSupervised)

const APP = '../ts/app.ts'
const ENUM = '../ts/enum.ts'
const stripping = typeStripping()
if (stripping === 'none') {
  console.warn(`typescript.test.ts: SKIPPED the cases of Node's own type stripping: Node ${process.versions.node} has none ` +
    '(22.6+ behind --experimental-strip-types, on by default from 22.18 and 23.6); npm run test:matrix runs them under Node 22, 24 and 26')
}

/** Both workers of the serving generation answer on `port`. */
async function bothAnswer(port: number): Promise<void> {
  const pids = new Set((await statusOf()).workers.map((w) => w.pid))
  const seen = new Set<number>()
  for (let i = 0; i < 200 && seen.size < pids.size; i++) seen.add(Number((await get({ port })).body))
  expect([...seen].sort()).toEqual([...pids].sort())
}

describe('TypeScript under handover run', () => {
  it('tsx: handover run -w 2 --node-args "--import tsx" app.ts serves from both workers, through an upgrade; enums too', async () => {
    const port = await freePort()
    await Supervised.start(['-w', '2', '--node-args', '--import tsx'], APP, { PORT: String(port) })
    await bothAnswer(port)
    expect((await handover(['upgrade'])).status).toBe(0)
    expect((await statusOf()).generation).toBe(2)
    await bothAnswer(port)

    const other = await freePort()
    await Supervised.start(['-w', '2', '--name', 'enum', '--node-args', '--import tsx'], ENUM, { PORT: String(other) })
    expect((await get({ port: other })).status).toBe(200)
  })

  it(`without flags: ${stripping === 'default' ? `Node ${process.versions.node} strips the types itself` : `Node ${process.versions.node} cannot run it, and the failure says what to pass`}`, async () => {
    const port = await freePort()
    if (stripping === 'default') {
      await Supervised.start(['-w', '2'], APP, { PORT: String(port) })
      await bothAnswer(port)
      return
    }
    const s = Supervised.launch(['-w', '2'], APP, { PORT: String(port) })
    expect(await s.exited()).toEqual({ code: 1, signal: null })
    expect(s.text).toMatch(/handover: could not start: ERR_CHILD_EXITED: worker \d+ exited with code 1 before it was ready/)
    const hint = stripping === 'none'
      ? /^handover: .*app\.ts is TypeScript, which Node [\d.]+ cannot run by itself: pass --node-args "--import tsx" \(after npm install --save-dev tsx\); see docs\/typescript\.md$/m
      : /^handover: .*app\.ts is TypeScript: pass --node-args "--experimental-strip-types" .*or --node-args "--import tsx"/m
    expect(s.text).toMatch(hint)
  })

  it.skipIf(stripping === 'none')(`Node's own type stripping: --experimental-strip-types where it is behind a flag, none where it is on; enums need ${typeTransform() ? '--experimental-transform-types' : 'tsx (Node 26 has no transform)'}`, async () => {
    const port = await freePort()
    const flags = stripping === 'flag' ? ['--node-args', '--experimental-strip-types --no-warnings'] : ['--node-args', '--no-warnings']
    await Supervised.start(['-w', '2', ...flags], APP, { PORT: String(port) })
    await bothAnswer(port)

    // An enum is not erasable: the start fails and says what runs it.
    const refused = Supervised.launch(['-w', '1', '--name', 'enum', ...flags], ENUM, { PORT: String(await freePort()) })
    expect(await refused.exited()).toEqual({ code: 1, signal: null })
    expect(refused.text).toMatch(/ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX/)
    expect(refused.text).toMatch(/^handover: if .*enum\.ts failed on TypeScript syntax that must be transformed/m)
    if (!typeTransform()) {
      expect(refused.text).not.toMatch(/transform-types/)
      return
    }
    expect(refused.text).toMatch(/--node-args "--experimental-transform-types"/)
    const other = await freePort()
    await Supervised.start(['-w', '1', '--name', 'enum2', '--node-args', '--experimental-transform-types --no-warnings'], ENUM, { PORT: String(other) })
    expect((await get({ port: other })).status).toBe(200)
  })
})
