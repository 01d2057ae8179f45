import { flushCompileCache } from './compile-cache.js'

/**
 * Work a generation does once it is serving rather than while it starts,
 * which is on the upgrade's critical path:
 * - the compile cache goes to disk now, for the next generation, not at exit;
 * - what this process's own upgrade() will need is loaded now, not then:
 *   node:child_process (with the dgram and stream modules it loads), which
 *   the backend takes only when it spawns.
 */
export function afterReady(): void {
  flushCompileCache()
  process.getBuiltinModule('node:child_process')
}
