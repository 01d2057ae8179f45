import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { cliWithin } from './helpers/control.js'
import { killAllFixtures } from './helpers/fixture.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-harden-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Accepts and never answers: a stopped (SIGSTOP) or wedged server, as the CLI sees it. */
async function silentServer(): Promise<{ path: string; close: () => void }> {
  const path = join(dir, `silent-${Math.random().toString(36).slice(2)}.ctl`)
  const held: net.Socket[] = []
  const server = net.createServer((socket) => held.push(socket))
  await new Promise<void>((resolve) => server.listen(path, resolve))
  return { path, close: () => { for (const s of held) s.destroy(); server.close() } }
}

describe('the handover CLI never waits forever', () => {
  it('status gives up after its default 5 s with exit status 3, saying what it waited for', async () => {
    const silent = await silentServer()
    try {
      const r = await cliWithin(20_000, 'status', '--socket', silent.path)
      expect(r.status).toBe(3)
      expect(r.elapsed).toBeGreaterThanOrEqual(4_900)
      expect(r.elapsed).toBeLessThan(12_000)
      expect(r.answer).toMatchObject({ ok: false, code: 'ERR_TIMEOUT' })
      expect(r.stderr).toMatch(/^handover: status failed: ERR_TIMEOUT: no answer to "status" from .*silent-.*\.ctl within 5000 ms/)
    } finally {
      silent.close()
    }
  })

  it('status --timeout and upgrade --timeout bound the wait the same way', async () => {
    const silent = await silentServer()
    try {
      const status = await cliWithin(20_000, 'status', '--socket', silent.path, '--timeout', '300')
      expect(status).toMatchObject({ status: 3, answer: { ok: false, code: 'ERR_TIMEOUT' } })
      expect(status.elapsed).toBeLessThan(4_000)
      // upgrade: the server's own deadline plus the grace it needs to kill and reap the child.
      const upgrade = await cliWithin(20_000, 'upgrade', '--socket', silent.path, '--timeout', '100')
      expect(upgrade).toMatchObject({ status: 3, answer: { ok: false, code: 'ERR_TIMEOUT' } })
      expect(upgrade.stderr).toMatch(/no answer to "upgrade 100" from .* within 5100 ms/)
      expect(upgrade.elapsed).toBeLessThan(12_000)
    } finally {
      silent.close()
    }
  })
})
