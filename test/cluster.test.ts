// The API in a node:cluster worker (pm2 cluster mode): the primary owns the
// worker's sockets, so handover refuses at create() with a pointer to
// `handover run`, instead of a bind error at the first listen.
import { execFile } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const FIXTURE = fileURLToPath(new URL('fixtures/cluster.mjs', import.meta.url))
const DIST = pathToFileURL(fileURLToPath(new URL('../dist/index.js', import.meta.url))).href

describe('node:cluster workers', () => {
  it('Upgrader.create() in a cluster worker → ERR_UNSUPPORTED, pointing to handover run', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [FIXTURE], { timeout: 20_000 })
    const report = JSON.parse(stdout.trim().split('\n')[0]) as { event: string; code?: string; message?: string }
    expect(report).toMatchObject({ event: 'failed', code: 'ERR_UNSUPPORTED' })
    expect(report.message).toMatch(/node:cluster worker .*handover run -w N/)
  })

  it('a process without an IPC channel never loads node:cluster to find out', async () => {
    const script = `const { Upgrader } = await import(${JSON.stringify(DIST)})
      const upg = await Upgrader.create()
      console.log(JSON.stringify(process.moduleLoadList.filter((m) => /cluster/.test(m))))
      upg.stop()`
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 })
    expect(JSON.parse(stdout)).toEqual([])
  })
})
