// The timeline chart of one scenario as a standalone SVG document: a pure
// function of the data lib/timeline.mjs gathers, so that it can be tested
// and redrawn from a results JSON without running anything.
//
// data: {
//   title, date,            // "c: handover, keep-alive, upgrades", "2026-12-03 02:30 UTC"
//   subtitle,               // the load and its totals, one line
//   bucketMs,               // 100
//   requests: number[],     // served per bucket, all processes together
//   workers?: [{ pid, slot, generation, first, counts: number[] }],  // per worker, from bucket `first`
//   errors: number[] | null,  // per bucket; null: the load tool cannot say when (wrk)
//   errorsTotal: number,
//   errorSource: string,    // who counted the errors, for the legend
//   markers: [{ kind: 'start' | 'ready' | 'gone' | 'failed', ms, upgrade? }],  // ms from the first bucket
// }

const WIDTH = 1200
const HEIGHT = 600
const PLOT = { left: 84, right: WIDTH - 84, top: 86, bottom: 430 }
const COLORS = {
  requests: '#1f3b73',
  errors: '#d62728',
  start: '#7b3fb5',
  ready: '#1a9641',
  gone: '#555555',
  failed: '#d62728',
  grid: '#e4e4e4',
  axis: '#333333',
}
// One color per worker slot: worker 1 of every generation shares one.
const WORKER_COLORS = ['#ff7f0e', '#17becf', '#bcbd22', '#e377c2', '#8c564b', '#7f7f7f']
const MARKERS = {
  start: { label: 'upgrade start (SIGHUP received)', dash: '5 3' },
  ready: { label: 'new generation ready', dash: '' },
  gone: { label: 'old generation gone', dash: '1.5 2.5' },
  failed: { label: 'upgrade failed', dash: '6 2' },
}

