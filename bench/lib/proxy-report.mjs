// What `npm run bench` prints for k (the proxy-like pool) and l (nginx in
// front), and their targets from issue 18's tests, for hand-off on: 0
// failed requests, new connections <= 1.5 × the pool over all upgrades of a
// run, old generations gone within 5 s; behind nginx, no 502 or 504. The
// hand-off-off rows are the peers' way, shown beside them, not judged.
import { MODE_TITLES } from './modes.mjs'

const f0 = (v) => (v === undefined ? '-' : Math.round(v).toLocaleString('en-US'))
const f1 = (v) => (v === undefined ? '-' : v.toFixed(1))
const f2 = (v) => (v === undefined ? '-' : v.toFixed(2))
const pair = (a, b, fmt = f1) => (a === undefined ? '-' : `${fmt(a)} / ${fmt(b)}`)
const kinds = (errors) => Object.entries(errors).filter(([, n]) => n).map(([k, n]) => `${k} ${f0(n)}`).join(', ') || '-'
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`
const PRODUCT = { api: 'drain({ handOff: false })', preload: 'HANDOVER_HAND_OFF=0', run: '--no-hand-off' }

function markdown(head, rows) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const left = (i) => i < 2 || head[i].startsWith('failed by') || head[i].startsWith('nginx error')
  const line = (cells) => `| ${cells.map((c, i) => (left(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => (left(i) ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`
  return [line(head), rule, ...rows.map(line)].join('\n')
}

/** "off" where this build has no off switch for that product runs the same code as "on": marked *. */
const setting = (row, switches) => (row.handOff === 'off' && !switches[row.mode] ? 'off*' : row.handOff)

function switchLine(switches, modes) {
  const missing = modes.filter((m) => !switches[m])
  if (!missing.length) return ''
  return `\n  * no hand-off off switch in this build for ${missing.map((m) => `${m} (${PRODUCT[m]})`).join(', ')}: its "off" runs the same code as "on"`
}

const upgradeCells = (u) => [`${u.ok}/${u.signals}`, pair(u.readyMs.median, u.readyMs.max), pair(u.goneMs.median, u.goneMs.max)]

export function poolLines(k) {
  const head = ['mode', 'hand-off', 'requests', 'failed', 'failed by kind', 'new conns', 'per upgrade med/max', 'replaced/pool', 'upgrades', 'ready ms med/max', 'old gone ms med/max']
  const rows = k.rows.map((r) => {
    const per = [...r.perUpgrade].sort((a, b) => a - b)
    const med = per.length ? per[(per.length - 1) >> 1] : undefined
    return [MODE_TITLES[r.mode], setting(r, k.switches), f0(r.requests), f0(r.failed), kinds(r.errors), f0(r.replaced),
      pair(med, per[per.length - 1], f0), med === undefined ? '-' : f2(med / k.pool.connections), ...upgradeCells(r.upgrades)]
  })
  const runs = k.runs > 1 ? `, ${k.runs} runs each (counts summed, times pooled)` : ''
  const notes = k.rows.filter((r) => r.before !== k.pool.connections * r.runs)
    .map((r) => `\n  ${r.mode} ${r.handOff}: ${f0(r.before)} connections opened before the first upgrade (the pool is ${k.pool.connections})`)
  const failedUpgrades = k.rows.filter((r) => r.upgrades.failed.length || r.upgrades.notGone)
    .map((r) => `\n  ${r.mode} ${r.handOff}: upgrades failed: ${r.upgrades.failed.join(', ') || '-'}; old generations not seen to exit: ${r.upgrades.notGone}`)
  return `  ${k.pool.connections} keep-alive connections (http.Agent, one socket each, no retries), idle ${k.pool.gapMs[0]}-${k.pool.gapMs[1]} ms ` +
    `before each next request; ${plural(k.upgradesPerRun, 'upgrade')} per mode and setting, one at a time${runs}\n` +
    `  new conns: opened after the first SIGHUP (connections replaced); per upgrade: in each upgrade's window; replaced/pool: its median over the pool\n` +
    `  ready: SIGHUP to the new generation ready; old gone: from the old generation's drain start (the hand-off) to its last process's exit, polled every 10 ms\n\n` +
    `${markdown(head, rows)}${switchLine(k.switches, [...new Set(k.rows.map((r) => r.mode))])}${notes.join('')}${failedUpgrades.join('')}`
}

export function nginxLines(l) {
  const head = ['mode', 'hand-off', 'requests', '502', '504', 'other non-2xx', 'retried by nginx', 'nginx error log', 'load tool failed', 'upgrades', 'ready ms med/max', 'old gone ms med/max']
  const rows = l.rows.map((r) => {
    // 499: the client closed before the answer, as the load tool does when it is stopped: listed under the table.
    const other = Object.entries(r.byStatus).filter(([s]) => !s.startsWith('2') && !['499', '502', '504'].includes(s)).reduce((a, [, n]) => a + n, 0)
    const errorLines = Object.values(r.errorLog).reduce((a, b) => a + b, 0)
    return [MODE_TITLES[r.mode], setting(r, l.switches), f0(r.requests), f0(r.gateway[502]), f0(r.gateway[504]), f0(other), f0(r.retried),
      errorLines ? `${f0(errorLines)} lines` : '-', Number.isNaN(r.clientFailed) ? 'no result' : f0(r.clientFailed), ...upgradeCells(r.upgrades)]
  })
  const runs = l.runs > 1 ? `, ${l.runs} runs each (counts summed, times pooled)` : ''
  const logKinds = l.rows.flatMap((r) => Object.entries(r.errorLog).map(([kind, n]) => `\n  ${r.mode} ${r.handOff}: ${f0(n)}× ${kind}`))
  const closed = l.rows.filter((r) => r.byStatus['499']).map((r) => `\n  ${r.mode} ${r.handOff}: ${f0(r.byStatus['499'])}× 499 (the client closed first: the load tool stopping)`)
  return `  nginx ${l.version ?? ''} (1 worker), upstream keepalive ${l.keepalive}, HTTP/1.1; load ${l.loadShape}, each connection idle ` +
    `${l.load.gapMs[0]}-${l.load.gapMs[1]} ms before its next request; ${plural(l.upgradesPerRun, 'upgrade')} per mode and setting, one at a time${runs}\n` +
    `  502, 504: in nginx's access log; retried by nginx: requests it sent to the upstream more than once (a GET that failed on a cached ` +
    `connection is retried, so the client never saw that race)\n\n` +
    `${markdown(head, rows)}${switchLine(l.switches, [...new Set(l.rows.map((r) => r.mode))])}${logKinds.join('')}${closed.join('')}`
}

/** [{ name, value, target, pass, info }], as report.mjs's checks(). */
export function proxyChecks({ pool: k, nginx: l }) {
  const out = []
  const add = (name, value, target, pass, info = false) => out.push({ name, value, target, pass, info })
  for (const r of k?.rows ?? []) {
    if (r.handOff !== 'on') continue
    const who = `k: ${r.mode}, hand-off on`
    add(`${who}: failed requests`, r.failed ? `${f0(r.failed)} (${kinds(r.errors)})` : '0', '0', r.failed === 0)
    const limit = 1.5 * k.pool.connections
    const perRun = r.replaced / r.runs
    add(`${who}: new connections`, `${f0(perRun)} over ${plural(k.upgradesPerRun, 'upgrade')}${r.runs > 1 ? ' (per run)' : ''} for a pool of ${k.pool.connections}`,
      `<= ${f0(limit)}, 1.5 × the pool`, perRun <= limit)
    const u = r.upgrades
    add(`${who}: old generation gone after hand-off`, u.goneMs.max === undefined ? 'not seen' : `max ${f1(u.goneMs.max)} ms${u.notGone ? `, ${u.notGone} not gone` : ''}`,
      '<= 5000 ms', u.goneMs.max !== undefined && u.goneMs.max <= 5000 && !u.notGone)
    add(`${who}: upgrades that succeeded`, `${u.ok}/${u.signals}`, 'all', u.ok === u.signals)
  }
  for (const r of l?.rows ?? []) {
    if (r.handOff !== 'on') continue
    const bad = r.gateway[502] + r.gateway[504]
    add(`l: nginx in front of ${r.mode}, hand-off on: 502 + 504`, `${f0(bad)} of ${f0(r.requests)}`, '0', bad === 0)
  }
  return out
}
