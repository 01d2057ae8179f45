import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

// The bench's timeline charts (bench/lib/chart.mjs): that they are written
// and well-formed, not what they show. The figures are the bench's business.
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CHART_MODULE = new URL('../bench/lib/chart.mjs', import.meta.url).href

interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
}

/**
 * A strict reader for the XML the chart writer produces: one root element,
 * balanced tags, quoted and unique attributes, no raw `<` in text or values,
 * only the five named entities and numeric references. Throws on anything else.
 */
function parseXml(text: string): XmlElement {
  const NAME = /^[A-Za-z_][\w.:-]*/
  const checkText = (t: string, where: number): void => {
    if (t.includes('<')) throw new Error(`raw < at ${where}`)
    const bad = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(t)
    if (bad) throw new Error(`bad entity at ${where + bad.index}`)
  }
  let i = 0
  const stack: XmlElement[] = []
  let root: XmlElement | undefined
  if (text.startsWith('<?xml')) {
    const end = text.indexOf('?>')
    if (end < 0) throw new Error('unterminated XML declaration')
    i = end + 2
  }
  while (i < text.length) {
    const lt = text.indexOf('<', i)
    const chunk = text.slice(i, lt < 0 ? text.length : lt)
    if (stack.length === 0 && chunk.trim()) throw new Error(`text outside the root element at ${i}`)
    checkText(chunk, i)
    if (lt < 0) break
    i = lt
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4)
      if (end < 0) throw new Error('unterminated comment')
      i = end + 3
      continue
    }
    if (text.startsWith('</', i)) {
      const m = /^<\/([A-Za-z_][\w.:-]*)\s*>/.exec(text.slice(i))
      if (!m) throw new Error(`bad end tag at ${i}`)
      const open = stack.pop()
      if (!open || open.name !== m[1]) throw new Error(`</${m[1]}> at ${i} closes <${open?.name ?? 'nothing'}>`)
      i += m[0].length
      continue
    }
    const name = NAME.exec(text.slice(i + 1))?.[0]
    if (!name) throw new Error(`bad tag at ${i}`)
    if (stack.length === 0 && root) throw new Error(`a second root element <${name}> at ${i}`)
    const element: XmlElement = { name, attrs: {}, children: [] }
    i += 1 + name.length
    for (;;) {
      const ws = /^\s*/.exec(text.slice(i))![0]
      i += ws.length
      if (text.startsWith('/>', i) || text.startsWith('>', i)) break
      if (!ws) throw new Error(`no space before an attribute at ${i}`)
      const attr = /^([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/.exec(text.slice(i))
      if (!attr) throw new Error(`bad attribute at ${i} in <${name}>`)
      if (attr[1] in element.attrs) throw new Error(`duplicate attribute ${attr[1]} in <${name}>`)
      const value = attr[3] ?? attr[4]
      checkText(value, i)
      element.attrs[attr[1]] = value
      i += attr[0].length
    }
    if (stack.length) stack[stack.length - 1].children.push(element)
    else root = element
    if (text.startsWith('/>', i)) {
      i += 2
    } else {
      i += 1
      stack.push(element)
    }
  }
  if (stack.length) throw new Error(`<${stack[stack.length - 1].name}> is never closed`)
  if (!root) throw new Error('no root element')
  return root
}

function* walk(e: XmlElement): Generator<XmlElement> {
  yield e
  for (const c of e.children) yield* walk(c)
}

const find = (root: XmlElement, attr: string, value: string): XmlElement[] => [...walk(root)].filter((e) => e.attrs[attr] === value)

/** What every timeline chart has: an <svg> root with its size, and the three series groups. */
function checkChart(svg: string): XmlElement {
  const root = parseXml(svg)
  expect(root.name).toBe('svg')
  expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg')
  expect(Number(root.attrs.width)).toBeGreaterThan(0)
  expect(Number(root.attrs.height)).toBeGreaterThan(0)
  expect(root.attrs.viewBox).toMatch(/^0 0 \d+ \d+$/)
  for (const series of ['requests', 'errors', 'markers']) {
    const groups = find(root, 'data-series', series)
    expect(groups, `data-series="${series}"`).toHaveLength(1)
    expect(groups[0].name).toBe('g')
  }
  const line = find(root, 'data-series', 'requests')[0].children.find((c) => c.name === 'polyline')
  expect(line?.attrs.points).toMatch(/^[\d.]+,[\d.-]+( [\d.]+,[\d.-]+)+$/)
  return root
}

