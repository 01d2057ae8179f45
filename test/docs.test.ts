// The README, CONTRIBUTING.md and docs/: every relative link reaches a file
// (and a heading, for an anchor), the README stays short, and a code block
// that shows an example file is that file byte for byte, so the docs cannot
// drift from code that test/examples.test.ts (or the systemd lane) runs.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers/preload-app.js'

const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8')
const DOCS = ['README.md', 'CONTRIBUTING.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]

/** The text outside fenced code blocks and inline code spans, line for line. */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, (block) => block.replace(/[^\n]/g, ' ')).replace(/`[^`\n]*`/g, (span) => ' '.repeat(span.length))
}

/** The contents of every fenced code block. */
function codeBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```$/gm)].map((m) => m[1])
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const result = new Set<string>()
  const withoutCode = markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '')
  for (const [, text] of withoutCode.matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    result.add(n === 0 ? base : `${base}-${n}`)
  }
  return result
}

function links(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1])
}

describe('the docs', () => {
  it('README.md is at most 300 lines', () => {
    expect(read('README.md').split('\n').length - 1).toBeLessThanOrEqual(300)
  })

  it('the README links to every file in docs/ and to CONTRIBUTING.md', () => {
    const linked = new Set(links(read('README.md')).map((l) => l.split('#')[0]))
    for (const doc of DOCS.filter((d) => d !== 'README.md')) expect(linked, doc).toContain(doc)
  })

  it.each(DOCS)('every relative link in %s reaches a file, and every anchor a heading', (doc) => {
    const text = read(doc)
    const problems: string[] = []
    let relativeLinks = 0
    for (const target of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:
      relativeLinks++
      const [path, anchor] = target.split('#')
      const file = path === '' ? doc : relative(ROOT, join(ROOT, dirname(doc), path))
      if (file.startsWith('..') || !existsSync(join(ROOT, file))) {
        problems.push(`${target}: no file ${file}`)
        continue
      }
      if (anchor === undefined) continue
      if (!file.endsWith('.md') || statSync(join(ROOT, file)).isDirectory()) {
        problems.push(`${target}: an anchor into ${file}, which is not a markdown file`)
      } else if (!anchors(read(file)).has(anchor)) {
        problems.push(`${target}: ${file} has no heading #${anchor}`)
      }
    }
    expect(problems).toEqual([])
    expect(relativeLinks).toBeGreaterThan(0)
  })

  it('finds the anchors GitHub makes', () => {
    const slugs = anchors('# A\n## `upg.upgrade(options?)`\n## Stopping after a hand-off: `ExecStop=handover stop`\n## A\n```sh\n# not a heading\n```\n')
    expect([...slugs]).toEqual(['a', 'upgupgradeoptions', 'stopping-after-a-hand-off-execstophandover-stop', 'a-1'])
  })
})

/** Which doc shows which example file, byte for byte. */
const SHOWN: Record<string, string[]> = {
  'README.md': ['examples/quick-start/server.mjs', 'examples/quick-start/app.mjs'],
  'docs/api.md': ['examples/quick-start/server.cjs'],
  'docs/frameworks.md': ['examples/fastify-api/server.mjs', 'examples/nestjs/main.mjs'],
  'docs/deployment.md': ['examples/docker/Dockerfile', 'examples/docker/app.js', 'examples/docker/package.json'],
  'docs/long-lived.md': ['ws', 'socketio', 'sse', 'mqtt', 'grpc'].map((name) => `examples/long-lived/${name}.mjs`),
  'docs/systemd.md': ['examples/systemd/server.js', 'examples/systemd/app.js', ...['notify-reload', 'notify', 'pidfile', 'run'].flatMap((d) =>
    readdirSync(join(ROOT, 'examples/systemd', d)).map((f) => `examples/systemd/${d}/${f}`))],
}

describe('the examples the docs show', () => {
  it.each(Object.entries(SHOWN).flatMap(([doc, files]) => files.map((file) => [doc, file])))('%s shows %s byte for byte', (doc, file) => {
    expect(codeBlocks(read(doc))).toContain(read(file))
  })

  it('every file in examples/quick-start/ and examples/fastify-api/ is shown, and run by test/examples.test.ts', () => {
    const shown = new Set(Object.values(SHOWN).flat())
    const runner = read('test/examples.test.ts')
    for (const dir of ['examples/quick-start', 'examples/fastify-api']) {
      for (const name of readdirSync(join(ROOT, dir))) {
        const file = `${dir}/${name}`
        expect(shown, file).toContain(file)
        // The test names the file, or its directory and its name apart (it.each over names).
        expect(runner.includes(file) || (runner.includes(dir) && runner.includes(`'${name}'`)), `${file} is not run by test/examples.test.ts`).toBe(true)
      }
    }
  })

  it("docs/api.md's handover run options are `handover run --help`'s, line for line", () => {
    const help = execFileSync(process.execPath, [join(ROOT, 'dist/bin.js'), 'run', '--help'], { encoding: 'utf8' })
    const options = help.split('\n').filter((l) => l.startsWith('  -'))
    const block = codeBlocks(read('docs/api.md')).find((b) => b.startsWith('handover run [options]'))
    expect(block?.split('\n').filter((l) => l.startsWith('  -'))).toEqual(options)
  })
})
