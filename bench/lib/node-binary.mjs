// --node: which node runs the servers, the floors and j. A path is used as
// it is; a version (26, 22.12.0, 24.x) is fetched from npm's node-<os>-<arch>
// packages by scripts/fetch-node.sh, which caches it (DEV_CACHE_DIR or
// ~/.cache/handover-dev), so only the first use downloads.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const FETCH = fileURLToPath(new URL('../../scripts/fetch-node.sh', import.meta.url))

/** { path, version } of the node to run; throws with the reason when there is none. */
export function resolveNode(spec) {
  let path = process.execPath
  if (spec !== undefined && /^\d+(\.(\d+|x)){0,2}$/.test(spec)) {
    const fetched = spawnSync('bash', [FETCH, `node-${process.platform}-${process.arch}@${spec}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    if (fetched.status !== 0) throw new Error(`--node ${spec}: scripts/fetch-node.sh failed`)
    path = join(fetched.stdout.trim(), 'bin', 'node')
  } else if (spec !== undefined) {
    path = spec
  }
  if (!existsSync(path)) throw new Error(`--node: no such file ${path}`)
  const out = spawnSync(path, ['--version'], { encoding: 'utf8' })
  if (out.status !== 0) throw new Error(`--node: ${path} --version failed: ${out.stderr || out.error?.message}`)
  return { path, version: out.stdout.trim() }
}
