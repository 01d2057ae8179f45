// handover/register's contract beyond the frameworks: every listen() form,
// addresses and errors exactly as Node gives them, dgram, readiness,
// signals, the exit after a hand-off, and stepping aside for the API.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort, get, udpPid } from './helpers/clients.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'
import { hasIPv6 } from './helpers/host.js'
import { APPS, killPreloadApps, PreloadApp, ROOT } from './helpers/preload-app.js'

const dir = mkdtempSync(join(tmpdir(), 'handover-preload-'))
afterEach(killPreloadApps)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Runs an app (configurable.mjs unless told) without the preload until it has listened (or failed), and returns its log lines. */
async function plainNode(env: NodeJS.ProcessEnv, until: RegExp, script = 'configurable.mjs'): Promise<string[]> {
  const child = spawn(process.execPath, [join(APPS, script)], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  const lines: string[] = []
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`plain node never printed ${until}: ${lines.join('\n')}`)), 10_000)
    child.stderr.on('data', (chunk: Buffer) => {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      if (lines.some((l) => until.test(l))) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
  return lines
}

/** The JSON at the end of the first line matching `pattern`, with this run's port and pid taken out. */
function shape(lines: string[], pattern: RegExp, port: number): unknown {
  const line = lines.find((l) => pattern.test(l))
  if (!line) throw new Error(`no line matching ${pattern} in:\n${lines.join('\n')}`)
  return JSON.parse(line.slice(line.indexOf('{')).replaceAll(String(port), '"PORT"'))
}

describe('every listen() form goes through handover, with the address Node reports', () => {
  const forms: Array<[string, string, boolean?]> = [
    ['listen(port)', '["$PORT"]'],
    ['listen("port") (a numeric string)', '["$PORT_STRING"]'],
    ['listen(port, "127.0.0.1")', '["$PORT", "127.0.0.1"]'],
    ['listen(port, "127.0.0.1", backlog)', '["$PORT", "127.0.0.1", 64]'],
    ['listen(port, "0.0.0.0")', '["$PORT", "0.0.0.0"]'],
    ['listen(port, "::")', '["$PORT", "::"]', true],
    ['listen(port, "localhost")', '["$PORT", "localhost"]'],
    ['listen({ port, host })', '[{ "port": "$PORT", "host": "127.0.0.1" }]'],
    ['listen({ port, backlog })', '[{ "port": "$PORT", "backlog": 128 }]'],
    ['listen({ port, host: "::1", ipv6Only: true })', '[{ "port": "$PORT", "host": "::1", "ipv6Only": true }]', true],
    ['listen({ port, host: "::", ipv6Only: true })', '[{ "port": "$PORT", "host": "::", "ipv6Only": true }]', true],
  ]
  it.each(forms)('%s', async (_, template, needsIPv6) => {
    if (needsIPv6 && !hasIPv6) return
    const port = await freePort()
    const args = template.replace('"$PORT_STRING"', JSON.stringify(String(port)))
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), LISTEN_ARGS: args })
    const expected = shape(await plainNodeOnFreshPort(args), /^listening/, -1)
    expect(shape(app.lines, /^listening/, port)).toEqual(expected)
    expect(app.lines.some((l) => l.startsWith(`event ${app.current} first`))).toBe(true)
    // Handed over, not bound afresh: a fresh bind in the new generation would fail with EADDRINUSE.
    await app.upgrade()
    expect(shape(app.lines.filter((l) => l.startsWith(`listening ${app.current}`)), /^listening/, port)).toEqual(expected)
    const host = /::1/.test(template) || /"::".*ipv6Only/.test(template) ? '::1' : '127.0.0.1'
    expect(Number((await get({ port, host })).body)).toBe(app.current)
  })

  /** The same listen() without the preload, on a port of its own; ports replaced by "PORT". */
  async function plainNodeOnFreshPort(args: string): Promise<string[]> {
    const port = await freePort()
    const lines = await plainNode({ PORT: String(port), LISTEN_ARGS: args.replace(/"\d+"/, JSON.stringify(String(port))) }, /^listening/)
    return lines.map((l) => l.replaceAll(String(port), '"PORT"').replace('""PORT""', '"PORT"'))
  }

  it.each([
    ['listen(path)', '["$SOCK"]'],
    ['listen({ path })', '[{ "path": "$SOCK" }]'],
  ])('%s: address() is the path, the path survives the hand-off, and goes at the stop', async (_, args) => {
    const sock = join(dir, `app-${Math.random().toString(36).slice(2)}.sock`)
    const app = await PreloadApp.start('configurable.mjs', { LISTEN_ARGS: args, SOCK: sock })
    expect(app.lines.find((l) => l.startsWith('listening'))).toBe(`listening ${app.current} first ${JSON.stringify(sock)}`)
    await app.upgrade()
    expect(Number((await get({ socketPath: sock })).body)).toBe(app.current)
    expect(app.lines.filter((l) => l.startsWith('listening')).at(-1)).toBe(`listening ${app.current} first ${JSON.stringify(sock)}`)
    await app.stop()
    expect(existsSync(sock)).toBe(false)
  })

  it('port 0 goes to Node untouched: a random port, new in every generation', async () => {
    const app = await PreloadApp.start('configurable.mjs', { LISTEN_ARGS: '[0, "127.0.0.1"]' })
    const port = (shape(app.lines, /^listening/, -1) as { port: number }).port
    expect(port).toBeGreaterThan(0)
    await app.upgrade()
    const next = (shape(app.lines.filter((l) => l.startsWith(`listening ${app.current}`)), /^listening/, -1) as { port: number }).port
    expect(next).not.toBe(port)
  })
})

