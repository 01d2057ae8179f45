// For the tests of `handover run`'s operating options: the `handover`
// command run without blocking the test's event loop (a probe sampler keeps
// running meanwhile), and Prometheus text parsed into samples.
import { execFile } from 'node:child_process'
import { CLI } from './control.js'
import { get } from './clients.mjs'
import type { Status } from './supervisor.js'

export interface Run {
  status: number
  stdout: string
  stderr: string
}

/** `handover <args>`, asynchronously, with the test's environment (its private XDG_RUNTIME_DIR). */
export function handover(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr })
    })
  })
}

/** `handover status [name] --json`, found without --socket. */
export async function statusOf(name?: string): Promise<Status> {
  const { status, stdout, stderr } = await handover(['status', ...(name ? [name] : []), '--json'])
  if (status !== 0) throw new Error(`handover status exited ${status}: ${stderr}`)
  return JSON.parse(stdout) as Status
}

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The exposition text format's sample lines (comments and blank lines skipped). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]
    out.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return out
}

/** GET /metrics, parsed; `value(name, labels)` finds one sample. */
export async function scrape(port: number): Promise<{ samples: Sample[]; value: (name: string, labels?: Record<string, string>) => number | undefined }> {
  const { status, body } = await get({ port }, '/metrics')
  if (status !== 200) throw new Error(`/metrics answered ${status}`)
  const samples = parseMetrics(body)
  const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
  return { samples, value }
}
