// What `import 'handover'` loads is on every new generation's critical
// path (an upgrade waits for it). dist/ is an esbuild bundle with code
// splitting (scripts/build-dist.mjs), and dist/bundle-meta.json, esbuild's
// metafile written by the same build, says which source modules each output
// file holds and what it imports. This guards the static import graph of the
// built entry points: how many files and which of our source modules each
// one loads at import, and which Node builtins, so that a change that adds a
// heavy or needless import fails here rather than as a slower upgrade in the
// bench.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIST = join(ROOT, 'dist')

interface Metafile {
  outputs: Record<string, { inputs: Record<string, unknown>; imports: Array<{ path: string; kind: string; external?: boolean }> }>
}
const meta = JSON.parse(readFileSync(join(DIST, 'bundle-meta.json'), 'utf8')) as Metafile
const js = Object.keys(meta.outputs).filter((o) => o.endsWith('.js'))

/** What loading `entry` (a path under dist/) loads before its first line runs: files, source modules, builtins. */
function staticGraph(entry: string): { files: string[]; sources: string[]; builtins: string[] } {
  const files = new Set<string>()
  const sources = new Set<string>()
  const builtins = new Set<string>()
  const visit = (output: string): void => {
    if (files.has(output)) return
    files.add(output)
    for (const input of Object.keys(meta.outputs[output].inputs)) sources.add(relative('src', input))
    for (const { path, kind, external } of meta.outputs[output].imports) {
      if (kind !== 'import-statement') continue
      if (external) builtins.add(path.replace(/^node:/, ''))
      else visit(path)
    }
  }
  visit(`dist/${entry}`)
  return { files: [...files].sort(), sources: [...sources].sort(), builtins: [...builtins].sort() }
}