describe('errors reach the app as without the preload', () => {
  it('EADDRINUSE reaches the app\'s error listener, with Node\'s fields', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const args = JSON.stringify([port, '127.0.0.1'])
      const withPreload = await PreloadApp.start('configurable.mjs', { LISTEN_ARGS: args }, { wait: /^error / })
      const plain = await plainNode({ LISTEN_ARGS: args }, /^error /)
      const strip = (lines: string[]): unknown => JSON.parse(lines.find((l) => l.startsWith('error '))!.replace(/^error \d+ first /, ''))
      expect(strip(withPreload.lines)).toEqual({ code: 'EADDRINUSE', syscall: 'listen', address: '127.0.0.1', port })
      expect(strip(withPreload.lines)).toEqual(strip(plain))
    } finally {
      blocker.close()
    }
  })

  it('a host that does not resolve reaches the error listener as Node\'s own lookup error', async () => {
    const args = '["$PORT", "no-such-host.invalid"]'
    const port = String(await freePort())
    const withPreload = await PreloadApp.start('configurable.mjs', { PORT: port, LISTEN_ARGS: args }, { wait: /^error / })
    const plain = await plainNode({ PORT: port, LISTEN_ARGS: args }, /^error /)
    const strip = (lines: string[]): unknown => JSON.parse(lines.find((l) => l.startsWith('error '))!.replace(/^error \d+ first /, ''))
    expect(strip(withPreload.lines)).toMatchObject({ syscall: 'getaddrinfo', hostname: 'no-such-host.invalid' })
    expect(strip(withPreload.lines)).toEqual(strip(plain))
  })
})

