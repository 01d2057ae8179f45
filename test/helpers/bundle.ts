// For a test that runs one of src/'s modules in a process of its own (in a
// cgroup, under taskset) when dist/ does not carry that module on its own:
// esbuild (the build's own bundler) makes one ES module file of it.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Bundles `source` (TypeScript, relative to the repository) with `main`
 * appended; returns the .mjs path and a cleanup. The file lands under
 * node_modules/.cache so that the packages left external (prom-client)
 * resolve from it as from the repository.
 */
export async function bundleScript(source: string, main: string): Promise<{ path: string; remove: () => void }> {
  const parent = join(ROOT, 'node_modules', '.cache', 'handover-test-bundles')
  mkdirSync(parent, { recursive: true })
  const dir = mkdtempSync(join(parent, 'bundle-'))
  const path = join(dir, 'script.mjs')
  await esbuild.build({
    absWorkingDir: ROOT,
    stdin: { contents: `import * as m from './${source}'\n${main}\n`, resolveDir: ROOT, loader: 'ts' },
    outfile: path,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    packages: 'external',
    logLevel: 'warning',
  })
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) }
}