describe('the bundle', () => {
  it('is what dist/ holds: every output exists, and each imports the chunks the metafile says', () => {
    expect(js.length).toBeGreaterThan(5)
    for (const output of js) {
      const file = join(ROOT, output)
      expect(existsSync(file), output).toBe(true)
      // esbuild writes chunk imports one per statement, `} from "./chunks/x.js";` or `import "./x.js";`.
      const written = [...readFileSync(file, 'utf8').matchAll(/(?:^} from|^import(?: [^"\n]* from)?) "(\.\.?\/[^"]+)";$/gm)]
        .map((m) => relative(ROOT, join(dirname(file), m[1])))
      const expected = meta.outputs[output].imports.filter((i) => i.kind === 'import-statement' && !i.external).map((i) => i.path)
      expect(written.sort(), output).toEqual(expected.sort())
    }
  })

  it('holds each source module once: the preload, the supervisor and the app share one instance of each', () => {
    const where = new Map<string, string[]>()
    for (const output of js) {
      for (const input of Object.keys(meta.outputs[output].inputs)) where.set(input, [...(where.get(input) ?? []), output])
    }
    expect([...where].filter(([, outputs]) => outputs.length > 1)).toEqual([])
    expect(where.get('src/api/upgrader.ts')).toHaveLength(1)
  })
})

describe('the import graph of the built entry points', () => {
  it("import 'handover': the core, the drain and the hooks; no backend, control socket, preload or supervisor", () => {
    const { files, sources, builtins } = staticGraph('index.js')
    // A handful of files, not one per source module: the bundle's point. 8
    // today: esbuild makes one chunk per set of entry points (and lazy
    // modules) that share code, so the lazily loaded http/handoff.js and
    // api/supervised.js, which share connections.ts, errors.ts and the
    // hand-over loop, give each shared set a chunk of its own (a few KB
    // each); a few more tiny files cost next to nothing.
    expect(files.length).toBeLessThanOrEqual(8)
    // 34 today; raise it only for a module every generation needs at import.
    // (24 before the generation model split channel.ts from protocol.ts,
    // option-values.ts from options.ts, and took the inherited environment
    // and the starting signal into modules of their own: the same code in
    // more files, in fewer output files; then follow-up.ts, the deploy queue
    // every generation may need; connection-port.ts, api/connection-handoff.ts,
    // http/listening.ts (which must see servers from their first listen) and
    // http/handoff-targets.ts, small parts of moving connections; the
    // heavy part, http/handoff.ts, is loaded with import(); and
    // http/ticket-keys.ts, which must give a TLS server its keys before its
    // first accept, and imports no node:tls; then issue 20's accept gate
    // (api/accept-gate.ts, http/accept-pause.ts) and ready probe
    // (api/ready-probe.ts, core/probe-report.ts), which must be in place
    // before a new generation's servers listen; http/hand-over.ts, drain()'s
    // hand-over loop split from it. A worker's part, api/supervised.ts, is
    // loaded with import().)
    expect(sources.length).toBeLessThanOrEqual(39)
    expect(sources).not.toContain('api/supervised.ts')
    expect(sources).not.toContain('http/handoff.ts')
    expect(sources).toContain('api/upgrader.ts')
    expect(sources.filter((f) => /^(backend\/(posix|win)|service\/(control-socket|cli|args)|supervisor\/|preload\/(preload|hooks|signals|register))/.test(f))).toEqual([])
    expect(builtins).toContain('net')
    expect(builtins.filter((b) => ['tls', 'http2', 'https', 'cluster', 'dns', 'crypto', 'child_process'].includes(b))).toEqual([])
  })

  it('the backends, the control socket, the run command, the metrics and the probes stay out of every entry point, loaded by import() when needed', () => {
    const lazy = ['backend/posix', 'backend/win', 'service/control-socket', 'service/cli', 'supervisor/run-command', 'service/metrics', 'service/probes']
    for (const entry of ['index.js', 'preload/register.js', 'supervisor/supervisor.js', 'bin.js']) {
      const { sources } = staticGraph(entry)
      expect(lazy.filter((module) => sources.includes(`${module}.ts`)), entry).toEqual([])
    }
    for (const module of lazy) {
      // Its own file, which holds its code and is the target of an import().
      expect(meta.outputs[`dist/${module}.js`].inputs, module).toHaveProperty(`src/${module}.ts`)
      expect(js.some((o) => meta.outputs[o].imports.some((i) => i.path === `dist/${module}.js` && i.kind === 'dynamic-import')), module).toBe(true)
    }
  })

  it('handover run without --metrics loads neither prom-client nor node:http', () => {
    const { builtins } = staticGraph('supervisor/supervisor.js')
    expect(builtins.filter((b) => ['http', 'https', 'http2'].includes(b))).toEqual([])
    const packages = (entry: string): string[] => [...new Set(meta.outputs[`dist/${entry}`].imports.filter((i) => i.kind === 'import-statement' && i.external && !i.path.startsWith('node:')).map((i) => i.path))]
    expect(packages('supervisor/supervisor.js')).not.toContain('prom-client')
    expect(packages('service/metrics.js')).toEqual([])
    // prom-client comes with import() from the metrics module alone.
    expect(js.filter((o) => meta.outputs[o].imports.some((i) => i.path === 'prom-client'))).toEqual(['dist/service/metrics.js'])
  })

  it('handover/register adds only the preload itself', () => {
    const core = new Set(staticGraph('index.js').sources)
    const extra = staticGraph('preload/register.js').sources.filter((f) => !core.has(f))
    expect(extra.sort()).toEqual([
      'preload/hooks.ts', 'preload/in-thread.ts', 'preload/listen-args.ts', 'preload/preload.ts', 'preload/register.ts',
      'preload/signals.ts', 'preload/socket-state.ts', 'preload/thread-messages.ts', 'preload/threads.ts',
    ])
    // A worker_thread is told apart without node:worker_threads, which costs every generation's start milliseconds.
    expect(staticGraph('preload/register.js').builtins).not.toContain('worker_threads')
  })

  it('register.cjs is a require() of the ES module preload, not a bundle of its own', () => {
    const cjs = readFileSync(join(DIST, 'preload', 'register.cjs'), 'utf8')
    expect([...cjs.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1])).toEqual(['./preload.js'])
    expect(staticGraph('preload/preload.js').sources).toContain('preload/preload.ts')
  })
})