describe('a second listen on an address this process already listens on', () => {
  /** The JSON of the line `error <pid> <name> {...}`, with this run's port and socket path taken out. */
  const errorOf = (lines: string[], name: string, port: number, sock: string): unknown => {
    const line = lines.find((l) => new RegExp(`^(error|listening) \\d+ ${name}\\b`).test(l))
    if (!line?.startsWith('error')) throw new Error(`the ${name} server did not fail: ${line}\n${lines.join('\n')}`)
    return JSON.parse(line.replace(/^error \d+ \w+ /, '').replaceAll(sock, 'SOCK').replaceAll(String(port), '"PORT"').replace('""PORT""', '"PORT"'))
  }

  it.each([
    ['listen(port)', '["$PORT"]'],
    ['listen(port, "127.0.0.1")', '["$PORT", "127.0.0.1"]'],
    ['listen(port, "localhost")', '["$PORT", "localhost"]'],
    ['listen(path)', '["$SOCK"]'],
  ])('%s twice: the second server gets the EADDRINUSE plain Node gives, in every generation', async (_, args) => {
    const [port, plainPort] = [await freePort(), await freePort()]
    const [sock, plainSock] = [join(dir, `twice-${Math.random().toString(36).slice(2)}.sock`), join(dir, `plain-${Math.random().toString(36).slice(2)}.sock`)]
    const second = /^(error|listening) \d+ second/
    const plain = errorOf(await plainNode({ PORT: String(plainPort), SOCK: plainSock, LISTEN_ARGS: args, SECOND_ARGS: args }, second), 'second', plainPort, plainSock)
    expect(plain).toMatchObject({ code: 'EADDRINUSE', syscall: 'listen' })
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), SOCK: sock, LISTEN_ARGS: args, SECOND_ARGS: args }, { wait: second })
    expect(errorOf(app.lines, 'second', port, sock)).toEqual(plain)
    // The first server is handed over as before (a new generation inherits, which is not a second listen).
    const from = app.lines.length
    await app.upgrade()
    await app.waitForLine(new RegExp(`^(error|listening) ${app.current} second`), 15_000, from)
    expect(errorOf(app.lines.slice(from).filter((l) => l.includes(` ${app.current} `)), 'second', port, sock)).toEqual(plain)
    expect(Number((await get(args.includes('SOCK') ? { socketPath: sock } : { port })).body)).toBe(app.current)
  })

  it('a second dgram socket on the same port gets the EADDRINUSE plain Node gives', async () => {
    const [port, plainPort] = [await freePort(), await freePort()]
    const second = /^(error|listening) \d+ second/
    const plain = errorOf(await plainNode({ PORT: String(plainPort), SECOND: '1' }, second, 'udp.mjs'), 'second', plainPort, '-')
    expect(plain).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' })
    const app = await PreloadApp.start('udp.mjs', { PORT: String(port), SECOND: '1' }, { wait: second })
    expect(errorOf(app.lines, 'second', port, '-')).toEqual(plain)
    await app.upgrade()
    expect(await udpPid(port, '127.0.0.1')).toBe(app.current)
  })

  it.each(['same', 'new'])('close() then listen() again on the same port (%s server) works, and is handed over', async (relisten) => {
    const port = await freePort()
    const name = relisten === 'same' ? 'first' : 'again'
    const listening = new RegExp(`^listening \\d+ ${name} `)
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), RELISTEN: relisten }, { wait: relisten === 'same' ? /^closed/ : listening })
    await app.waitForLine(new RegExp(`^closed ${app.current} first`))
    const from = app.lines.findIndex((l) => l.startsWith('closed'))
    await app.waitForLine(listening, 15_000, from)
    expect(app.lines.filter((l) => l.startsWith('error'))).toEqual([])
    expect(Number((await get({ port })).body)).toBe(app.current)
    const before = app.lines.length
    await app.upgrade()
    await app.waitForLine(new RegExp(`^listening ${app.current} ${name} `), 15_000, before)
    expect(app.lines.filter((l) => l.startsWith('error'))).toEqual([])
    expect(Number((await get({ port })).body)).toBe(app.current)
  })
})

