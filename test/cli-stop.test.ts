// `handover stop --pid PID`: systemd's ExecStop= for a main process that a
// hand-off made, which systemd does not wait for itself.
import { execFile, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, get } from './helpers/clients.mjs'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const CLI = fileURLToPath(new URL('../dist/bin.js', import.meta.url))
const strays: number[] = []
afterEach(async () => {
  for (const pid of strays.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  await killAllFixtures()
})

interface StopResult {
  status: number
  answer: Record<string, unknown> | undefined
  stderr: string
  ms: number
}

function stop(...args: string[]): Promise<StopResult> {
  const started = Date.now()
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'stop', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      const line = stdout.split('\n')[0]
      resolve({ status, answer: line ? (JSON.parse(line) as Record<string, unknown>) : undefined, stderr, ms: Date.now() - started })
    })
  })
}

describe('handover stop', () => {
  it('after a hand-off: SIGTERMs the generation that is not our child and returns once it has drained and exited', async () => {
    const port = await freePort()
    const f = await Fixture.start({ FIXTURE_ADDRESS: `127.0.0.1:${port}` })
    const { newPid } = await f.handoff()
    const slow = get({ port }, '/slow?ms=2500', 20_000)
    // Time for the server to accept it and start on it (on a busy machine too).
    await new Promise((resolve) => setTimeout(resolve, 700))
    const result = await stop('--pid', String(newPid))
    expect(result).toMatchObject({ status: 0, answer: { ok: true, pid: newPid }, stderr: '' })
    // It waited for the in-flight request, which was answered, and for the exit.
    expect(await slow).toEqual({ status: 200, body: String(newPid) })
    expect(result.ms).toBeGreaterThanOrEqual(1000)
    expect(isAlive(newPid)).toBe(false)
    expect(f.event(newPid, 'closed')).toBeDefined()
  })

  it('gives up after --timeout with exit 1 and ERR_TIMEOUT, leaving the process to the service manager', async () => {
    const stubborn = spawn(process.execPath, ['-e', 'process.on("SIGTERM", () => console.log("ignored")); console.log("up"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'ignore'] })
    strays.push(stubborn.pid!)
    await new Promise((resolve) => stubborn.stdout!.once('data', resolve))
    const result = await stop('--pid', String(stubborn.pid), '--timeout', '400')
    expect(result).toMatchObject({ status: 1, answer: { ok: false, pid: stubborn.pid, code: 'ERR_TIMEOUT' } })
    expect(result.stderr).toMatch(/^handover: stop failed: ERR_TIMEOUT: /)
    expect(result.ms).toBeGreaterThanOrEqual(400)
    expect(isAlive(stubborn.pid!)).toBe(true)
  })

  it('an empty --pid= (systemd\'s unset ${MAINPID}: the main process has gone) is success', async () => {
    expect(await stop('--pid=')).toMatchObject({ status: 0, answer: { ok: true, pid: null } })
  })

  it('a pid that names no process fails with ESRCH, exit 1 and a clear message', async () => {
    const gone = spawn(process.execPath, ['-e', '0'])
    await new Promise((resolve) => gone.on('exit', resolve))
    await waitUntil(() => !isAlive(gone.pid!), 5_000, 'the child to be reaped')
    const r = await stop('--pid', String(gone.pid))
    expect(r).toMatchObject({ status: 1, answer: { ok: false, pid: gone.pid, code: 'ESRCH' } })
    expect(r.stderr).toBe(`handover: stop failed: ESRCH: no process has pid ${gone.pid}: nothing was stopped\n`)
  })

  it('usage errors exit 2 and signal nothing', async () => {
    for (const args of [[], ['--pid', '0'], ['--pid', '1'], ['--pid', '-5'], ['--pid', 'abc'], ['--pid', String(process.pid), '--timeout', 'soon'], ['--pid', '123', 'extra']]) {
      const r = await stop(...args)
      expect(r.status, args.join(' ')).toBe(2)
      expect(r.stderr, args.join(' ')).toMatch(/^handover: [^]*\nusage: handover [^]*handover stop --pid PID/)
    }
  })
})
