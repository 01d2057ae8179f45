// Not a target, an explanation: the start + listen floor again, but measured
// while the plain server is under the same keep-alive load as scenario c.
// On a 2-core machine the load generator and the old process keep both
// cores busy, so any new process starts slower than it does idle; an
// upgrade under load is best compared with this.
import { FLOORS, timeOnce } from './floor.mjs'
import { startLoad } from './load.mjs'
import { BenchServer } from './launch.mjs'
import { sleep } from './proc.mjs'
import { max, median, min } from './stats.mjs'

export async function measureLoadedFloor(runs, { tool, options: o, dir, node }) {
  const server = await BenchServer.start('loaded-floor', 'plain.mjs', dir, {}, node.path)
  const load = startLoad(tool, { url: server.url, seconds: 3600, connections: o.connections, threads: o.threads })
  const ms = []
  try {
    await sleep(1000)
    for (let i = 0; i < runs; i++) ms.push(await timeOnce(FLOORS.listen.args, node.path))
  } finally {
    load.stop()
    await load.result.catch(() => {})
    await server.stop()
  }
  return { label: `${FLOORS.listen.label}, under load`, medianMs: median(ms), minMs: min(ms), maxMs: max(ms), runs: ms }
}
