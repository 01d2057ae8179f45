// Under `wine node.exe`: bad input and refused networks get typed errors,
// and the lifecycle without a parent works, in this very process.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { freePort, pidAt, probeBind } from '../../helpers/clients.mjs'
import { isAlive } from '../../helpers/processes.mjs'

const { Upgrader, isHandoverError } = await import(new URL('../../../dist/index.js', import.meta.url).href)

/** Rejects or throws with a HandoverError of this code. */
async function rejectsWith(code, fn) {
  await assert.rejects(async () => fn(), (err) => {
    assert.ok(isHandoverError(err), `not a HandoverError: ${err?.stack ?? err}`)
    assert.equal(err.code, code, err.message)
    return true
  })
}

/** An HTTP server on `listener` that answers with this pid; resolves with a function that closes it. */
async function serve(listener) {
  const server = http.createServer((req, res) => res.end(String(process.pid)))
  await new Promise((resolve) => server.listen(listener, resolve))
  return () => new Promise((resolve) => server.close(resolve))
}

let upg
before(async () => {
  upg = await Upgrader.create()
})
after(() => upg?.stop())

describe('on Windows', () => {
  it('is a first generation: no parent, waitForParent() resolves at once', async () => {
    assert.equal(upg.hasParent, false)
    await upg.waitForParent({ timeout: 1000 })
  })

  it('a tcp4 listener carries a TCP handle, no fd, and serves through server.listen(listener)', async () => {
    const port = await freePort()
    const listener = upg.listen('tcp4', `127.0.0.1:${port}`)
    assert.equal(listener.fd, undefined)
    assert.equal(typeof listener.handle, 'object')
    assert.equal(listener.address, `127.0.0.1:${port}`)
    assert.equal(listener.port, port)
    assert.equal(listener.inherited, false)
    const close = await serve(listener)
    assert.equal(await pidAt({ port }), process.pid)
    await close()
  })

  it('the tcp wildcard is dual-stack when the host has IPv6', async () => {
    const port = await freePort()
    const listener = upg.listen('tcp', `:${port}`)
    assert.match(listener.address, /^(\[::\]|0\.0\.0\.0):\d+$/)
    const close = await serve(listener)
    assert.equal(await pidAt({ port }), process.pid)
    await close()
  })

  it('two listen() calls for one address give two handles on the one socket', async () => {
    const port = await freePort()
    const a = upg.listen('tcp4', `127.0.0.1:${port}`)
    const b = upg.listen('tcp', `127.0.0.1:${port}`)
    assert.notEqual(a.handle, b.handle)
    const closers = await Promise.all([a, b].map(serve))
    assert.equal(await pidAt({ port }), process.pid)
    await Promise.all(closers.map((close) => close()))
  })

  it('unix sockets are refused with ERR_UNSUPPORTED', async () => {
    await rejectsWith('ERR_UNSUPPORTED', () => upg.listen('unix', 'C:\\app.sock'))
  })

  for (const network of ['udp', 'udp4', 'udp6']) {
    it(`${network} is refused with ERR_UNSUPPORTED`, async () => {
      await rejectsWith('ERR_UNSUPPORTED', () => upg.listenPacket(network, ':5353'))
    })
  }

  it('a port in use is EADDRINUSE, with the Winsock errno and the address', async () => {
    const blocker = net.createServer()
    await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const { port } = blocker.address()
    try {
      assert.throws(() => upg.listen('tcp4', `127.0.0.1:${port}`), (err) => {
        assert.equal(err.code, 'EADDRINUSE')
        assert.equal(err.errno, 10048)
        assert.equal(err.syscall, 'listen')
        assert.equal(err.address, `tcp4 127.0.0.1:${port}`)
        assert.match(err.message, /address already in use/)
        return true
      })
    } finally {
      blocker.close()
    }
  })

  it('bad networks and addresses', async () => {
    await rejectsWith('ERR_INVALID_NETWORK', () => upg.listen('sctp', ':80'))
    await rejectsWith('ERR_INVALID_NETWORK', () => upg.listen('udp', ':80'))
    for (const address of ['nonsense', ':99999', 'example.com:80', '[::1']) {
      await rejectsWith('ERR_INVALID_ADDRESS', () => upg.listen('tcp', address))
    }
  })

  it('upgrade() before ready(), bad options, a second create()', async () => {
    await rejectsWith('ERR_NOT_READY', () => upg.upgrade())
    await rejectsWith('ERR_INVALID_OPTION', () => upg.upgrade({ signal: 'soon' }))
    await rejectsWith('ERR_INVALID_OPTION', () => upg.waitForParent({ timeout: -1 }))
    await rejectsWith('ERR_ALREADY_CREATED', () => Upgrader.create())
  })

  it('no socket reaches a process the app starts: the port is free while that process still runs', async () => {
    const port = await freePort()
    const script = `
      import http from 'node:http'
      import { spawn } from 'node:child_process'
      const { Upgrader } = await import(${JSON.stringify(new URL('../../../dist/index.js', import.meta.url).href)})
      const upg = await Upgrader.create()
      const server = http.createServer((req, res) => res.end('x'))
      await new Promise((resolve) => server.listen(upg.listen('tcp4', '127.0.0.1:${port}'), resolve))
      await upg.ready()
      // Outlives this process (detached: not in libuv's job object).
      const bystander = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore', detached: true })
      bystander.unref()
      process.stdout.write(JSON.stringify({ bystander: bystander.pid }) + '\\n', () => {
        upg.stop()
        server.close(() => process.exit(0))
      })
    `
    const app = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    app.stdout.setEncoding('utf8').on('data', (d) => (out += d))
    const code = await new Promise((resolve) => app.on('exit', resolve))
    assert.equal(code, 0)
    const { bystander } = JSON.parse(out)
    try {
      assert.ok(isAlive(bystander), 'the bystander still runs')
      await probeBind(port)
    } finally {
      process.kill(bystander)
    }
  })

  it("stop() closes handover's own socket: once the server has closed its handle, the port is free", async () => {
    const port = await freePort()
    const close = await serve(upg.listen('tcp4', `127.0.0.1:${port}`))
    await upg.ready()
    await close()
    // handover still holds the socket for the next generation...
    await assert.rejects(probeBind(port), { code: 'EADDRINUSE' })
    upg.stop()
    await upg.exit()
    // ...until stop(): then nothing holds it, not even a leaked handle.
    await probeBind(port)
    await rejectsWith('ERR_STOPPED', () => upg.upgrade())
  })

  it('handover run refuses with ERR_UNSUPPORTED and says why', async () => {
    const { Supervisor } = await import(new URL('../../../dist/supervisor/supervisor.js', import.meta.url).href)
    await assert.rejects(Supervisor.start({ script: 'app.js' }), (err) => {
      assert.equal(err.code, 'ERR_UNSUPPORTED')
      assert.match(err.message, /SCM_RIGHTS/)
      return true
    })
  })
})
