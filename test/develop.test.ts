// The README's Develop section, as a first-time contributor runs it: a fresh
// clone of this checkout's HEAD (so only committed files, nothing built),
// `npm install`, then `npm run example`, a request, and SIGTERM. The install
// takes its packages from npm's cache (--prefer-offline) and builds the addon
// with the local Node headers, as on a contributor's machine.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, get } from './helpers/clients.mjs'
import { isAlive, waitUntil } from './helpers/processes.mjs'

const ROOT = realpathSync(fileURLToPath(new URL('..', import.meta.url)))

/** This checkout's HEAD, or undefined if it is not a git checkout (the test then says it skipped). */
function head(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}
const HEAD = head()
if (!HEAD) console.warn('develop.test: not a git checkout: the fresh-clone test is SKIPPED')

/** The environment without what an outer `npm run`/`npx` leaves for its own package. */
function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (/^npm_(config_local_prefix|package_|lifecycle_|command$|execpath$)/i.test(key)) delete env[key]
  }
  return env
}

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'handover-clone-')))
const started: ChildProcess[] = []
afterAll(() => {
  for (const child of started) if (child.pid !== undefined && isAlive(child.pid)) child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

describe('the Develop section on a fresh clone', () => {
  it.skipIf(!HEAD)('git clone, npm install, npm run example: it serves, and stops on SIGTERM', async () => {
    const clone = join(dir, 'handover')
    execFileSync('git', ['clone', '--quiet', '--no-checkout', ROOT, clone], { stdio: 'ignore' })
    execFileSync('git', ['checkout', '--quiet', '--detach', HEAD!], { cwd: clone, stdio: 'ignore' })
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: clone, env: npmEnv(), stdio: 'ignore', timeout: 400_000 })

    const port = await freePort()
    const example = spawn('npm', ['run', 'example'], { cwd: clone, env: { ...npmEnv(), PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
    started.push(example)
    let output = ''
    example.stdout!.on('data', (chunk: Buffer) => (output += chunk))
    example.stderr!.on('data', (chunk: Buffer) => (output += chunk))
    const exited = new Promise<number | null>((resolve) => example.once('exit', resolve))
    await waitUntil(() => /\[pid \d+\] started/.test(output) || example.exitCode !== null, 30_000, 'the example to start')
    const pid = Number(/\[pid (\d+)\] started/.exec(output)?.[1])
    expect(pid, output).toBeGreaterThan(0)
    expect((await get({ port })).body).toBe(`hello from pid ${pid}\n`)
    process.kill(pid, 'SIGTERM')
    await waitUntil(() => !isAlive(pid), 10_000, 'the example to stop')
    expect(await exited).toBe(0)
    expect(output).not.toMatch(/ERR_MODULE_NOT_FOUND/)
  }, 480_000)
})
