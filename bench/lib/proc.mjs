// What the bench reads about processes from /proc (Linux only).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import net from 'node:net'

const read = (path) => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** "/proc/<pid>/stat" fields after the command name, which may hold spaces. */
function statFields(pid) {
  const stat = read(`/proc/${pid}/stat`)
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** A zombie is gone for our purposes: it serves nothing and holds no fd. */
export function isAlive(pid) {
  const f = statFields(pid)
  return f !== undefined && f[0] !== 'Z' && f[0] !== 'X'
}

/** Resident set in KiB, 0 for a process that is gone. */
export function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(read(`/proc/${pid}/status`) ?? '')
  return m ? Number(m[1]) : 0
}

export function childrenOf(pid) {
  const out = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const f = statFields(name)
    if (f && Number(f[1]) === pid && f[0] !== 'Z') out.push(Number(name))
  }
  return out
}

/** Sockets in this network namespace by inode: local port and TCP state (0A = listening). */
function tcpSockets() {
  const byInode = new Map()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (read(file) ?? '').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols.length < 10) continue
      byInode.set(cols[9], { port: parseInt(cols[1].split(':')[1], 16), state: cols[3] })
    }
  }
  return byInode
}

/**
 * The open fds of a process, split so that a leak shows apart from the load:
 * `connections` are TCP sockets on `port` other than the listener, which come
 * and go with the clients; `base` is everything else.
 */
export function fdCensus(pid, port) {
  let names
  try {
    names = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return undefined
  }
  const sockets = tcpSockets()
  let connections = 0
  for (const fd of names) {
    let target
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`)
    } catch {
      continue // closed while we looked
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
    const s = inode && sockets.get(inode)
    if (s && s.port === port && s.state !== '0A') connections++
  }
  return { total: names.length, connections, base: names.length - connections }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `check()` returns something truthy; throws after `timeout` ms. */
export async function waitFor(what, check, timeout, every = 20) {
  const deadline = Date.now() + timeout
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await sleep(every)
  }
}
