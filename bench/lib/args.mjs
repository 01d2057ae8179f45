// Command-line options of `npm run bench`. Every figure the run prints
// depends on these, so they are written into the results JSON as given.
// m runs right after f, its peer without --metrics and --probes, so the two see the same minute.
const SCENARIOS = ['a', 'b', 'c', 'd', 'e', 'f', 'm', 'g', 'h', 'i', 'j', 'k', 'l']
// Run --runs times (default 3), interleaved: round 1 runs each of them once, then round 2...
export const REPEATED = ['a', 'b', 'c', 'd', 'e', 'f', 'm', 'g', 'h', 'i']
const MODES = ['api', 'preload', 'run']
const HAND_OFF = ['on', 'off']

const DEFAULTS = {
  duration: 30, // seconds of load per scenario (a to i)
  connections: 50,
  threads: 1,
  upgrades: 8, // per scenario c, d, e, g, h
  interval: 3, // seconds between upgrades (at 2 s, a busy 2-core VM could not finish a rolling restart in time)
  warmup: 2, // seconds of load before each measurement, not counted
  runs: undefined, // rounds: default 3 for a to i and m (REPEATED), 1 for k and l; j runs once (--floor-runs)
  floorRuns: 10, // also the runs of each of j's measurements
  nginxUpgrades: 20, // upgrades per mode and hand-off setting in l
  modes: MODES.join(','), // k and l: api, preload, run
  handOff: HAND_OFF.join(','), // k and l: on, off
  clusterKillAfter: 5000, // ms a disconnected cluster worker gets before SIGTERM
  soak: 0, // upgrades in the soak; 0 = no soak
  soakSupervisor: 0, // generations in the `handover run` soak; 0 = none
  tool: 'auto',
  drain: 'handover',
  only: undefined,
  node: undefined, // the node that runs the servers, floors and j; default: the one running the bench
  out: undefined, // results folder; default bench/results
}

const USAGE = `usage: npm run bench -- [options]
  --duration S        seconds of load per scenario (default ${DEFAULTS.duration})
  --connections N     concurrent connections (default ${DEFAULTS.connections})
  --threads N         load generator threads, wrk only (default ${DEFAULTS.threads})
  --upgrades N        upgrades / rolling restarts in c, d, e, g, h, and per mode in k
                      (default ${DEFAULTS.upgrades})
  --interval S        seconds between them in c to h (default ${DEFAULTS.interval})
  --runs R            rounds: each scenario runs once per round, in order, so that
                      the tools compared see the same noise; medians across rounds,
                      ratios taken within a round (default 3 for a to i, 1 for k
                      and l; j runs once, its --floor-runs are its runs)
  --warmup S          unmeasured load before each scenario (default ${DEFAULTS.warmup})
  --floor-runs N      runs per start-up floor, and per measurement of j
                      (median taken; default ${DEFAULTS.floorRuns})
  --cluster-kill-after MS  ms a disconnected cluster worker may linger (default ${DEFAULTS.clusterKillAfter})
  --only a,b,...      scenarios to run (a plain, b steady, c keep-alive upgrades,
                      d Connection: close upgrades, e cluster rolling restart,
                      f handover run 2 workers steady, g its keep-alive upgrades,
                      h its Connection: close upgrades, i cluster 2 workers steady,
                      j an express app: cold start against an upgrade, no load,
                      k a proxy-like keep-alive pool through upgrades in each mode,
                      l nginx in front of each mode, 502s over its upgrades,
                      m f with --metrics and --probes on, scraped every second)
  --modes api,preload,run   k and l: which products (default all three)
  --hand-off on,off   k and l: with connection hand-off, without, or both (default)
  --nginx-upgrades N  upgrades per mode and hand-off setting in l (default ${DEFAULTS.nginxUpgrades})
  --soak N            N back-to-back upgrades under keep-alive load, fd count every 20
                      (alone unless --only is given too)
  --soak-supervisor N the same for \`handover run\` with 2 workers: N generations, the
                      supervisor's and the current workers' fd counts every 20
  --tool wrk|autocannon   default: wrk when it is on PATH
  --drain naive       control experiment: the handover server drains with
                      close() + closeAllConnections() after 500 ms instead of drain()
  --node PATH|VERSION the node binary that runs the servers, the floors and j (the
                      load generator and the driver stay on this one); a version
                      such as 26 or 22.12.0 is fetched with scripts/fetch-node.sh
  --out DIR           where <date>.json and <date>-<time>/charts/*.svg go
                      (default bench/results)`