export function timelineSvg(data) {
  const buckets = data.requests.length
  const seconds = (buckets * data.bucketMs) / 1000
  const x = (s) => PLOT.left + (s / seconds) * (PLOT.right - PLOT.left)
  const xOfBucket = (i) => x(((i + 0.5) * data.bucketMs) / 1000)
  const peak = Math.max(0, ...data.requests, ...(data.workers ?? []).flatMap((w) => w.counts))
  const left = axis(peak)
  const right = axis(Math.max(0, ...(data.errors ?? [])))
  const y = (v, a) => PLOT.bottom - (v / a.max) * (PLOT.bottom - PLOT.top)

  const parts = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${esc(`${data.title} (${data.date})`)}</title>`,
    `<desc>${esc('Requests: counted by the serving processes, sampled every 100 ms. Errors: as counted by the load generator. Markers: the bench servers\' own events.')}</desc>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${PLOT.left}" y="30" font-size="18" font-weight="bold">${esc(data.title)}</text>`,
    `<text x="${PLOT.right}" y="30" font-size="13" text-anchor="end">${esc(data.date)}</text>`,
    `<text x="${PLOT.left}" y="52" font-size="12" fill="#444444">${esc(data.subtitle)}</text>`,
  ]

  // Grid and axes.
  const grid = [`<g data-part="axes" stroke="${COLORS.axis}">`]
  for (const v of left.ticks) {
    const yy = y(v, left).toFixed(1)
    grid.push(`<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${yy}" y2="${yy}" stroke="${COLORS.grid}"/>`)
    grid.push(`<text x="${PLOT.left - 8}" y="${yy}" dy="4" text-anchor="end" stroke="none">${fmt(v)}</text>`)
  }
  for (const v of right.ticks) {
    const yy = y(v, right).toFixed(1)
    grid.push(`<line x1="${PLOT.right}" x2="${PLOT.right + 5}" y1="${yy}" y2="${yy}" stroke="${COLORS.errors}"/>`)
    grid.push(`<text x="${PLOT.right + 8}" y="${yy}" dy="4" fill="${COLORS.errors}" stroke="none">${fmt(v)}</text>`)
  }
  for (const s of timeTicks(seconds)) {
    const xx = x(s).toFixed(1)
    grid.push(`<line x1="${xx}" x2="${xx}" y1="${PLOT.bottom}" y2="${PLOT.bottom + 5}"/>`)
    grid.push(`<text x="${xx}" y="${PLOT.bottom + 19}" text-anchor="middle" stroke="none">${fmt(s)}</text>`)
  }
  grid.push(`<line x1="${PLOT.left}" x2="${PLOT.left}" y1="${PLOT.top}" y2="${PLOT.bottom}"/>`)
  grid.push(`<line x1="${PLOT.right}" x2="${PLOT.right}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="${COLORS.errors}"/>`)
  grid.push(`<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${PLOT.bottom}" y2="${PLOT.bottom}"/>`)
  grid.push('</g>')
  const midY = (PLOT.top + PLOT.bottom) / 2
  grid.push(`<text x="${(PLOT.left + PLOT.right) / 2}" y="${PLOT.bottom + 40}" text-anchor="middle">seconds since the measured run of the load generator was started</text>`)
  grid.push(`<text transform="translate(24 ${midY}) rotate(-90)" text-anchor="middle" fill="${COLORS.requests}">requests per ${data.bucketMs} ms</text>`)
  grid.push(`<text transform="translate(${WIDTH - 22} ${midY}) rotate(90)" text-anchor="middle" fill="${COLORS.errors}">errors per ${data.bucketMs} ms</text>`)
  parts.push(...grid)

  // Upgrade windows (start to ready) behind the data, marker lines above it.
  const markers = data.markers.filter((m) => m.ms >= 0 && m.ms <= seconds * 1000)
  const bands = ['<g data-part="upgrade-windows">']
  for (const start of markers.filter((m) => m.kind === 'start')) {
    const ready = markers.find((m) => m.kind === 'ready' && m.upgrade === start.upgrade)
    if (!ready) continue
    const x1 = x(start.ms / 1000)
    bands.push(`<rect x="${x1.toFixed(1)}" y="${PLOT.top}" width="${Math.max(0.5, x(ready.ms / 1000) - x1).toFixed(1)}" height="${PLOT.bottom - PLOT.top}" fill="${COLORS.start}" fill-opacity="0.12"/>`)
  }
  bands.push('</g>')
  parts.push(...bands)

  const workers = ['<g data-series="workers">']
  for (const w of data.workers ?? []) {
    const points = w.counts.map((c, k) => `${xOfBucket(w.first + k).toFixed(1)},${y(c, left).toFixed(1)}`).join(' ')
    workers.push(`<polyline data-pid="${w.pid}" data-slot="${w.slot}" points="${points}" fill="none" stroke="${WORKER_COLORS[w.slot % WORKER_COLORS.length]}" stroke-width="1.2">` +
      `<title>${esc(`pid ${w.pid}, generation ${w.generation}, worker ${w.slot + 1}`)}</title></polyline>`)
  }
  workers.push('</g>')
  parts.push(...workers)

  const total = data.requests.map((c, i) => `${xOfBucket(i).toFixed(1)},${y(c, left).toFixed(1)}`).join(' ')
  parts.push(`<g data-series="requests"><polyline points="${total}" fill="none" stroke="${COLORS.requests}" stroke-width="1.6" stroke-linejoin="round"/></g>`)

  const errors = [`<g data-series="errors" fill="${COLORS.errors}">`]
  if (data.errors) {
    const w = Math.max(1, (x(data.bucketMs / 1000) - x(0)) * 0.9)
    data.errors.forEach((c, i) => {
      if (c <= 0) return
      const top = y(c, right)
      errors.push(`<rect x="${(xOfBucket(i) - w / 2).toFixed(1)}" y="${top.toFixed(1)}" width="${w.toFixed(1)}" height="${(PLOT.bottom - top).toFixed(1)}"><title>${fmt(c)} errors</title></rect>`)
    })
  } else {
    errors.push(`<text x="${(PLOT.left + PLOT.right) / 2}" y="${PLOT.top + 18}" text-anchor="middle" font-weight="bold" stroke="#ffffff" stroke-width="4" paint-order="stroke">` +
      `${esc(`${fmt(data.errorsTotal)} errors in total; ${data.errorSource} does not say when (--tool autocannon does)`)}</text>`)
  }
  errors.push('</g>')
  parts.push(...errors)

  const marks = ['<g data-series="markers" stroke-width="1.3">']
  for (const m of markers) {
    const style = MARKERS[m.kind]
    const xx = x(m.ms / 1000).toFixed(1)
    const color = COLORS[m.kind]
    marks.push(`<g data-marker="${m.kind}"${m.upgrade === undefined ? '' : ` data-upgrade="${m.upgrade}"`}>` +
      `<title>${esc(`${style.label}${m.upgrade === undefined ? '' : ` (upgrade ${m.upgrade})`} at ${(m.ms / 1000).toFixed(3)} s`)}</title>` +
      `<line x1="${xx}" x2="${xx}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="${color}"${style.dash ? ` stroke-dasharray="${style.dash}"` : ''}/>` +
      glyph(m.kind, Number(xx), PLOT.top - 8) +
      (m.kind === 'start' && m.upgrade !== undefined ? `<text x="${xx}" y="${PLOT.top - 18}" text-anchor="middle" font-size="10" fill="${color}" stroke="none">${m.upgrade}</text>` : '') +
      '</g>')
  }
  marks.push('</g>')
  parts.push(...marks)

  parts.push(legend(data))
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}

