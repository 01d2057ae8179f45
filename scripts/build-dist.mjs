// `npm run build:ts`: dist/ from src/. tsc type-checks and writes the .d.ts
// files; esbuild bundles the JavaScript, because every module a new
// generation loads is on an upgrade's critical path: `import 'handover'`
// reads a handful of files instead of one per source module.
//
// - The package's entry points keep their paths (package.json's exports and
//   bin); the modules loaded lazily with import() keep theirs too, and stay
//   out of what the entry points load at import.
// - Code shared by two entry points lands in one chunk (dist/chunks/), never
//   in two copies: an app that imports 'handover' and the preload it runs
//   under share the same module instances.
// - dist/preload/register.cjs stays a thin require() of dist/preload/preload.js.
// - Source maps point at src/ (node --enable-source-maps).
// - dist/bundle-meta.json, esbuild's metafile, says which source modules
//   each output holds and what it imports (test/import-graph.test.ts reads
//   it); it is left out of the package (package.json "files").
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as esbuild from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIST = join(ROOT, 'dist')

/** dist path (without .js) → source. The first five are the package's entry points. */
export const ENTRY_POINTS = {
  index: 'src/index.ts',
  'preload/register': 'src/preload/register.ts',
  // What register.cjs requires: the ESM module instances the app's own import shares.
  'preload/preload': 'src/preload/preload.ts',
  'supervisor/supervisor': 'src/supervisor/supervisor.ts',
  bin: 'src/bin.ts',
  // Loaded with import() when needed; named so their paths stay readable and stable.
  'service/cli': 'src/service/cli.ts',
  'backend/posix': 'src/backend/posix.ts',
  'backend/win': 'src/backend/win.ts',
  'service/control-socket': 'src/service/control-socket.ts',
  // handover/register's control socket: where it goes (shared with handover run, which imports it at once).
  'service/control-claim': 'src/service/control-claim.ts',
  'supervisor/run-command': 'src/supervisor/run-command.ts',
  'http/long-lived': 'src/http/long-lived.ts',
  'http/handoff': 'src/http/handoff.ts',
  'api/supervised': 'src/api/supervised.ts',
  // handover run --metrics and --probes: their HTTP servers (and prom-client) only when asked for.
  'service/metrics': 'src/service/metrics.ts',
  'service/probes': 'src/service/probes.ts',
}

/** The esbuild options for dist/'s JavaScript (register.cjs aside). */
export function bundleOptions() {
  return {
    absWorkingDir: ROOT,
    entryPoints: ENTRY_POINTS,
    outdir: DIST,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    // node-gyp-build and node-addon-api stay dependencies, resolved at run time.
    packages: 'external',
    chunkNames: 'chunks/[name]-[hash]',
    sourcemap: true,
    sourcesContent: true,
    metafile: true,
    logLevel: 'warning',
  }
}

/**
 * `import { readFileSync } from 'node:fs'` makes Node build an ES module
 * namespace of all of node:fs, which reads every lazy getter on it: fs's
 * `promises` loads fs/promises and more, util's and net's load theirs, and
 * on Node 26 http's `WebSocket` loads undici. process.getBuiltinModule()
 * hands over the CommonJS exports object as it is, so only the names used
 * are read. esbuild puts a chunk's builtin imports at its top, one statement
 * each; rewritten in place, line for line, so the source map still holds.
 */
function builtinsWithoutNamespaces(code, path) {
  const rewritten = code
    .replace(/^import \* as (\w+) from "(node:[\w/]+)";$/gm, 'const $1 = process.getBuiltinModule("$2");')
    .replace(/^import (\w+) from "(node:[\w/]+)";$/gm, 'const $1 = process.getBuiltinModule("$2");')
    .replace(/^import (\w+), (\{[^}]*\}) from "(node:[\w/]+)";$/gm, (_, name, names, id) => `const ${name} = process.getBuiltinModule("${id}"), ${destructure(names)} = ${name};`)
    .replace(/^import (\{[^}]*\}) from "(node:[\w/]+)";$/gm, (_, names, id) => `const ${destructure(names)} = process.getBuiltinModule("${id}");`)
  const left = /^(?:import|export)\b[^;]*?from "node:[^"]*";$/m.exec(rewritten)
  if (left) throw new Error(`${path}: a builtin import this build cannot rewrite: ${left[0]}`)
  return rewritten
}

/** `{ a, b as c }` → `{ a, b: c }` (the newlines stay). */
const destructure = (names) => names.replace(/\b(\w+) as (\w+)\b/g, '$1: $2')

/**
 * The rewrite above turns hoisted imports into statements that run in order,
 * which is the same only while no chunk imports, directly or not, one that
 * imports it back: in a cycle, a chunk's functions could run before its
 * builtins are assigned. esbuild makes none today; this says if it ever does.
 */
function checkNoChunkCycles(metafile) {
  const state = new Map()
  const visit = (output, path) => {
    if (state.get(output) === 'done') return
    if (state.get(output) === 'open') throw new Error(`chunks import each other: ${[...path.slice(path.indexOf(output)), output].join(' -> ')}`)
    state.set(output, 'open')
    for (const { path: next, kind, external } of metafile.outputs[output].imports) {
      if (kind === 'import-statement' && !external) visit(next, [...path, output])
    }
    state.set(output, 'done')
  }
  for (const output of Object.keys(metafile.outputs)) if (output.endsWith('.js')) visit(output, [])
}

/**
 * A module that resolves a path from its own import.meta.url ('../..' to the
 * package root, '../preload/register.js') only works from an output file at
 * the same depth below dist/ as its source is below src/: true for
 * dist/chunks/* and dist/<dir>/*, not for dist/index.js.
 */
function checkRelativeUrls(metafile) {
  const wrong = []
  for (const [output, { inputs }] of Object.entries(metafile.outputs)) {
    if (!output.endsWith('.js')) continue
    const outDepth = relative('dist', output).split('/').length
    for (const input of Object.keys(inputs)) {
      if (!/new URL\(\s*['"]\.\.?\//.test(readFileSync(join(ROOT, input), 'utf8'))) continue
      const inDepth = relative('src', input).split('/').length
      if (inDepth !== outDepth) wrong.push(`${input} (depth ${inDepth}) bundled into ${output} (depth ${outDepth})`)
    }
  }
  if (wrong.length) throw new Error(`relative import.meta.url paths would break:\n  ${wrong.join('\n  ')}`)
}

export async function buildDist() {
  rmSync(DIST, { recursive: true, force: true })
  // Types, and the type check: the emitted .js comes from esbuild below.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' })

  const { metafile, outputFiles } = await esbuild.build({ ...bundleOptions(), write: false })
  checkRelativeUrls(metafile)
  checkNoChunkCycles(metafile)
  for (const file of outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true })
    writeFileSync(file.path, file.path.endsWith('.js') ? builtinsWithoutNamespaces(file.text, file.path) : file.contents)
  }
  writeFileSync(join(DIST, 'bundle-meta.json'), `${JSON.stringify(metafile, null, 1)}\n`)
  // The command runs as a file of its own (a container's CMD, a .bin link), not only through npm's shim.
  chmodSync(join(DIST, 'bin.js'), 0o755)

  // CommonJS: require() of the ESM preload, not a bundle of its own, so the
  // preload and an app that imports 'handover' share one set of modules.
  await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ['src/preload/register.cts'],
    outfile: join(DIST, 'preload', 'register.cjs'),
    bundle: false,
    format: 'cjs',
    platform: 'node',
    target: 'node20.19',
    sourcemap: true,
    logLevel: 'warning',
  })
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await buildDist()
