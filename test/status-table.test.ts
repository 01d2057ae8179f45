// `handover status` as a table: the pure formatter (src/service/status-table.ts).
// The CLI printing it against a real server is in control-socket.test.ts.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { formatBytes, formatStatusTable, formatUptime } from '../src/service/status-table.js'
import { CLI } from './helpers/control.js'
import { Fixture, killAllFixtures } from './helpers/fixture.mjs'

const dir = mkdtempSync(join(tmpdir(), 'handover-table-'))
afterEach(killAllFixtures)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function run(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr })
    })
  })
}

const NOW = Date.parse('2026-12-07T12:00:00.000Z')
const ago = (ms: number): string => new Date(NOW - ms).toISOString()

describe('the status table', () => {
  it('a supervisor: a header line and one aligned row per worker, with every figure it reports', () => {
    const text = formatStatusTable({
      ok: true, pid: 4100, generation: 3,
      workers: [
        { pid: 4211, generation: 3, state: 'ready', startedAt: ago(7_530_000), restarts: 0, rss: 64_172_032, cpu: 3.46, requests: 10423 },
        { pid: 42120, generation: 3, state: 'ready', startedAt: ago(7_530_000), restarts: 1, rss: 61_800_000, cpu: 2.9, requests: 9876 },
        { pid: 42121, generation: 3, state: 'ready', startedAt: ago(7_530_000), restarts: 2, restartReason: 'max-rss', rss: 61_800_000, cpu: 2.9, requests: 9876 },
      ],
    }, NOW)
    expect(text).toBe([
      'supervisor pid 4100, generation 3, 3 workers',
      '  PID  GEN  STATE  UPTIME     RESTARTS    RSS  CPU%  REQUESTS',
      ' 4211    3  ready   2h05m            0  61.2M   3.5     10423',
      '42120    3  ready   2h05m            1  58.9M   2.9      9876',
      '42121    3  ready   2h05m  2 (max-rss)  58.9M   2.9      9876',
      '',
    ].join('\n'))
  })

  it('shows - for a field the status does not carry yet (rss, cpu, requests) or carries as garbage', () => {
    const text = formatStatusTable({
      ok: true, pid: 1, generation: 2,
      workers: [
        { pid: 10, generation: 2, state: 'ready', startedAt: ago(5_000), restarts: 0 },
        { pid: 11, generation: 1, state: 'draining', startedAt: 'yesterday', restarts: 0, rss: 'lots', cpu: Number.NaN, requests: -1 },
      ],
    }, NOW)
    const [, header, a, b] = text.split('\n')
    expect(header.split(/\s+/).filter(Boolean)).toEqual(['PID', 'GEN', 'STATE', 'UPTIME', 'RESTARTS', 'RSS', 'CPU%', 'REQUESTS'])
    expect(a.split(/\s+/).filter(Boolean)).toEqual(['10', '2', 'ready', '5s', '0', '-', '-', '-'])
    expect(b.split(/\s+/).filter(Boolean)).toEqual(['11', '1', 'draining', '-', '0', '-', '-', '-'])
  })

  it('an Upgrader\'s answer (no workers): one row for the process serving, and a note when the socket path is gone', () => {
    const text = formatStatusTable({ ok: true, pid: 1234, hasParent: true, socketPathMissing: true }, NOW)
    const lines = text.trimEnd().split('\n')
    expect(lines[1].split(/\s+/).filter(Boolean)).toEqual(['1234', '-', 'serving', '-', '-', '-', '-', '-'])
    expect(lines[2]).toMatch(/^note: the control socket's path has been deleted/)
  })

  it('a supervisor with no worker at the moment, and control characters in a state, print safely', () => {
    const text = formatStatusTable({ ok: true, pid: 7, generation: 0, workers: [{ pid: 8, state: 'x\u001b[2Jy', generation: 1, startedAt: ago(0), restarts: 0 }] }, NOW)
    expect(text).toContain('x?[2Jy')
    expect(text).not.toContain('\u001b')
    expect(formatStatusTable({ ok: true, pid: 7, generation: 0, workers: [] }, NOW)).toBe('supervisor pid 7, generation 0, 0 workers\nPID  GEN  STATE  UPTIME  RESTARTS  RSS  CPU%  REQUESTS\n')
  })

  it('uptime and sizes in the units people read', () => {
    expect([0, 59_999, 60_000, 3_599_000, 3_600_000, 86_399_000, 86_400_000 * 3 + 3_600_000].map(formatUptime))
      .toEqual(['0s', '59s', '1m00s', '59m59s', '1h00m', '23h59m', '3d01h'])
    expect(formatUptime(-5)).toBe('-')
    expect([0, 1023, 1024, 1536, 100 * 1024 * 1024, 5 * 1024 ** 3].map(formatBytes)).toEqual(['0B', '1023B', '1.0K', '1.5K', '100M', '5.0G'])
    expect(formatBytes(undefined)).toBe('-')
  })
})

describe('handover status against a real server', () => {
  it('prints the table by default and the JSON answer with --json; a failure is stderr only without --json', async () => {
    const ctl = join(dir, 'app.ctl')
    const f = await Fixture.start({ FIXTURE_CONTROL_SOCKET: ctl })
    const table = await run('status', '--socket', ctl)
    expect(table.status).toBe(0)
    const lines = table.stdout.trimEnd().split('\n')
    expect(lines[0].split(/\s+/).filter(Boolean)).toEqual(['PID', 'GEN', 'STATE', 'UPTIME', 'RESTARTS', 'RSS', 'CPU%', 'REQUESTS'])
    expect(lines[1].trim().split(/\s+/).slice(0, 3)).toEqual([String(f.current), '-', 'serving'])
    const json = await run('status', '--json', '--socket', ctl)
    expect(JSON.parse(json.stdout)).toEqual({ ok: true, pid: f.current, hasParent: false })
    const missing = await run('status', '--socket', join(dir, 'nothing.ctl'))
    expect(missing).toMatchObject({ status: 1, stdout: '' })
    expect(missing.stderr).toMatch(/^handover: status failed: ENOENT: /)
  })
})

