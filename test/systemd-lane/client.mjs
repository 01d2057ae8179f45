// Runs inside the container: one GET / every 20 ms (each on a fresh
// connection, like a stream of new visitors) until the file named by argv[2]
// exists, then prints one JSON line: how many were answered, how many failed
// and how, and which pids answered.
import { existsSync } from 'node:fs'
import http from 'node:http'

const stopFile = process.argv[2]
const port = Number(process.argv[3] || 8080)
const agent = new http.Agent({ keepAlive: false })
let ok = 0
let failed = 0
let pending = 0
const errors = {}
const pids = new Set()

function once() {
  pending++
  const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 10_000 }, (res) => {
    let body = ''
    res.setEncoding('utf8')
    res.on('data', (chunk) => (body += chunk))
    res.on('end', () => {
      pending--
      const m = /^hello from (\d+)/.exec(body)
      if (res.statusCode === 200 && m) {
        ok++
        pids.add(Number(m[1]))
      } else {
        failed++
        errors[`HTTP ${res.statusCode}`] = (errors[`HTTP ${res.statusCode}`] ?? 0) + 1
      }
    })
  })
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })))
  req.on('error', (err) => {
    pending--
    failed++
    errors[err.code ?? err.message] = (errors[err.code ?? err.message] ?? 0) + 1
  })
}

const timer = setInterval(() => {
  if (existsSync(stopFile)) {
    clearInterval(timer)
    const done = setInterval(() => {
      if (pending > 0) return
      clearInterval(done)
      process.stdout.write(`${JSON.stringify({ ok, failed, errors, pids: [...pids] })}\n`)
    }, 20)
    return
  }
  once()
}, 20)