describe('the strict XML reader', () => {
  it('rejects what is not well-formed, and reads what is', () => {
    const broken = [
      '<svg><g></svg>',
      '<svg><g></g>',
      '<svg a="1" a="2"/>',
      '<svg a=1/>',
      '<svg>a < b</svg>',
      '<svg>fish & chips</svg>',
      '<svg t="x<y"/>',
      '<svg/><svg/>',
      'text<svg/>',
      '<svg a="1"b="2"/>',
    ]
    for (const doc of broken) expect(() => parseXml(doc), doc).toThrow()
    const ok = parseXml('<?xml version="1.0"?>\n<svg a="1" b=\'&lt;&amp;\'><!-- c --><g>x &#38; y</g><g/></svg>\n')
    expect(ok.children.map((c) => c.name)).toEqual(['g', 'g'])
  })
})

describe('bench timeline chart', () => {
  it('timelineSvg escapes its text and draws workers, errors and every kind of marker', async () => {
    const { timelineSvg } = (await import(CHART_MODULE)) as { timelineSvg: (data: unknown) => string }
    const svg = timelineSvg({
      title: 'x: <a & "b"> \'c\'',
      date: '2026-01-01 00:00 UTC',
      subtitle: 'wrk -c50 <keep-alive> & more',
      bucketMs: 100,
      requests: [0, 10, 20, 15, 30, 25],
      workers: [
        { pid: 11, slot: 0, generation: 1, first: 1, counts: [5, 10, 7] },
        { pid: 12, slot: 1, generation: 1, first: 1, counts: [5, 10, 8, 30] },
      ],
      errors: [0, 0, 3, 0, 1, 0],
      errorsTotal: 4,
      errorSource: 'autocannon',
      markers: [
        { kind: 'start', ms: 110, upgrade: 1 },
        { kind: 'ready', ms: 250, upgrade: 1 },
        { kind: 'gone', ms: 270, upgrade: 1 },
        { kind: 'failed', ms: 400 },
      ],
    })
    const root = checkChart(svg)
    expect(find(root, 'data-series', 'workers')[0].children).toHaveLength(2)
    expect(find(root, 'data-series', 'errors')[0].children.filter((c) => c.name === 'rect')).toHaveLength(2)
    for (const kind of ['start', 'ready', 'gone', 'failed']) expect(find(root, 'data-marker', kind), kind).toHaveLength(1)
    // Without error timing (wrk with errors), the group says so instead of drawing bars.
    const untimed = checkChart(timelineSvg({
      title: 'y', date: 'd', subtitle: 's', bucketMs: 100, requests: [1, 2], errors: null, errorsTotal: 7, errorSource: 'wrk', markers: [],
    }))
    expect(find(untimed, 'data-series', 'errors')[0].children.map((c) => c.name)).toEqual(['text'])
  })

  const out = mkdtempSync(join(os.tmpdir(), 'bench-chart-'))
  afterAll(() => rmSync(out, { recursive: true, force: true }))

  it('npm run bench writes a well-formed timeline SVG for an upgrade scenario', async () => {
    // The shortest run with an upgrade under load: c, 2 s, one SIGHUP at 1 s.
    const args = ['bench/run.mjs', '--only', 'c', '--runs', '1', '--duration', '2', '--upgrades', '1', '--warmup', '0', '--floor-runs', '1', '--out', out]
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (output += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (output += d))
    const code = await new Promise((resolve) => child.once('exit', resolve))
    expect(code, output).toBe(0)

    const json = readdirSync(out).filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f))
    expect(json).toHaveLength(1)
    const results = JSON.parse(readFileSync(join(out, json[0]), 'utf8'))
    const chart: string = results.charts.c
    expect(dirname(dirname(dirname(chart)))).toBe(out)
    expect(existsSync(chart)).toBe(true)
    const root = checkChart(readFileSync(chart, 'utf8'))
    // The one upgrade: its start, the new generation ready, the old one gone.
    for (const kind of ['start', 'ready', 'gone']) expect(find(root, 'data-marker', kind), `${kind}\n${output}`).toHaveLength(1)
  })
})