describe('dgram', () => {
  it.each(['udp4', 'udp6'])('socket.bind(port) on %s goes through listenPacket and is handed over', async (type) => {
    if (type === 'udp6' && !hasIPv6) return
    const port = await freePort()
    const app = await PreloadApp.start('udp.mjs', { PORT: String(port), UDP_TYPE: type })
    const host = type === 'udp4' ? '127.0.0.1' : '::1'
    expect(await udpPid(port, host)).toBe(app.current)
    await app.upgrade()
    expect(await udpPid(port, host)).toBe(app.current)
  })
})

describe('readiness', () => {
  it('waits for a second server that listens from the first one\'s callback', async () => {
    const [port, port2] = [await freePort(), await freePort()]
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), PORT2: String(port2), LISTEN_ARGS: '["$PORT"]', SECOND_ARGS: `[${port2}]` })
    const from = app.lines.length
    const { newPid } = await app.upgrade()
    const after = app.lines.slice(from)
    const second = after.findIndex((l) => l.startsWith(`listening ${newPid} second`))
    const upgraded = after.findIndex((l) => l.startsWith('handover: upgraded'))
    expect(second).toBeGreaterThan(-1)
    expect(upgraded).toBeGreaterThan(second)
    expect(Number((await get({ port: port2 })).body)).toBe(newPid)
  })

  it('holdReady() keeps the new generation from taking over until it is released', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), HOLD_MS: '400' })
    // Before the first generation's release, SIGHUP would find it not ready (ERR_NOT_READY).
    await app.waitForLine(new RegExp(`^warm ${app.current}$`))
    const from = app.lines.length
    const started = Date.now()
    const { newPid } = await app.upgrade()
    const after = app.lines.slice(from)
    expect(after.findIndex((l) => l === `warm ${newPid}`)).toBeLessThan(after.findIndex((l) => l.startsWith('handover: upgraded')))
    expect(after.findIndex((l) => l === `warm ${newPid}`)).toBeGreaterThan(after.findIndex((l) => l.startsWith(`listening ${newPid}`)))
    expect(Date.now() - started).toBeGreaterThanOrEqual(400)
  })
})

describe('signals without a supervisor', () => {
  it('SIGHUP while the previous generation still drains upgrades at once: both old generations drain side by side', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), SLOW_MS: '2500' })
    const first = app.current
    const slow = get({ port }, '/slow')
    await new Promise((r) => setTimeout(r, 100))
    const from = app.lines.length
    process.kill(first, 'SIGHUP')
    const [, second] = await app.waitForLine(/^handover: upgraded to pid (\d+)/, 15_000, from)
    process.kill(Number(second), 'SIGHUP')
    const [, third] = await app.waitForLine(new RegExp(`^handover: upgraded to pid (?!${second}\\b)(\\d+)`), 15_000, from)
    app.current = Number(third)
    // The first still finishes its slow request: a long drain held nothing up.
    expect(isAlive(first)).toBe(true)
    expect(app.text).not.toMatch(/waiting for the previous generation/)
    expect(await slow).toEqual({ status: 200, body: String(first) })
    await waitUntil(() => !isAlive(first) && !isAlive(Number(second)), 10_000, 'both old generations to exit')
    expect(Number((await get({ port })).body)).toBe(Number(third))
  })

  it('with its own SIGTERM handler the app owns the shutdown: handover drains nothing under it', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), OWN_SIGTERM: '1', CLOSE_DELAY: '400', SLOW_MS: '600' })
    const pid = app.current
    const slow = get({ port }, '/slow')
    await new Promise((r) => setTimeout(r, 50))
    process.kill(pid, 'SIGTERM')
    await app.waitForLine(new RegExp(`^app sigterm ${pid}`))
    // Still accepting: handover did not stop the server; the app closes it after its own delay.
    expect(await get({ port })).toEqual({ status: 200, body: String(pid) })
    expect(await slow).toEqual({ status: 200, body: String(pid) })
    await app.waitForLine(new RegExp(`^app closed ${pid}`))
    const code = await new Promise((resolve) => (app.process.exitCode !== null ? resolve(app.process.exitCode) : app.process.once('exit', resolve)))
    expect(code).toBe(0)
  })

  it('SIGTERM without a handler of the app\'s exits 0 after the drain; a second one exits at once with 143', async () => {
    const port = await freePort()
    const graceful = await PreloadApp.start('configurable.mjs', { PORT: String(port) })
    process.kill(graceful.current, 'SIGTERM')
    expect(await new Promise((resolve) => graceful.process.once('exit', (code, signal) => resolve({ code, signal })))).toEqual({ code: 0, signal: null })

    const port2 = await freePort()
    const forced = await PreloadApp.start('configurable.mjs', { PORT: String(port2), SLOW_MS: '5000' })
    const slow = get({ port: port2 }, '/slow').catch((err: NodeJS.ErrnoException) => err.code)
    await new Promise((r) => setTimeout(r, 100))
    process.kill(forced.current, 'SIGTERM')
    await new Promise((r) => setTimeout(r, 200))
    expect(isAlive(forced.current)).toBe(true)
    process.kill(forced.current, 'SIGTERM')
    expect(await new Promise((resolve) => forced.process.once('exit', (code) => resolve(code)))).toBe(143)
    expect(await slow).toBe('ECONNRESET')
  })

  it('a process that never listens keeps Node\'s default SIGTERM (npm under NODE_OPTIONS)', () => {
    const result = spawnSync(process.execPath, ['-e', 'setTimeout(() => {}, 5000); setTimeout(() => process.kill(process.pid, "SIGTERM"), 100)'], {
      cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '--import handover/register' }, timeout: 10_000,
    })
    expect(result.signal).toBe('SIGTERM')
  })
})

