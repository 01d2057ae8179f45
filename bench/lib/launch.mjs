// Starts one bench server (plain.mjs, server.mjs, cluster.mjs or supervised.mjs) with its own
// port, events file, pid file and log, and follows it through upgrades.
import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { childrenOf, freePort, isAlive, rssKiB, sleep, waitFor } from './proc.mjs'

export class BenchServer {
  /** `name` keeps this run's files apart from other runs of the same script; `node` runs it (--node). */
  static async start(name, script, dir, env = {}, node = process.execPath) {
    const port = await freePort()
    const files = { events: join(dir, `${name}.events`), pidFile: join(dir, `${name}.pid`), log: join(dir, `${name}.log`) }
    const log = openSync(files.log, 'a')
    const child = spawn(node, [fileURLToPath(new URL(`../${script}`, import.meta.url))], {
      env: {
        ...process.env,
        ...env,
        BENCH_PORT: String(port),
        BENCH_EVENTS: files.events,
        BENCH_PID_FILE: files.pidFile,
      },
      stdio: ['ignore', log, log],
    })
    closeSync(log)
    const server = new BenchServer(script, port, files, child)
    await waitFor(`${script} to be ready (log: ${files.log})`, () => server.events('ready').length > 0 || child.exitCode !== null, 15_000)
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}:\n${server.logTail()}`)
    return server
  }

  constructor(script, port, files, child) {
    this.script = script
    this.port = port
    this.files = files
    this.child = child
    this.url = `http://127.0.0.1:${port}/`
  }

  /** The JSON lines the server's processes appended, optionally of one kind. */
  events(kind) {
    let text = ''
    try {
      text = readFileSync(this.files.events, 'utf8')
    } catch {}
    const all = text.split('\n').filter(Boolean).map((l) => JSON.parse(l))
    return kind ? all.filter((e) => e.event === kind) : all
  }

  /** The process to signal: the pid file names the current generation (or the cluster primary). */
  currentPid() {
    return Number(readFileSync(this.files.pidFile, 'utf8').trim())
  }

  /** Every process that is or was serving, and their children, still alive now. */
  servingTree() {
    const pids = new Set()
    for (const { pid } of this.events('ready')) {
      if (!isAlive(pid)) continue
      pids.add(pid)
      for (const c of childrenOf(pid)) pids.add(c)
    }
    return [...pids]
  }

  rssKiB() {
    return this.servingTree().reduce((sum, pid) => sum + rssKiB(pid), 0)
  }

  /**
   * For a supervisor or cluster primary: its own RSS (`main`) and its
   * children's, the workers (`children`). Their sum is rssKiB().
   */
  rssSplitKiB() {
    let main = 0
    let children = 0
    for (const { pid } of this.events('ready')) {
      if (!isAlive(pid)) continue
      main += rssKiB(pid)
      for (const c of childrenOf(pid)) children += rssKiB(c)
    }
    return { main, children }
  }

  logTail(lines = 20) {
    try {
      return readFileSync(this.files.log, 'utf8').split('\n').slice(-lines).join('\n')
    } catch {
      return ''
    }
  }

  /** SIGTERM to the current generation; SIGKILL to anything of ours still alive after `timeout`. */
  async stop(timeout = 35_000) {
    const signal = (pid, sig) => {
      try {
        process.kill(pid, sig)
      } catch {}
    }
    const everyPid = () => [...new Set(this.events().flatMap((e) => [e.pid, e.to, ...(e.workers ?? [])]).filter(Boolean))]
    let current
    try {
      current = [this.currentPid()]
    } catch {
      current = everyPid() // no pid file: the server died or never got ready
    }
    for (const pid of current) signal(pid, 'SIGTERM')
    try {
      await waitFor(`${this.script} to exit`, () => everyPid().every((pid) => !isAlive(pid)), timeout, 50)
      return true
    } catch {
      for (const pid of everyPid()) signal(pid, 'SIGKILL')
      await sleep(200)
      return false
    }
  }
}