/** A comma-separated subset of `allowed`, kept in `allowed`'s order. */
function list(flag, text, allowed) {
  const given = text.split(',').map((s) => s.trim()).filter(Boolean)
  const unknown = given.filter((s) => !allowed.includes(s))
  if (unknown.length || !given.length) throw new Error(`${flag} takes ${allowed.join(',')}, not ${text}`)
  return allowed.filter((s) => given.includes(s))
}

/** How many rounds scenario `id` runs. */
export function runsOf(o, id) {
  if (id === 'j') return 1
  return o.runs ?? (REPEATED.includes(id) ? 3 : 1)
}

export function parseArgs(argv) {
  const o = { ...DEFAULTS }
  const number = (flag, v, min) => {
    const n = Number(v)
    if (!Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number >= ${min}, not ${JSON.stringify(v)}`)
    return n
  }
  const text = (flag, v) => {
    if (!v) throw new Error(`${flag} needs a value`)
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const [name, inline] = flag.split(/=(.*)/s)
    const value = () => inline ?? argv[++i]
    switch (name) {
      case '--duration': o.duration = number(name, value(), 1); break
      case '--connections': o.connections = number(name, value(), 1); break
      case '--threads': o.threads = number(name, value(), 1); break
      case '--upgrades': o.upgrades = number(name, value(), 0); break
      case '--interval': o.interval = number(name, value(), 0.1); break
      case '--warmup': o.warmup = number(name, value(), 0); break
      case '--floor-runs': o.floorRuns = number(name, value(), 1); break
      case '--runs': o.runs = number(name, value(), 1); break
      case '--nginx-upgrades': o.nginxUpgrades = number(name, value(), 1); break
      case '--modes': o.modes = text(name, value()); break
      case '--hand-off': o.handOff = text(name, value()); break
      case '--cluster-kill-after': o.clusterKillAfter = number(name, value(), 0); break
      case '--soak': o.soak = number(name, value(), 1); break
      case '--soak-supervisor': o.soakSupervisor = number(name, value(), 1); break
      case '--tool': o.tool = value(); break
      case '--only': o.only = value(); break
      case '--drain': o.drain = value(); break
      case '--node': o.node = text(name, value()); break
      case '--out': o.out = text(name, value()); break
      case '-h': case '--help': return { help: USAGE }
      default: throw new Error(`unknown option ${flag}\n${USAGE}`)
    }
  }
  if (!['auto', 'wrk', 'autocannon'].includes(o.tool)) throw new Error(`--tool must be wrk or autocannon, not ${o.tool}`)
  if (!['handover', 'naive'].includes(o.drain)) throw new Error(`--drain must be handover or naive, not ${o.drain}`)
  const only = o.only === undefined ? (o.soak || o.soakSupervisor ? [] : SCENARIOS) : o.only.split(',').map((s) => s.trim()).filter(Boolean)
  const unknown = only.filter((s) => !SCENARIOS.includes(s))
  if (unknown.length) throw new Error(`--only takes ${SCENARIOS.join(',')}, not ${unknown.join(',')}`)
  o.scenarios = SCENARIOS.filter((s) => only.includes(s))
  if (o.runs !== undefined && !Number.isInteger(o.runs)) throw new Error(`--runs needs a whole number, not ${o.runs}`)
  o.modeList = list('--modes', o.modes, MODES)
  o.handOffList = list('--hand-off', o.handOff, HAND_OFF)
  // The upgrades have to fit in the load, with one interval left to settle.
  const fits = (o.upgrades + 1) * o.interval <= o.duration
  o.upgradeInterval = fits || o.upgrades === 0 ? o.interval : o.duration / (o.upgrades + 1)
  return o
}
