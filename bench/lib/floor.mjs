// The start-up floor an upgrade cannot beat: how long a bare node takes to
// start and exit, and to start, listen on a port and exit. Each is spawned
// `runs` times after one unmeasured warm-up run; the median is the floor.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { performance } from 'node:perf_hooks'
import { median, max, min } from './stats.mjs'

const HANDOVER = new URL('../../dist/index.js', import.meta.url).href
const REGISTER = new URL('../../dist/preload/register.js', import.meta.url).href

export const FLOORS = {
  bare: { label: "node -e ''", args: ['-e', ''] },
  listen: {
    label: 'node start + listen + exit',
    args: ['-e', "require('node:http').createServer().listen(0, '127.0.0.1', () => process.exit(0))"],
  },
  // Not a target: the same start as an ES module that imports node:http, as
  // bench/server.mjs does. Node builds a module namespace of node:http, which
  // reads all its lazy getters (on Node 26, http.WebSocket loads undici):
  // part of what a new generation of server.mjs pays before handover runs.
  listenEsm: {
    label: 'node start + listen + exit, as an ES module',
    args: ['--input-type=module', '-e', "import http from 'node:http'; http.createServer().listen(0, '127.0.0.1', () => process.exit(0))"],
  },
  // Not a target: what importing handover and binding through it adds.
  handover: {
    label: 'node start + Upgrader + listen + exit',
    args: ['--input-type=module', '-e', `
      const { Upgrader } = await import(${JSON.stringify(HANDOVER)})
      const upg = await Upgrader.create()
      const server = (await import('node:http')).createServer()
      server.listen(upg.listen('tcp4', '127.0.0.1:0'), () => process.exit(0))`],
  },
  // Not a target: what handover/register adds to an unmodified app's start.
  // A fixed port ({port}, picked free at run time): port 0 would bypass the preload.
  preload: {
    label: 'node --import handover/register + listen + exit',
    args: ['--import', REGISTER, '-e', "require('node:http').createServer().listen({port}, '127.0.0.1', () => process.exit(0))"],
  },
}

/** A port free a moment ago, for the floors that cannot use port 0. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

export function timeOnce(args, node = process.execPath) {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn(node, args, { stdio: 'ignore' })
    child.once('error', reject)
    child.once('exit', (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`${args.join(' ')} exited with ${code}`))))
  })
}

export async function measureFloors(runs, node = process.execPath) {
  const out = {}
  const port = String(await freePort())
  for (const [name, { label, args: template }] of Object.entries(FLOORS)) {
    const args = template.map((a) => a.replace('{port}', port))
    await timeOnce(args, node)
    const ms = []
    for (let i = 0; i < runs; i++) ms.push(await timeOnce(args, node))
    out[name] = { label, medianMs: median(ms), minMs: min(ms), maxMs: max(ms), runs: ms }
  }
  return out
}
