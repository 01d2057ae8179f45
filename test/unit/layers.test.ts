// The architecture `ls src` shows: each directory imports only the ones
// below it, and core/ imports nothing else from src/ (no type-only import
// either: a cycle of types is still a cycle a reader has to untangle).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))
const CONTRIBUTING = readFileSync(fileURLToPath(new URL('../../CONTRIBUTING.md', import.meta.url)), 'utf8')

/** What each directory may import, besides itself. */
const MAY_IMPORT: Record<string, string[]> = {
  core: [],
  backend: ['core'],
  http: ['core'],
  service: ['core', 'backend'],
  api: ['core', 'backend', 'service', 'http'],
  preload: ['core', 'backend', 'service', 'http', 'api'],
  supervisor: ['core', 'backend', 'service', 'http'],
  '.': ['core', 'backend', 'service', 'http', 'api', 'preload', 'supervisor'],
}

function sources(dir = SRC): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sources(path)
    return /\.c?ts$/.test(name) ? [path] : []
  })
}

/** Every relative module a file imports or re-exports, static or dynamic, type-only included. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const found = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1])
  return found.map((spec) => relative(SRC, resolve(dirname(file), spec)))
}

const layerOf = (path: string): string => (path.includes('/') ? path.split('/')[0] : '.')

describe('the layers of src/', () => {
  it('each directory imports only the ones below it; core/ nothing', () => {
    const wrong: string[] = []
    for (const file of sources()) {
      const from = layerOf(relative(SRC, file))
      for (const target of imports(file)) {
        const to = layerOf(target)
        if (to !== from && !MAY_IMPORT[from].includes(to)) wrong.push(`${relative(SRC, file)} imports ${target}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it('no two modules import each other, even for types', () => {
    const edges = new Map(sources().map((f) => [relative(SRC, f).replace(/\.c?ts$/, ''), imports(f).map((t) => t.replace(/\.c?js$/, ''))]))
    const cycles = [...edges].flatMap(([a, targets]) => targets.filter((b) => edges.get(b)?.includes(a)).map((b) => `${a} <-> ${b}`))
    expect(cycles).toEqual([])
  })

  it("CONTRIBUTING.md's source map names every directory of src/, and only those", () => {
    const dirs = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory()).sort()
    const mapped = [...CONTRIBUTING.matchAll(/^src\/([a-z]+)\/\s/gm)].map((m) => m[1]).sort()
    expect(mapped).toEqual(dirs)
    expect(Object.keys(MAY_IMPORT).filter((d) => d !== '.').sort()).toEqual(dirs)
  })
})
