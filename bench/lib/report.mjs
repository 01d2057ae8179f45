// The one table `npm run bench` prints, and the issue's targets checked
// against it. Everything here reads the results object that is also saved.
import { median } from './stats.mjs'

const MiB = 1024
const f0 = (v) => (v === undefined ? '-' : Math.round(v).toLocaleString('en-US'))
const f1 = (v) => (v === undefined ? '-' : v.toFixed(1))
const f2 = (v) => (v === undefined ? '-' : v.toFixed(2))
const pair = (a, b, fmt = f1) => (a === undefined ? '-' : `${fmt(a)} / ${fmt(b)}`)

export function table(results) {
  const head = ['', 'scenario', 'req/s', 'p99 ms', 'connect', 'read', 'write', 'timeout', 'non-2xx', 'failed',
    'upgrades', 'upgrade ms med/max', 'old gone ms med/max', 'RSS MiB med/peak', '/plain req/s, RSS', 'upgrade/floor']
  const plain = results.scenarios.a
  const floor = results.floor.listen.medianMs
  const rows = Object.values(results.scenarios).map((s) => {
    const e = s.load.errors
    const u = s.upgrades
    return [s.id, s.title, f0(s.load.rps), f1(s.load.p99Ms), e.connect, e.read, e.write, e.timeout, e.non2xx, s.load.failed,
      u ? `${u.ok}/${u.expected}` : '-',
      u ? pair(u.ms.median, u.ms.max) : '-',
      u ? pair(u.goneMs.median, u.goneMs.max) : '-',
      pair(s.rssKiB.median / MiB, s.rssKiB.peak / MiB),
      plainRatios(results, s, plain),
      u?.ms.median !== undefined ? f2(u.ms.median / floor) : '-'].map(String)
  })
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`
  return [line(head), rule, ...rows.map(line)].join('\n')
}

/** Req/s and RSS over a's: the median of the ratios within each round (--runs), else of the one run. */
function plainRatios(results, s, plain) {
  if (!plain || s === plain) return '-'
  const r = results.ratios?.[`${s.id}/a`]
  if (r?.rps && r?.rss) return pair(r.rps.median, r.rss.median, f2)
  return pair(s.load.rps / plain.load.rps, s.rssKiB.median / plain.rssKiB.median, f2)
}

/** A ratio for a target: within each round, median, and the rounds' values. */
function roundRatio(results, key, x, y) {
  const r = results.ratios?.[key]?.rps
  if (r && r.all.length > 1) return { value: r.median, text: `${r.median.toFixed(3)} (median of ${r.all.length} rounds: ${r.all.map((v) => v.toFixed(3)).join(' ')})` }
  const v = x.load.rps / y.load.rps
  return { value: v, text: `${v.toFixed(3)} (${f0(x.load.rps)} / ${f0(y.load.rps)})` }
}

/**
 * With --runs, each scenario's figure in every run, so the spread shows
 * beside the medians, and the ratios taken within each round.
 */
export function runLines(results) {
  const out = []
  const list = (xs, fmt) => xs.map((v) => (v === undefined ? '-' : fmt(v))).join(' / ')
  for (const s of Object.values(results.scenarios)) {
    if (!s.perRun || s.perRun.length < 2) continue
    const parts = [`req/s ${list(s.perRun.map((r) => r.rps), f0)}`, `p99 ms ${list(s.perRun.map((r) => r.p99Ms), f1)}`, `failed ${list(s.perRun.map((r) => r.failed), String)}`]
    if (s.upgrades) parts.push(`upgrade ms median ${list(s.perRun.map((r) => r.upgradeMs), f1)}`, `old gone ms median ${list(s.perRun.map((r) => r.goneMs), f1)}`)
    if (s.idleUpgrades) parts.push(`upgrade without load ms median ${list(s.perRun.map((r) => r.idleUpgradeMs), f1)}`)
    if (s.workerShares) parts.push(`worker share max ${list(s.perRun.map((r) => r.maxShare), f2)}`)
    out.push(`  ${s.id}: ${parts.join('; ')}`)
  }
  for (const [key, r] of Object.entries(results.ratios ?? {})) {
    if (r.rps && r.rps.all.length > 1 && !key.endsWith('/a')) out.push(`  ${key} req/s within each round: ${r.rps.all.map(f2).join(' ')} (median ${f2(r.rps.median)})`)
  }
  return out.join('\n')
}

/** New processes' start to ready: with --runs, the median of the runs' medians (as the phases are). */
const startupMedian = (s) => s.startupMedianMs ?? median(s.startupMs)

export function floors(results) {
  const w = Math.max(...Object.values(results.floor).map((f) => f.label.length))
  return Object.values(results.floor)
    .map((f) => `  ${f.label.padEnd(w)}  median ${f1(f.medianMs)} ms (min ${f1(f.minMs)}, max ${f1(f.maxMs)}, ${f.runs.length} runs)`)
    .join('\n')
}

/** [{ name, value, target, pass, info }] for the scenarios that ran; `info` lines explain, they are not targets. */
export function checks(results) {
  const { a, b, c, d } = results.scenarios
  const floor = results.floor.listen.medianMs
  const loaded = results.floor.listenUnderLoad?.medianMs
  const out = []
  const add = (name, value, target, pass, info = false) => out.push({ name, value, target, pass, info })
  if (a && b) {
    const ratio = roundRatio(results, 'b/a', b, a)
    add('steady req/s, handover/plain', ratio.text, '>= 0.97', ratio.value >= 0.97)
    const extra = (b.rssKiB.median - a.rssKiB.median) / MiB
    const rssRatio = b.rssKiB.median / a.rssKiB.median
    add('steady RSS, handover - plain', `${extra >= 0 ? '+' : ''}${extra.toFixed(1)} MiB (ratio ${rssRatio.toFixed(2)})`, '<= +5 MiB', extra <= 5)
  }
  const idle = b?.idleUpgrades?.ms.median
  if (idle !== undefined) {
    add('b: upgrade latency without load vs floor', `${f1(idle)} ms = floor ${f1(floor)} ${idle >= floor ? '+' : '-'} ${f1(Math.abs(idle - floor))} ms ` +
      `(ratio ${(idle / floor).toFixed(2)})`, '<= floor + 15 ms; not the target, which is c', idle <= floor + 15, true)
  }
  for (const s of [c, d]) {
    if (!s) continue
    const m = s.upgrades.ms.median
    // The new processes' own start to ready, and the floor under load, say where the time goes.
    const why = `; under load: floor ${f1(loaded)}, new process start to ready ${f1(startupMedian(s))}`
    add(`${s.id}: upgrade latency median vs floor`, m === undefined ? 'no upgrade'
      : `${f1(m)} ms = floor ${f1(floor)} ${m >= floor ? '+' : '-'} ${f1(Math.abs(m - floor))} ms (ratio ${(m / floor).toFixed(2)}${why})`, '<= floor + 15 ms', m !== undefined && m <= floor + 15)
    add(`${s.id}: failed requests`, String(s.load.failed), '0', s.load.failed === 0)
    add(`${s.id}: upgrades that succeeded`, `${s.upgrades.ok}/${s.upgrades.expected}`, 'all', s.upgrades.ok === s.upgrades.expected)
  }
  const { e, f, g, h, i, m } = results.scenarios
  // Issue 21: the supervisor's metrics and probes servers, scraped every second, against f without them.
  if (m && f) {
    const ratio = roundRatio(results, 'm/f', m, f)
    add('steady req/s, --metrics and --probes on/off (m/f)', ratio.text, '>= 0.98', ratio.value >= 0.98)
  }
  if (m?.scrapes) {
    const { metrics, probes } = m.scrapes
    add('m: scrapes of /metrics, /readyz and /livez that failed', `${metrics.failed + probes.failed} of ${metrics.ok + metrics.failed + probes.ok + probes.failed}`, '0', metrics.failed + probes.failed === 0)
  }
  // f's peer is i, the cluster without restarts; e restarts its workers, so f/e is only a hint.
  if (f && i) {
    const ratio = roundRatio(results, 'f/i', f, i)
    add('steady req/s, handover run/cluster (f/i)', ratio.text, '>= 1.0', ratio.value >= 1.0)
  } else if (f && e) {
    const ratio = f.load.rps / e.load.rps
    add('steady req/s, handover run/cluster (f/e)', `${ratio.toFixed(3)} (${f0(f.load.rps)} / ${f0(e.load.rps)})`, '>= 1.0 against i, which did not run; e restarts its workers', ratio >= 1.0, true)
  }
  // Issue 18: with 50 keep-alive connections, no worker above 1.2× its fair share; i is the cluster's, for comparison.
  if (f?.workerShares) {
    const w = f.workerShares
    add('f: worker share, max of any worker', w.maxShare === undefined ? `no generation with >= ${w.minRequests} requests` : `${w.maxShare.toFixed(2)}× fair (${shareWhere(w)})`,
      '<= 1.2× fair', w.maxShare !== undefined && w.maxShare <= 1.2)
  }
  if (i?.workerShares?.maxShare !== undefined) {
    const w = i.workerShares
    add('i: worker share, max of any worker (cluster, round-robin)', `${w.maxShare.toFixed(2)}× fair (${shareWhere(w)})`, 'f\'s peer, not a target', true, true)
  }
  for (const s of [g, h]) {
    if (!s) continue
    add(`${s.id}: failed requests`, String(s.load.failed), '0', s.load.failed === 0)
    add(`${s.id}: upgrades that succeeded`, `${s.upgrades.ok}/${s.upgrades.expected}`, 'all', s.upgrades.ok === s.upgrades.expected)
    const w = s.workerShares
    add(`${s.id}: worker share, max of any worker`, w.maxShare === undefined ? `no generation with >= ${w.minRequests} requests` : `${w.maxShare.toFixed(2)}× fair (${shareWhere(w)})`,
      '<= 1.5× fair', w.maxShare !== undefined && w.maxShare <= 1.5)
  }
  const soak = results.soak
  if (soak) {
    add(`soak: fds across ${soak.upgrades} upgrades`, soak.verdict, 'flat', soak.flat)
    const lost = soak.load.error ? soak.load.error : soak.load.failed
    add('soak: failed requests', String(lost), '0', lost === 0)
    add('soak: upgrades that succeeded', `${soak.upgrades - soak.failures.length}/${soak.upgrades}`, 'all', soak.failures.length === 0)
  }
  const ss = results.soakSupervisor
  if (ss) {
    add(`supervisor soak: supervisor fds across ${ss.upgrades} generations`, ss.supervisorVerdict, 'flat', ss.supervisorFlat)
    add(`supervisor soak: worker fds across ${ss.upgrades} generations`, ss.workersVerdict, 'flat', ss.workersFlat)
    const lost = ss.load.error ? ss.load.error : ss.load.failed
    add('supervisor soak: failed requests', String(lost), '0', lost === 0)
    add('supervisor soak: upgrades that succeeded', `${ss.upgrades - ss.failures.length}/${ss.upgrades}`, 'all', ss.failures.length === 0)
  }
  return out
}

/** Where the largest worker share was: generation, the workers' counts, how many generations were judged. */
function shareWhere(w) {
  return `${w.worst.run ? `run ${w.worst.run}, ` : ''}generation ${w.worst.generation}: ${w.worst.requests.map(f0).join(' + ')} = ${f0(w.worst.total)} requests; ` +
    `${w.judged} generation${w.judged === 1 ? '' : 's'} judged`
}

export function supervisorSoakLines(soak) {
  const rows = soak.samples.map((s) => `  ${String(s.upgrades).padStart(4)} generations  supervisor ${s.supervisor.pid}  fds ${s.supervisor.total} = ${s.supervisor.base} + ${s.supervisor.connections} connections  ` +
    `RSS ${f1(s.supervisor.rssKiB / MiB)} MiB;  workers ${s.workers.map((w) => `${w.pid} fds ${w.total} = ${w.base} + ${w.connections}`).join(', ')}  ` +
    `RSS ${f1(s.workers.reduce((a, w) => a + w.rssKiB, 0) / MiB)} MiB`)
  const l = soak.load
  const load = l.error ? `load: ${l.error}` : `load: ${f0(l.rps)} req/s, ${l.failed} failed (${JSON.stringify(l.errors)})`
  const failed = soak.failures.length ? `\n  upgrades that failed: ${soak.failures.map((f) => `#${f.upgrade} ${f.code}`).join(', ')}` : ''
  return `${rows.join('\n')}\n  ${load}${failed}\n  verdict: supervisor ${soak.supervisorVerdict}, workers ${soak.workersVerdict}`
}

export function checkLines(list) {
  const w = Math.max(...list.map((c) => c.name.length))
  const mark = (c) => (c.info ? (c.pass ? 'info' : 'INFO') : c.pass ? 'PASS' : 'FAIL')
  return list.map((c) => `  ${mark(c)}  ${c.name.padEnd(w)}  ${c.value}   (${c.info ? '' : 'target '}${c.target})`).join('\n')
}

export function soakLines(soak) {
  const rows = soak.samples.map((s) => `  ${String(s.upgrades).padStart(4)} upgrades  pid ${s.pid}  fds ${s.total} = ${s.base} + ${s.connections} connections  RSS ${f1(s.rssKiB / MiB)} MiB`)
  const l = soak.load
  const load = l.error ? `load: ${l.error}` : `load: ${f0(l.rps)} req/s, ${l.failed} failed (${JSON.stringify(l.errors)})`
  const failed = soak.failures.length ? `\n  upgrades that failed: ${soak.failures.map((f) => `#${f.upgrade} ${f.code}`).join(', ')}` : ''
  return `${rows.join('\n')}\n  ${load}${failed}\n  verdict: ${soak.verdict}`
}

/** What the table cannot show: failed upgrades, forced connections, killed workers. */
export function notes(results) {
  const out = []
  for (const s of Object.values(results.scenarios)) {
    const u = s.upgrades
    const iu = s.idleUpgrades
    if (iu) out.push(`  ${s.id}: ${iu.ok} upgrades after the load, without it: median ${f1(iu.ms.median)} ms, max ${f1(iu.ms.max)} ms` +
      (iu.failed.length ? `; failed: ${iu.failed.join(', ')}` : ''))
    if (u?.failed.length) out.push(`  ${s.id}: upgrades that failed: ${u.failed.join(', ')}`)
    if (u?.goneMs.missing) out.push(`  ${s.id}: ${u.goneMs.missing} old processes not seen to exit`)
    if (u?.killed) out.push(`  ${s.id}: ${u.killed} old workers still alive ${results.options.clusterKillAfter} ms after disconnect, SIGTERMed`)
    if (s.phases) {
      const p = s.phases
      out.push(`  ${s.id}: new processes, ms from start (median): main module ${f1(p.main)}, handover imported ${f1(p.imported)}, ` +
        `Upgrader created ${f1(p.created)}, listening ${f1(p.listening)}, ready ${f1(startupMedian(s))}`)
    }
    const split = s.rssSplitKiB
    if (split) {
      const who = split.mainIs ?? (s.workerShares ? 'supervisor' : 'primary')
      out.push(`  ${s.id}: RSS, median / peak: ${who} ${pair(split.main.median / MiB, split.main.peak / MiB)} MiB, workers total ${pair(split.workers.median / MiB, split.workers.peak / MiB)} MiB`)
    }
    const w = s.workerShares
    if (w) {
      const one = (g) => (g.missing ? 'missing' : g.judged ? g.maxShare.toFixed(2) : `(${g.maxShare.toFixed(2)}, ${f0(g.total)} req)`)
      // With --runs, each run's generations, runs apart by ' | '.
      const per = w.generations.map((g, k) => `${k && g.run !== w.generations[k - 1].run ? '| ' : ''}${one(g)}`)
      out.push(`  ${s.id}: worker share max ${w.maxShare === undefined ? '-' : `${w.maxShare.toFixed(2)}× fair`}` +
        (w.worst ? ` (${shareWhere(w)})` : '') + `; per generation: ${per.join(' ')}`)
    }
    if (u?.rollingMs.length) out.push(`  ${s.id}: whole rolling restart (both workers) median ${f1(median(u.rollingMs))} ms`)
    if (s.drains.length) {
      const sum = (k) => s.drains.reduce((a, d) => a + d[k], 0)
      const via = [...new Set(s.drains.map((d) => d.via))].join('+')
      out.push(`  ${s.id}: ${via} drain of the old processes: median ${f1(median(s.drains.map((d) => d.ms)))} ms, ` +
        (via === 'handover' ? `${sum('graceful')} connections graceful, ${sum('forced')} forced` : 'counts not available'))
    }
  }
  return out.join('\n')
}

/** Scenario j: cold start against an upgrade of the express app, one column per compile-cache variant. */
export function realAppLines(j) {
  const rows = [
    ['cold: spawn node express-app.cjs -> port accepts', (v) => `${f1(v.acceptMs.median)} ms`],
    ['cold: spawn -> first 200 response', (v) => `${f1(v.firstOkMs.median)} ms`],
    ['upgrade: SIGHUP -> new generation ready', (v) => `${f1(v.upgradeMs.median)} ms`],
    ['upgrade / cold (port accepts)', (v) => f2(v.upgradeMs.median / v.acceptMs.median)],
    ['upgrade / cold (first 200)', (v) => f2(v.upgradeMs.median / v.firstOkMs.median)],
  ]
  const cells = rows.map(([label, cell]) => [label, ...j.variants.map(cell)])
  const head = ['', ...j.variants.map((v) => v.name)]
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)))
  const line = (r) => `  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('   ')}`.trimEnd()
  const out = [`  ${j.app}; node ${j.node}; median of ${j.runs} runs each`, line(head), ...cells.map(line)]
  const cached = j.variants.find((v) => v.cacheFiles !== undefined)
  if (cached) out.push(`  compile cache: ${cached.cacheFiles} files after the unmeasured round`)
  if (!j.cacheSupported) out.push(`  NODE_COMPILE_CACHE: not read by node ${j.node} (needs >= 22.1), so not measured`)
  return out.join('\n')
}
