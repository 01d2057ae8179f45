import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isAlive, waitUntil } from './processes.mjs'
import { OutputLines } from './output.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const APPS = fileURLToPath(new URL('../fixtures/apps/', import.meta.url))

const started = new Set<number>()

/**
 * An unmodified app run as a user would: `node --import handover/register
 * app.mjs` (or --require for CommonJS) from the package root, so the
 * specifier resolves through package.json's exports. Every generation
 * writes to the same stdout and stderr pipes, so their lines arrive here.
 */
export class PreloadApp {
  readonly process: ChildProcess
  private serving: number
  private readonly output: OutputLines

  private constructor(script: string, env: NodeJS.ProcessEnv, flag: '--import' | '--require', extraArgs: string[]) {
    this.process = spawn(process.execPath, [flag, 'handover/register', ...extraArgs, join(APPS, script)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.serving = this.process.pid as number
    started.add(this.serving)
    // Every pid the app or handover prints is a generation this test
    // started, tracked even when the test fails before reading its line.
    this.output = new OutputLines(this.process, (line) => {
      const pid = /^(?:listening |handover: upgraded to pid )(\d+)/.exec(line)?.[1]
      if (pid) started.add(Number(pid))
    })
  }

  /** The pid serving now, as far as the handover lines tell; every pid set here is killed after the test. */
  get current(): number {
    return this.serving
  }

  set current(pid: number) {
    started.add(pid)
    this.serving = pid
  }

  get lines(): string[] {
    return this.output.lines
  }

  /** Starts the app and waits for its own "listening <pid>" line. */
  static async start(script: string, env: NodeJS.ProcessEnv, options: { flag?: '--import' | '--require'; args?: string[]; wait?: RegExp } = {}): Promise<PreloadApp> {
    const app = new PreloadApp(script, env, options.flag ?? (script.endsWith('.cjs') ? '--require' : '--import'), options.args ?? [])
    await app.waitForLine(options.wait ?? new RegExp(`^listening ${app.current}\\b`))
    return app
  }

  /** Later generations write to the same pipes, so only the first process's exit with no output at all ends the wait early. */
  waitForLine(pattern: RegExp, timeoutMs = 15_000, from = 0): Promise<RegExpMatchArray> {
    return this.output.waitFor(pattern, timeoutMs, from, () =>
      this.process.exitCode !== null && this.lines.length === 0 ? `the app exited with ${this.process.exitCode}` : this.output.closed ? 'every process has closed its output' : undefined)
  }

  /** SIGHUP to the serving pid; resolves with the new pid once handover says so and the old one has exited. */
  async upgrade(): Promise<{ oldPid: number; newPid: number }> {
    const oldPid = this.current
    const from = this.lines.length
    process.kill(oldPid, 'SIGHUP')
    const match = await this.waitForLine(/^handover: (upgraded to pid (\d+) in \d+ ms|upgrade failed: .*)$/, 30_000, from)
    if (!match[2]) throw new Error(match[0])
    const newPid = Number(match[2])
    started.add(newPid)
    this.current = newPid
    await waitUntil(() => !isAlive(oldPid), 15_000, `old process ${oldPid} to exit`)
    return { oldPid, newPid }
  }

  /** SIGTERM (or another signal) to the serving pid; resolves once it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<void> {
    const pid = this.current
    process.kill(pid, signal)
    await waitUntil(() => !isAlive(pid), timeoutMs, `process ${pid} to exit after ${signal}`)
  }

  get text(): string {
    return this.lines.join('\n')
  }
}

/** Kills every process the preload tests started, by pid. */
export function killPreloadApps(): void {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  started.clear()
}

/** A throwaway self-signed certificate for localhost, made with openssl at test time. */
export function makeCertificate(): string {
  const dir = mkdtempSync(join(tmpdir(), 'handover-tls-'))
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' })
  return dir
}
