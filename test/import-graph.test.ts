// What `import 'handover'` loads is on every new generation's critical
// path (an upgrade waits for it). This guards the static import graph of the
// built entry points: which of our modules each one pulls in at import, and
// how many, so that a change that adds a heavy or needless import fails here
// rather than as a slower upgrade in the bench.
import { readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const DIST = fileURLToPath(new URL('../dist/', import.meta.url))

/** Every dist module reachable from `entry` through static imports (dynamic import() is lazy, and not followed). */
function staticGraph(entry: string): { files: string[]; builtins: string[] } {
  const files = new Set<string>()
  const builtins = new Set<string>()
  const visit = (file: string): void => {
    if (files.has(file)) return
    files.add(file)
    const source = readFileSync(file, 'utf8')
    for (const m of source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
      const spec = m[1] ?? m[2]
      if (spec.startsWith('node:')) builtins.add(spec.slice(5))
      else if (spec.startsWith('.')) visit(join(dirname(file), spec))
    }
  }
  visit(join(DIST, entry))
  return { files: [...files].map((f) => relative(DIST, f)).sort(), builtins: [...builtins].sort() }
}

describe('the import graph of the built entry points', () => {
  it("import 'handover': the core, the drain and the hooks; no backend, control socket, preload or supervisor (but the worker's end of its link)", () => {
    const { files, builtins } = staticGraph('index.js')
    // 21 today; raise it only for a module every generation needs at import.
    expect(files.length).toBeLessThanOrEqual(21)
    expect(files.filter((f) => /^(backend\/(posix|win)|service\/(control-socket|cli)|supervisor\/(?!worker-link)|preload\/(preload|hooks|signals|register))/.test(f))).toEqual([])
    expect(builtins.filter((b) => ['tls', 'http2', 'https', 'cluster', 'dns', 'crypto', 'child_process'].includes(b))).toEqual([])
  })

  it('handover/register adds only the preload itself', () => {
    const core = new Set(staticGraph('index.js').files)
    const extra = staticGraph('preload/register.js').files.filter((f) => !core.has(f))
    expect(extra.sort()).toEqual(['preload/hooks.js', 'preload/listen-args.js', 'preload/preload.js', 'preload/register.js', 'preload/settings.js', 'preload/signals.js'])
  })
})