function legend(data) {
  const items = [
    { swatch: `<line x2="22" stroke="${COLORS.requests}" stroke-width="2"/>`, label: `requests per ${data.bucketMs} ms, all processes (left axis)` },
    {
      swatch: `<rect y="-5" width="10" height="10" fill="${COLORS.errors}"/>`,
      label: `errors per ${data.bucketMs} ms (right axis): ${fmt(data.errorsTotal)} in total, counted by ${data.errorSource}`,
    },
  ]
  const slots = [...new Set((data.workers ?? []).map((w) => w.slot))].sort((a, b) => a - b)
  for (const s of slots) {
    items.push({ swatch: `<line x2="22" stroke="${WORKER_COLORS[s % WORKER_COLORS.length]}" stroke-width="2"/>`, label: `worker ${s + 1} of each generation, one line per pid` })
  }
  // Only the kinds of marker this chart has: a scenario without upgrades has none.
  for (const kind of ['start', 'ready', 'gone', 'failed']) {
    if (!data.markers.some((m) => m.kind === kind)) continue
    const { label, dash } = MARKERS[kind]
    items.push({ swatch: `${glyph(kind, 5, 0)}<line y1="-7" y2="7" x1="17" x2="17" stroke="${COLORS[kind]}" stroke-width="1.5"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`, label })
  }
  if (data.markers.some((m) => m.kind === 'start')) {
    items.push({ swatch: `<rect y="-6" width="22" height="12" fill="${COLORS.start}" fill-opacity="0.12"/>`, label: 'upgrade under way (start to ready)' })
  }
  // Two columns under the plot.
  const out = ['<g data-part="legend">']
  const top = PLOT.bottom + 64
  items.forEach((item, i) => {
    const col = i % 2
    const row = Math.floor(i / 2)
    out.push(`<g transform="translate(${PLOT.left + col * 540} ${top + row * 20})">${item.swatch}<text x="30" y="4">${esc(item.label)}</text></g>`)
  })
  out.push('</g>')
  return out.join('\n')
}

function glyph(kind, cx, cy) {
  const c = COLORS[kind]
  if (kind === 'start') return `<path d="M${cx - 4} ${cy - 4}h8l-4 7z" fill="${c}" stroke="none"/>`
  if (kind === 'ready') return `<circle cx="${cx}" cy="${cy}" r="3.5" fill="${c}" stroke="none"/>`
  if (kind === 'gone') return `<path d="M${cx - 3.5} ${cy - 3.5}l7 7m0 -7l-7 7" stroke="${c}" stroke-width="1.5" fill="none"/>`
  return `<path d="M${cx - 4} ${cy - 4}l8 8m0 -8l-8 8" stroke="${c}" stroke-width="2.5" fill="none"/>`
}

/** A 0-based axis with 1-2-5 steps: { max, ticks }. An all-zero series still gets 0..1. */
function axis(peak) {
  if (!(peak > 0)) return { max: 1, ticks: [0, 1] }
  const rough = peak / 5
  const power = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough)
  const max = Math.ceil(peak / step) * step
  const ticks = []
  for (let v = 0; v <= max + step / 2; v += step) ticks.push(Number(v.toPrecision(12)))
  return { max, ticks }
}

function timeTicks(seconds) {
  const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120].find((s) => seconds / s <= 16) ?? 300
  const ticks = []
  for (let s = 0; s <= seconds + 1e-9; s += step) ticks.push(Number(s.toPrecision(12)))
  return ticks
}

const fmt = (v) => (Number.isInteger(v) ? v.toLocaleString('en-US') : String(Number(v.toFixed(2))))

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c])
}
