// `handover run` at its edges: an app that moves to another port, a
// control socket that would have no permissions, a worker that refuses the
// supervisor's protocol. Each was a defect once (issue 17).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { settledFdCount } from './helpers/fds.js'
import { freePort, get } from './helpers/clients.mjs'
import { cli, killSupervised, Supervised } from './helpers/supervisor.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-run-edges-'))
afterEach(killSupervised)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** How a connection attempt ends within 2 s: refused, or accepted (and then maybe never answered). */
function tryConnect(port: number): Promise<'refused' | 'accepted'> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const timer = setTimeout(() => {
      socket.destroy()
      resolve('accepted')
    }, 2_000)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve('accepted')
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'accepted')
    })
  })
}

describe('handover run at its edges', () => {
  it('an app that moves to another port: the old port refuses connections, and no socket is left behind per move', async () => {
    const portFile = join(dir, 'port')
    const ports = [await freePort(), await freePort(), await freePort()]
    writeFileSync(portFile, String(ports[0]))
    const socket = join(dir, 'move.sock')
    const s = await Supervised.start(['-w', '2', '--control-socket', socket], 'worker.mjs', { PORT_FILE: portFile })
    expect(Number((await get({ port: ports[0] })).body)).toBeGreaterThan(0)
    const baseline = await settledFdCount(s.pid)

    for (const [i, port] of ports.slice(1).entries()) {
      writeFileSync(portFile, String(port))
      expect(cli(['upgrade', '--socket', socket]).status).toBe(0)
      expect(Number((await get({ port })).body)).toBeGreaterThan(0)
      // The port the app left: refused, not a queue nobody accepts from.
      expect(await tryConnect(ports[i]), `port ${ports[i]} after the move`).toBe('refused')
      await s.waitForLine(new RegExp(`closed tcp \\[::\\]:${ports[i]}: no worker listens there any more`))
    }
    expect(await settledFdCount(s.pid)).toBe(baseline)
  })

  it('--control-socket @name (an abstract socket, which has no permissions) is refused', () => {
    const r = cli(['run', '--control-socket', '@handover-test', join(dir, 'app.js')])
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/could not start: ERR_INVALID_OPTION: option controlSocket must be a path, not an abstract @name/)
  })

  it('a worker that speaks no protocol version in common refuses: ERR_INCOMPATIBLE with its reason, not a bare exit', async () => {
    const port = await freePort()
    const patch = fileURLToPath(new URL('./fixtures/speak-protocol.mjs', import.meta.url))
    // NODE_OPTIONS' --import runs before the workers' own --import of handover/register.
    const s = Supervised.launch(['-w', '2'], 'worker.mjs', { PORT: String(port), FIXTURE_WORKER_PROTOCOL: '99-99', NODE_OPTIONS: `--import=${patch}` })
    await s.waitForLine(/^handover: could not start: ERR_INCOMPATIBLE: worker \d+ refused the hand-off: ERR_INCOMPATIBLE: the parent speaks handover protocol versions 1 to 2, this process speaks version 99/)
    expect((await s.exited()).code).toBe(1)
  })
})
