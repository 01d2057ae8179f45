// One fd per listener in a worker of `handover run`: a worker used to hold
// the socket the supervisor passed plus a duplicate for its server, so with
// `ulimit -n 256` and 100 listeners a worker had about 220 fds before its
// first connection, and a 100-connection probe got ECONNRESET on 30-45
// ports (libuv accepts and drops a connection at EMFILE). Linux: /proc.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from './helpers/clients.mjs'
import { handover, statusOf } from './helpers/ops.js'
import { killSupervised, Supervised } from './helpers/supervisor.js'

afterEach(killSupervised)

const LISTENERS = 100

async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

/** The inodes of the sockets listening on 127.0.0.1 at `ports`, from /proc/net/tcp. */
function listeningInodes(ports: number[]): Map<number, string> {
  const wanted = new Set(ports)
  const out = new Map<number, string>()
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 10 || f[3] !== '0A') continue
    const [ip, port] = f[1].split(':')
    if (ip === '0100007F' && wanted.has(parseInt(port, 16))) out.set(parseInt(port, 16), f[9])
  }
  return out
}

/** How many of `pid`'s fds are each socket inode. */
function fdsPerInode(pid: number): Map<string, number> {
  const counts = new Map<string, number>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`)
    } catch {
      continue
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
    if (inode) counts.set(inode, (counts.get(inode) ?? 0) + 1)
  }
  return counts
}

/**
 * One connection to each port, all open at once: each sends a request, and
 * none is closed before every one has its answer (or failed). Resolves with
 * the failures by port, and the pids that answered.
 */
async function probe(ports: number[]): Promise<{ failed: Record<number, string>; pids: Set<number> }> {
  const sockets: net.Socket[] = []
  const failed: Record<number, string> = {}
  const pids = new Set<number>()
  await Promise.all(ports.map((port) => new Promise<void>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    sockets.push(socket)
    let data = ''
    const timer = setTimeout(() => {
      failed[port] = 'timed out'
      resolve()
    }, 10_000)
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: probe\r\n\r\n'))
    socket.on('data', (chunk: string) => {
      data += chunk
      const body = /\r\n\r\n(\d+)$/.exec(data)
      if (!body) return
      clearTimeout(timer)
      pids.add(Number(body[1]))
      resolve()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      failed[port] = err.code ?? err.message
      resolve()
    })
    socket.on('close', () => {
      clearTimeout(timer)
      if (!/\r\n\r\n\d+$/.test(data)) failed[port] ??= 'closed without an answer'
      resolve()
    })
  })))
  for (const s of sockets) s.destroy()
  return { failed, pids }
}

describe('one fd per listener per worker', () => {
  it(`under ulimit -n 256 with ${LISTENERS} listeners, a ${LISTENERS}-connection probe is answered on every port, before and after an upgrade`, async () => {
    const ports = await distinctPorts(LISTENERS)
    const s = await Supervised.start(['-w', '1'], 'ops.mjs', { PORTS: ports.join(',') }, ['sh', '-c', 'ulimit -n 256 && exec "$0" "$@"'])
    for (const round of [1, 2]) {
      const [worker] = (await statusOf()).workers.filter((w) => w.state === 'ready')
      expect(readFileSync(`/proc/${worker.pid}/limits`, 'utf8')).toMatch(/^Max open files\s+256\s+256/m)
      // Each listening socket is one fd in the worker (it was two), and one in the supervisor.
      const inodes = listeningInodes(ports)
      expect(inodes.size).toBe(LISTENERS)
      const inWorker = fdsPerInode(worker.pid)
      const inSupervisor = fdsPerInode(s.pid)
      expect([...inodes.values()].map((inode) => inWorker.get(inode) ?? 0)).toEqual(ports.map(() => 1))
      expect([...inodes.values()].map((inode) => inSupervisor.get(inode) ?? 0)).toEqual(ports.map(() => 1))

      const { failed, pids } = await probe(ports)
      expect(failed, `round ${round}`).toEqual({})
      expect([...pids]).toEqual([worker.pid])
      if (round === 1) expect((await handover(['upgrade'])).status).toBe(0)
    }
  })
})
