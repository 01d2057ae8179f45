// Under `wine node.exe`: examples/http-server, upgraded and stopped the
// Windows way, through its admin port (no SIGHUP, no console for Ctrl+C).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import http from 'node:http'
import { after, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort, get, probeBind } from '../../helpers/clients.mjs'
import { isAlive, waitUntil } from '../../helpers/processes.mjs'

const EXAMPLE = fileURLToPath(new URL('../../../examples/http-server/server.mjs', import.meta.url))
const started = []
after(() => {
  for (const pid of started) if (isAlive(pid)) process.kill(pid)
})

function post(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

const helloPid = async (port) => Number(/hello from pid (\d+)/.exec((await get({ port })).body)?.[1])

it('POST /upgrade hands over, POST /stop stops the last generation', { timeout: 60_000 }, async () => {
  const [port, adminPort] = [await freePort(), await freePort()]
  const app = spawn(process.execPath, [EXAMPLE], {
    env: { ...process.env, PORT: String(port), ADMIN_PORT: String(adminPort) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let log = ''
  app.stdout.setEncoding('utf8').on('data', (d) => (log += d))
  await waitUntil(() => log.includes('] ready'), 20_000, 'the example to be ready')
  const first = app.pid
  started.push(first)
  assert.equal(await helloPid(port), first)

  /** POST /upgrade: the new pid serves, the old one exits. */
  async function upgradeFrom(oldPid) {
    const reply = await post(adminPort, '/upgrade')
    assert.equal(reply.status, 200, reply.body)
    const newPid = Number(/new pid (\d+)/.exec(reply.body)[1])
    started.push(newPid)
    assert.equal(await helloPid(port), newPid)
    await waitUntil(() => !isAlive(oldPid), 20_000, `generation ${oldPid} to exit`)
    return newPid
  }
  const second = await upgradeFrom(first)
  // The admin socket was handed over too: the new generation answers on it.
  const third = await upgradeFrom(second)

  assert.equal((await post(adminPort, '/stop')).status, 200)
  await waitUntil(() => !isAlive(third), 20_000, 'the last generation to exit')
  // Stopped for good: nothing holds the port any more.
  await probeBind(port)
})
