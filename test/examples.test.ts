// The example files the README and docs/ show byte for byte (test/docs.test.ts
// checks that), run as a user would: start, one request, a SIGHUP upgrade,
// one request answered by the new generation, then SIGTERM and a closed port.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, get } from './helpers/clients.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'
import { OutputLines } from './helpers/output.js'
import { ROOT } from './helpers/preload-app.js'
import { cli, CLI, type Status } from './helpers/supervisor.js'

const pids = new Set<number>()
const dirs: string[] = []

afterEach(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  pids.clear()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'handover-example-'))
  dirs.push(dir)
  return dir
}

function start(args: string[], cwd: string, env: NodeJS.ProcessEnv): { child: ChildProcess; output: OutputLines } {
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  pids.add(child.pid as number)
  return { child, output: new OutputLines(child) }
}

/** Waits as waitUntil does, and on failure shows what every generation printed. */
async function until(output: OutputLines, check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  await waitUntil(check, timeoutMs, what).catch((err: Error) => {
    throw new Error(`${err.message}; output:\n${output.lines.join('\n')}`)
  })
}

/** The pid in the answer "hello from <pid>". */
async function answeringPid(port: number): Promise<number> {
  const { status, body } = await get({ port })
  expect(status).toBe(200)
  const match = /^hello from (\d+)\n$/.exec(body)
  expect(match, body).not.toBeNull()
  return Number(match?.[1])
}

function pidIn(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim())
  } catch {
    return undefined
  }
}

/**
 * One upgrade of a server whose every generation writes `pidFile` on
 * ready(): the file names the first pid, SIGHUP, the file names the next one,
 * the first exits, the next one answers, SIGTERM stops it and removes the file.
 */
async function upgradeOnceAndStop(args: string[], cwd: string, env: NodeJS.ProcessEnv, pidFile: string): Promise<string[]> {
  const port = await freePort()
  const { child, output } = start(args, cwd, { ...env, PORT: String(port) })
  const first = child.pid as number
  await until(output, () => pidIn(pidFile) === first, 'the first generation to be ready (its pid in the pid file)')
  expect(await answeringPid(port)).toBe(first)

  process.kill(first, 'SIGHUP')
  await until(output, () => pidIn(pidFile) !== first, 'the next generation to be ready')
  const second = pidIn(pidFile) as number
  pids.add(second)
  await until(output, () => !isAlive(first), `the first generation (${first}) to exit`)
  expect(await answeringPid(port)).toBe(second)

  process.kill(second, 'SIGTERM')
  await until(output, () => !isAlive(second), `the last generation (${second}) to exit on SIGTERM`)
  expect(existsSync(pidFile)).toBe(false)
  await expect(get({ port })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  return output.lines
}

describe('the README quick starts', () => {
  it.each(['server.mjs', 'server.cjs'])('the API: examples/quick-start/%s upgrades on SIGHUP and stops on SIGTERM', async (file) => {
    const dir = tempDir()
    // Run from a directory of its own: the example's pidFile 'app.pid' resolves against the cwd.
    const lines = await upgradeOnceAndStop([join(ROOT, 'examples/quick-start', file)], dir, {}, join(dir, 'app.pid'))
    expect(lines.filter((l) => l.includes('upgrade failed'))).toEqual([])
  })

  it('handover/register: examples/quick-start/app.mjs, unmodified, upgrades on SIGHUP and stops on SIGTERM', async () => {
    const dir = tempDir()
    const lines = await upgradeOnceAndStop(
      ['--import', 'handover/register', 'examples/quick-start/app.mjs'],
      ROOT,
      { HANDOVER_PID_FILE: join(dir, 'app.pid') },
      join(dir, 'app.pid'),
    )
    expect(lines.some((l) => /^handover: upgraded to pid \d+ in \d+ ms$/.test(l))).toBe(true)
  })

  it('handover run: examples/quick-start/app.mjs in 2 workers, a new generation on SIGHUP, one supervisor pid', async () => {
    const dir = tempDir()
    const socket = join(dir, 'app.sock')
    const port = await freePort()
    const { child, output } = start([CLI, 'run', '-w', '2', '--control-socket', socket, 'examples/quick-start/app.mjs'], ROOT, { PORT: String(port) })
    const supervisor = child.pid as number
    const status = (): Status => {
      const answer = cli(['status', '--json', '--socket', socket]).answer as unknown as Status
      for (const w of answer?.workers ?? []) pids.add(w.pid)
      return answer
    }
    const generationReady = (n: number) => output.waitFor(new RegExp(`^handover: generation ${n} ready`), 20_000, 0, () => (output.closed ? `exited ${child.exitCode}` : undefined))

    await generationReady(1)
    const firstWorkers = status().workers.map((w) => w.pid)
    expect(firstWorkers).toHaveLength(2)
    expect(firstWorkers).toContain(await answeringPid(port))

    process.kill(supervisor, 'SIGHUP')
    await generationReady(2)
    await until(output, () => status().workers.every((w) => w.generation === 2), 'only generation 2 workers left')
    const { pid, workers } = status()
    expect(pid).toBe(supervisor)
    expect(workers).toHaveLength(2)
    expect(workers.map((w) => w.pid)).toContain(await answeringPid(port))

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    process.kill(supervisor, 'SIGTERM')
    expect(await exited).toBe(0)
    await expect(get({ port })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })
})

describe('docs/frameworks.md', () => {
  it('fastify with the API: examples/fastify-api/server.mjs upgrades on SIGHUP and stops on SIGTERM', async () => {
    const dir = tempDir()
    const lines = await upgradeOnceAndStop([join(ROOT, 'examples/fastify-api/server.mjs')], dir, {}, join(dir, 'app.pid'))
    expect(lines.filter((l) => l.includes('upgrade failed'))).toEqual([])
  })
})