describe('the old process after a hand-off', () => {
  it('exits after the drain plus HANDOVER_EXIT_GRACE even if an interval keeps it alive', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), KEEP_ALIVE: '1', HANDOVER_EXIT_GRACE: '300' })
    const old = app.current
    const started = Date.now()
    await app.upgrade()
    expect(isAlive(old)).toBe(false)
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
  })

  it('HANDOVER_PID_FILE names the serving generation and is removed at the stop', async () => {
    const pidFile = join(dir, `app-${Math.random().toString(36).slice(2)}.pid`)
    const port = await freePort()
    const app = await PreloadApp.start('configurable.mjs', { PORT: String(port), HANDOVER_PID_FILE: pidFile })
    await waitUntil(() => existsSync(pidFile), 5_000, 'the pid file')
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(app.current))
    await app.upgrade()
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(app.current))
    await app.stop()
    expect(existsSync(pidFile)).toBe(false)
  })

  it('a bad setting stops the start with a typed error', () => {
    const result = spawnSync(process.execPath, ['--import', 'handover/register', join(APPS, 'configurable.mjs')], {
      cwd: ROOT, env: { ...process.env, HANDOVER_DRAIN_TIMEOUT: 'soon', PORT: '1' }, timeout: 10_000, encoding: 'utf8',
    })
    expect(result.status).toBe(1)
    expect(result.stderr).toMatch(/ERR_INVALID_OPTION/)
    expect(result.stderr).toMatch(/HANDOVER_DRAIN_TIMEOUT/)
  })
})

describe('an app that uses the API itself', () => {
  it('runs unchanged with the preload loaded: the preload steps aside', async () => {
    const port = await freePort()
    const app = await PreloadApp.start('api.mjs', { PORT: String(port) })
    expect(app.text).not.toMatch(/ERR_ALREADY_CREATED/)
    const first = app.current
    process.kill(first, 'SIGHUP')
    const [, next] = await app.waitForLine(/^api upgraded to (\d+)/)
    app.current = Number(next)
    await waitUntil(() => !isAlive(first), 10_000, 'the old process to exit')
    expect(Number((await get({ port })).body)).toBe(Number(next))
    // The preload said nothing: the app's own handler did the upgrade.
    expect(app.text).not.toMatch(/^handover:/m)
  })
})
